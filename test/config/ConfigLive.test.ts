import { NodeFileSystem } from "@effect/platform-node"
import { describe, it, layer } from "@effect/vitest"
import { Effect } from "effect"
import * as path from "node:path"
import { assert } from "vitest"
import { configFiles } from "../../src/config/ConfigFiles.js"
import { loadSettings } from "../../src/config/ConfigLive.js"
import { confTree, isolatedEnv } from "./confTree.js"

describe("configFiles", () => {
  it("searches NIX_CONF_DIR, then XDG_CONFIG_DIRS last to first, then XDG_CONFIG_HOME", () => {
    const files = configFiles({
      HOME: "/home/a",
      NIX_CONF_DIR: "/opt/nix",
      XDG_CONFIG_DIRS: "/x1:/x2::/x3",
      XDG_CONFIG_HOME: "/home/a/cfg"
    })
    assert.deepStrictEqual(files, [
      { path: "/opt/nix/nsh.conf" },
      { path: "/x3/nix/nsh.conf" },
      { path: "/x2/nix/nsh.conf" },
      { path: "/x1/nix/nsh.conf" },
      { path: "/home/a/cfg/nix/nsh.conf" }
    ])
  })

  it("defaults to /etc/nix, /etc/xdg and ~/.config (empty variables count as unset)", () => {
    assert.deepStrictEqual(configFiles({ HOME: "/home/a", NIX_CONF_DIR: "", XDG_CONFIG_DIRS: "" }), [
      { path: "/etc/nix/nsh.conf" },
      { path: "/etc/xdg/nix/nsh.conf" },
      { path: "/home/a/.config/nix/nsh.conf" }
    ])
  })

  it("reads a file listed twice once, at its last place", () => {
    assert.deepStrictEqual(configFiles({ HOME: "/h", NIX_CONF_DIR: "/h/.config/nix", XDG_CONFIG_DIRS: "/h/.config" }), [
      { path: "/h/.config/nix/nsh.conf" }
    ])
  })

  it("NSH_CONF names exactly one, required, file", () => {
    assert.deepStrictEqual(configFiles({ HOME: "/h", NSH_CONF: "/srv/nsh.conf", NIX_CONF_DIR: "/opt" }), [
      { path: "/srv/nsh.conf", requiredBy: "NSH_CONF" }
    ])
  })
})

layer(NodeFileSystem.layer)("loadSettings", (it) => {
  it.scoped("later files override earlier ones; earlier XDG_CONFIG_DIRS entries win", () =>
    Effect.gen(function*() {
      const dir = yield* confTree({
        "etc-nix/nsh.conf": "slurm-api-host = etc\nslurm-api-port = 1001\nsystem = etc\nmax-jobs = 1\n",
        "xdg2/nix/nsh.conf": "slurm-api-port = 1002\nsystem = xdg2\nmax-jobs = 2\n",
        "xdg1/nix/nsh.conf": "system = xdg1\nmax-jobs = 3\n",
        "home/.config/nix/nsh.conf": "\nmax-jobs = 4\n"
      })
      const env = isolatedEnv(dir, { XDG_CONFIG_DIRS: `${dir}/xdg1:${dir}/xdg2` })
      const loaded = yield* loadSettings(env)
      assert.strictEqual(loaded.settings.slurmApiHost, "etc")
      assert.strictEqual(loaded.settings.slurmApiPort, 1002)
      assert.strictEqual(loaded.settings.system, "xdg1")
      assert.strictEqual(loaded.settings.maxJobs, 4)
      assert.deepStrictEqual(loaded.files, [
        path.join(dir, "etc-nix/nsh.conf"),
        path.join(dir, "xdg2/nix/nsh.conf"),
        path.join(dir, "xdg1/nix/nsh.conf"),
        path.join(dir, "home/.config/nix/nsh.conf")
      ])
      assert.deepStrictEqual(loaded.sources.get("max-jobs"), {
        _tag: "file",
        file: path.join(dir, "home/.config/nix/nsh.conf"),
        line: 2
      })
      assert.deepStrictEqual(loaded.sources.get("collect-garbage"), { _tag: "default" })
      assert.deepStrictEqual(loaded.warnings, [])
    }))

  it.scoped("XDG_CONFIG_HOME defaults to ~/.config", () =>
    Effect.gen(function*() {
      const dir = yield* confTree({ "home/.config/nix/nsh.conf": "system = home\n" })
      const { XDG_CONFIG_HOME: _, ...env } = isolatedEnv(dir)
      const loaded = yield* loadSettings(env)
      assert.strictEqual(loaded.settings.system, "home")
    }))

  it.scoped("NSH_CONF replaces the search", () =>
    Effect.gen(function*() {
      const dir = yield* confTree({
        "etc-nix/nsh.conf": "system = etc\nmax-jobs = 1\n",
        "only.conf": "system = only\n"
      })
      const loaded = yield* loadSettings(isolatedEnv(dir, { NSH_CONF: path.join(dir, "only.conf") }))
      assert.strictEqual(loaded.settings.system, "only")
      assert.strictEqual(loaded.settings.maxJobs, 0)
      assert.deepStrictEqual(loaded.files, [path.join(dir, "only.conf")])
    }))

  it.scoped("NSH_CONF naming a missing file is an error", () =>
    Effect.gen(function*() {
      const dir = yield* confTree({ "etc-nix/nsh.conf": "system = etc\n" })
      const e = yield* Effect.flip(loadSettings(isolatedEnv(dir, { NSH_CONF: path.join(dir, "nope.conf") })))
      assert.include(e.message, "NSH_CONF")
      assert.strictEqual(e.file, path.join(dir, "nope.conf"))
    }))

  it.scoped("no files at all gives the defaults", () =>
    Effect.gen(function*() {
      const dir = yield* confTree({})
      const loaded = yield* loadSettings(isolatedEnv(dir))
      assert.deepStrictEqual(loaded.files, [])
      assert.strictEqual(loaded.settings.slurmStateDir, path.join(dir, "home/.local/state/nsh"))
    }))

  it.scoped("include in a discovered file, and the unknown-key warning, name the right file", () =>
    Effect.gen(function*() {
      const dir = yield* confTree({
        "etc-nix/nsh.conf": "include nsh.d/site.conf\n",
        "etc-nix/nsh.d/site.conf": "slurm-api-host = site\nslurm-api-hots = typo\n"
      })
      const loaded = yield* loadSettings(isolatedEnv(dir))
      assert.strictEqual(loaded.settings.slurmApiHost, "site")
      assert.deepStrictEqual(loaded.warnings, [
        `unknown setting 'slurm-api-hots' in ${path.join(dir, "etc-nix/nsh.d/site.conf")}:2`
      ])
    }))
})
