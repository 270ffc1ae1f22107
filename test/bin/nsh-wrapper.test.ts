/**
 * bin/nsh, run by /bin/sh with a stand-in for node that prints the compile-cache directory it got.
 */
import { describe, it } from "@effect/vitest"
import { spawnSync } from "node:child_process"
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs"
import * as Os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { assert } from "vitest"

const wrapper = fileURLToPath(new URL("../../bin/nsh", import.meta.url))

/** NODE_COMPILE_CACHE as bin/nsh hands it to node, in exactly the environment `env`. */
const cacheWith = (env: Record<string, string>): string => {
  const dir = mkdtempSync(path.join(Os.tmpdir(), "nsh-wrapper-"))
  try {
    const node = path.join(dir, "node")
    writeFileSync(node, "#!/bin/sh\nprintf '%s' \"${NODE_COMPILE_CACHE-<unset>}\"\n", { mode: 0o755 })
    const run = spawnSync("/bin/sh", [wrapper, "--version"], { env: { PATH: "/usr/bin:/bin", NSH_NODE: node, ...env } })
    assert.strictEqual(run.status, 0, run.stderr.toString())
    return run.stdout.toString()
  } finally {
    rmSync(dir, { recursive: true })
  }
}

describe("bin/nsh", () => {
  it("keeps the compile cache under XDG_CACHE_HOME, else HOME, or as asked", () => {
    assert.strictEqual(cacheWith({ XDG_CACHE_HOME: "/x/cache", HOME: "/home/a" }), "/x/cache/nsh/v8")
    assert.strictEqual(cacheWith({ HOME: "/home/a" }), "/home/a/.cache/nsh/v8")
    assert.strictEqual(cacheWith({ NODE_COMPILE_CACHE: "/elsewhere" }), "/elsewhere")
  })

  it("without HOME (root under nix-daemon) uses a directory only its owner can write, never one in /tmp", () => {
    const cache = cacheWith({})
    const varCache = statSync("/var/cache")
    const ownsVarCache = process.getuid?.() === varCache.uid
    assert.strictEqual(cache, ownsVarCache ? "/var/cache/nsh/v8" : "<unset>")
  })
})
