// Bundles src/bin.ts into one file (dist/nsh.mjs) so the hook starts fast: Nix starts a
// hook per accepted build and waits for its first answer.
import { build } from "esbuild"
import { spawnSync } from "node:child_process"
import { createHash } from "node:crypto"
import { renameSync, rmSync, writeFileSync } from "node:fs"

// Chunk names carry content hashes: without this, every build would leave the old ones behind.
rmSync("dist", { recursive: true, force: true })

const options = {
  // Split: hook mode loads dist/nsh.mjs + the shared chunk only, never the CLI's chunk
  // (@effect/cli), which bin.ts imports dynamically. Measured: first reply 241 → 186 ms.
  entryPoints: { nsh: "src/bin.ts" },
  outdir: "dist",
  chunkNames: "chunks/[name]-[hash]",
  outExtension: { ".js": ".mjs" },
  bundle: true,
  platform: "node",
  target: "node20",
  format: "esm",
  splitting: true,
  sourcemap: false,
  // Smaller files parse faster, and parsing is most of a hook's start-up; names stay readable.
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: "none",
  // ssh2's optional native addons are loaded with try/require; keep them out of the bundle.
  external: ["cpu-features", "*.node"],
  banner: {
    // CommonJS dependencies (ssh2) expect require, __filename and __dirname.
    js: [
      "import { createRequire as __nshCreateRequire } from 'node:module';",
      "import { fileURLToPath as __nshFileURLToPath } from 'node:url';",
      "import { dirname as __nshDirname } from 'node:path';",
      "const require = __nshCreateRequire(import.meta.url);",
      "const __filename = __nshFileURLToPath(import.meta.url);",
      "const __dirname = __nshDirname(__filename);"
    ].join(" ")
  },
  logLevel: "warning"
}
await build(options)

// Hook mode's full session, loaded by the start-up snapshot's front on hand-over (src/snapshot.ts
// compiles it with V8's code cache): one CommonJS file named after its content, since V8 checks
// only a cached source's length.
const full = await build({
  ...options,
  entryPoints: { hook: "src/HookMain.ts" },
  outExtension: { ".js": ".cjs" },
  format: "cjs",
  splitting: false,
  banner: {},
  write: false
})
const fullHook = `hook-${createHash("sha256").update(full.outputFiles[0].contents).digest("hex").slice(0, 16)}.cjs`
writeFileSync(`dist/${fullHook}`, full.outputFiles[0].contents)

// Hook mode's start-up snapshot: the front only (src/hook/Front.ts), a few milliseconds to start.
// One CommonJS file (a snapshot entry may require built-ins only); bin/nsh uses the blob only with
// the node and version that built it, else falls back to dist/nsh.mjs.
await build({
  ...options,
  entryPoints: { "snapshot-entry": "src/snapshot.ts" },
  outExtension: { ".js": ".cjs" },
  format: "cjs",
  splitting: false,
  banner: {},
  define: { NSH_FULL_HOOK: JSON.stringify(fullHook) }
})
const blob = spawnSync(process.execPath, [
  "--snapshot-blob",
  "dist/nsh.blob.tmp",
  "--build-snapshot",
  "dist/snapshot-entry.cjs"
], {
  stdio: "inherit",
  // NODE_NO_WARNINGS: Node warns that `module` and `child_process` are "not yet fully verified"
  // in snapshots; the e2e tests run hook mode (accept, ssh2, the watchdog) through this snapshot.
  env: { ...process.env, NODE_OPTIONS: "", NODE_NO_WARNINGS: "1" }
})
rmSync("dist/snapshot-entry.cjs")
if (blob.status === 0) {
  renameSync("dist/nsh.blob.tmp", "dist/nsh.blob")
  writeFileSync("dist/node-version", process.version + "\n")
} else console.warn("nsh: no start-up snapshot (hook mode still works, just slower to start)")

// bin/nsh runs the bundle with this node when PATH has none (nix-daemon's environment).
writeFileSync("dist/node-path", process.execPath + "\n")
