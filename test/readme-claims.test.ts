/**
 * test/README-claims.md maps each promise of README.md to the tests that prove it. This keeps the
 * map honest: every quoted fragment is still in the README, and every test it names still exists.
 */
import { describe, it } from "@effect/vitest"
import { existsSync, readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { assert } from "vitest"

const root = fileURLToPath(new URL("..", import.meta.url))
const squash = (text: string) => text.replace(/\s+/g, " ")

interface Claim {
  readonly line: number
  readonly quote: string
  readonly tests: ReadonlyArray<{ readonly file: string; readonly name: string }>
  readonly open: ReadonlyArray<string>
}

const claims = (): ReadonlyArray<Claim> =>
  readFileSync(`${root}test/README-claims.md`, "utf8").split("\n").flatMap((text, i) => {
    const row = /^\| "(.+)" \| (.+) \|$/.exec(text)
    if (row === null) return []
    const entries = row[2]!.split("<br>").map((e) => e.trim())
    return [{
      line: i + 1,
      quote: row[1]!,
      tests: entries.flatMap((e) => {
        const test = /^`([^`]+)` › (.+)$/.exec(e)
        return test === null ? [] : [{ file: test[1]!, name: test[2]! }]
      }),
      open: entries.filter((e) => e.startsWith("open: "))
    }]
  })

/** Whether `source` has a test named `name`: quoted whole, or for a name with `…`, each literal part. */
const hasTest = (source: string, name: string) =>
  name.includes("…")
    ? name.split("…").every((part) => part.trim() === "" || source.includes(part.trim()))
    : [`"${name}"`, `'${name}'`, `\`${name}\``].some((quoted) => source.includes(quoted))

describe("test/README-claims.md", () => {
  it("has claims, each with a test or an open reason, and nothing it cannot read", () => {
    const all = claims()
    assert.isAbove(all.length, 50)
    const rows = readFileSync(`${root}test/README-claims.md`, "utf8").split("\n").filter((l) => l.startsWith("| \""))
    assert.strictEqual(all.length, rows.length, "a row that is not `| \"fragment\" | tests |`")
    for (const claim of all) {
      assert.isAbove(claim.tests.length + claim.open.length, 0, `line ${claim.line}: no test and no open reason`)
    }
  })

  it("quotes only what README.md still says", () => {
    const readme = squash(readFileSync(`${root}README.md`, "utf8"))
    const gone = claims().filter((c) => !readme.includes(squash(c.quote)))
    assert.deepStrictEqual(gone.map((c) => `line ${c.line}: ${c.quote}`), [])
  })

  it("names only tests that exist", () => {
    const missing = claims().flatMap((c) =>
      c.tests.flatMap(({ file, name }) =>
        !existsSync(`${root}${file}`)
          ? [`line ${c.line}: no file ${file}`]
          : hasTest(readFileSync(`${root}${file}`, "utf8"), name)
          ? []
          : [`line ${c.line}: ${file} has no test "${name}"`]
      )
    )
    assert.deepStrictEqual(missing, [])
  })
})
