// Formatting only: the Effect monorepo's dprint settings, run through @effect/eslint-plugin
// (`npm run format` fixes, `npm run format:check` is what .ci/run checks).
import * as effect from "@effect/eslint-plugin"
import tsParser from "@typescript-eslint/parser"

export default [
  { ignores: ["dist/**", "node_modules/**", "test/fixtures/slurm/**"] },
  {
    files: ["**/*.ts", "**/*.mjs"],
    languageOptions: { parser: tsParser, ecmaVersion: 2022, sourceType: "module" },
    plugins: { "@effect": effect },
    rules: {
      "@effect/dprint": [
        "error",
        {
          config: {
            indentWidth: 2,
            lineWidth: 120,
            semiColons: "asi",
            quoteStyle: "alwaysDouble",
            trailingCommas: "never",
            operatorPosition: "maintain",
            "arrowFunction.useParentheses": "force"
          }
        }
      ]
    }
  }
]
