/**
 * The Nix packaging (flake.nix, flake.lock, nix/*.nix) checked with the Nix on this machine and no
 * network. Most tests evaluate the flake against the stub in test/fixtures/flake/nixpkgs (builders
 * return their arguments). The nixpkgs that flake.lock pins is evaluated only where it is already
 * in the Nix store (put there by test/harness/nixpkgs-source.sh from a nixpkgs clone or GitHub's
 * tarball, which this project cannot ship) and Nix is new enough for it; elsewhere those tests are
 * skipped and say why. Building the package and running its unit tests in the sandbox are not
 * covered here.
 */
import { Command, FileSystem } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Stream } from "effect"
import { execFileSync } from "node:child_process"
import { createHash, randomBytes } from "node:crypto"
import { readFileSync } from "node:fs"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { fileURLToPath } from "node:url"

const repo = fileURLToPath(new URL("../..", import.meta.url))
const fixtures = `${repo}test/fixtures/flake`
const systems = ["x86_64-linux", "aarch64-linux"] as const
// What the stub's nodejs_22 and openssh are (test/fixtures/flake/nixpkgs/default.nix).
const stubStore = "/nix/store/00000000000000000000000000000000"

interface Run {
  readonly exitCode: number
  readonly stdout: string
  readonly stderr: string
}

const text = (s: Stream.Stream<Uint8Array, unknown>) => Stream.mkString(Stream.decodeText(s))

/** Runs a command to completion, whatever its exit code. */
const run = (cmd: string, args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  Effect.scoped(
    Effect.gen(function*() {
      const proc = yield* Command.make(cmd, ...args).pipe(
        Command.workingDirectory(repo),
        Command.env(env),
        Command.start
      )
      const [stdout, stderr, exitCode] = yield* Effect.all([text(proc.stdout), text(proc.stderr), proc.exitCode], {
        concurrency: 3
      })
      return { exitCode, stdout, stderr } satisfies Run
    })
  ).pipe(Effect.orDie)

/** The strict JSON value of a Nix expression; a failed evaluation fails the test with Nix's message. */
const evalJson = (expr: string) =>
  Effect.flatMap(
    run("nix-instantiate", ["--eval", "--strict", "--json", "-E", expr]),
    (r) => r.exitCode === 0 ? Effect.succeed(JSON.parse(r.stdout) as unknown) : Effect.dieMessage(r.stderr)
  )

const flake = `(import ${fixtures}/eval-flake.nix)`

const readJson = (file: string) =>
  Effect.flatMap(FileSystem.FileSystem, (fs) => fs.readFileString(`${repo}${file}`)).pipe(
    Effect.map((s) => JSON.parse(s) as Record<string, any>),
    Effect.orDie
  )

// npm's os/cpu semantics, written independently of nix/npm-lock-sources.nix as the oracle.
const allows = (list: ReadonlyArray<string> | undefined, value: string) =>
  list === undefined || list.length === 0 ||
  (list.every((x) => x.startsWith("!")) ? !list.includes(`!${value}`) : list.includes(value))
const nodeOf = { "x86_64-linux": { os: "linux", cpu: "x64" }, "aarch64-linux": { os: "linux", cpu: "arm64" } }

describe("flake.nix and nix/ (offline, stub nixpkgs)", () => {
  it.effect("every Nix file parses", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const files = ["flake.nix", ...(yield* fs.readDirectory(`${repo}nix`)).map((f) => `nix/${f}`)]
      assert.includeMembers(files, ["nix/package.nix", "nix/module.nix", "nix/render-conf.nix"])
      for (const file of files) {
        const r = yield* run("nix-instantiate", ["--parse", file])
        assert.strictEqual(r.exitCode, 0, `${file}: ${r.stderr}`)
      }
    }).pipe(Effect.provide(NodeContext.layer)))

  it.effect("packages: nix-scheduler-hook, built and run with nodejs_22, bin/nsh with openssh on PATH", () =>
    Effect.gen(function*() {
      const pkgJson = yield* readJson("package.json")
      for (const system of systems) {
        const got = (yield* evalJson(`
          let p = ${flake}.packages.${system}; d = p.nix-scheduler-hook; in {
            inherit (d) pname version stubBuilder installPhase;
            node = d.nodejs.name; main = d.meta.mainProgram;
            defaultIsSame = p.default.outPath == d.outPath;
            builtFrom = d.src.files;
          }`)) as Record<string, any>
        assert.strictEqual(got.pname, "nix-scheduler-hook")
        assert.strictEqual(got.version, pkgJson.version)
        assert.strictEqual(got.stubBuilder, "buildNpmPackage")
        assert.strictEqual(got.node, "nodejs-22.99.0")
        assert.strictEqual(got.main, "nsh")
        assert.isTrue(got.defaultIsSame)
        assert.include(got.installPhase, `makeWrapper ${stubStore}-nodejs-22.99.0/bin/node "$out/bin/nsh"`)
        assert.include(got.installPhase, `--prefix PATH : ${stubStore}-openssh-9.99/bin`)
        assert.include(got.installPhase, `--add-flags "$out/lib/nix-scheduler-hook/nsh.mjs"`)
        // Editing a test must not rebuild the package.
        assert.notInclude(got.builtFrom, `${repo}test`)
      }
    }).pipe(Effect.provide(NodeContext.layer)))

  it.effect("npm dependencies: the lock as committed, every tarball pinned by the lock's integrity", () =>
    Effect.gen(function*() {
      const lock = yield* readJson("package-lock.json")
      const entries = Object.entries(lock.packages as Record<string, any>)
      // The premise: npm wrote no registry URLs (omit-lockfile-registry-resolved).
      assert.isTrue(entries.every(([, m]) => m.resolved === undefined))
      for (const system of systems) {
        const got = (yield* evalJson(`
          let deps = ${flake}.packages.${system}.default.npmDeps; in {
            inherit (deps) stubBuilder packageLock;
            sources = builtins.mapAttrs (_: d: {
              inherit (d) name outputHash outputHashMode buildCommand impureEnvVars;
              node = map (n: n.name) d.nativeBuildInputs;
            }) deps.packageSourceOverrides;
          }`)) as Record<string, any>
        assert.strictEqual(got.stubBuilder, "importNpmLock")
        assert.deepStrictEqual(got.packageLock, lock)
        const { cpu, os } = nodeOf[system]
        const expected = entries.filter(([p, m]) => p !== "" && allows(m.os, os) && allows(m.cpu, cpu)).map(([p]) => p)
        assert.sameMembers(Object.keys(got.sources), expected, system)
        assert.isAbove(expected.length, 50)
        for (const path of expected) {
          const src = got.sources[path]
          const module = lock.packages[path]
          const name = path.replace(/.*node_modules\//, "")
          assert.strictEqual(src.outputHash, module.integrity, path)
          assert.strictEqual(src.outputHashMode, "flat", path)
          assert.strictEqual(src.name, `${name.replace("@", "").replace("/", "-")}-${module.version}.tgz`, path)
          assert.include(
            src.buildCommand,
            `npm pack --ignore-scripts --loglevel=warn ${name}@${module.version}\n`,
            path
          )
          assert.include(src.impureEnvVars, "npm_config_registry")
          assert.deepStrictEqual(src.node, ["nodejs-22.99.0"])
        }
      }
      // Binaries for other systems are not downloaded.
      const x64 = (yield* evalJson(
        `builtins.attrNames ${flake}.packages.x86_64-linux.default.npmDeps.packageSourceOverrides`
      )) as Array<string>
      assert.include(x64, "node_modules/@esbuild/linux-x64")
      assert.notInclude(x64, "node_modules/@esbuild/linux-arm64")
      assert.notInclude(x64, "node_modules/@esbuild/darwin-arm64")
    }).pipe(Effect.provide(NodeContext.layer)))

  it.effect("checks: the package, and the unit tests run with the package's own npm dependencies", () =>
    Effect.gen(function*() {
      for (const system of systems) {
        const got = (yield* evalJson(`
          let f = ${flake}; c = f.checks.${system}; p = f.packages.${system}.default;
            hashes = d: map (s: s.outputHash) (builtins.attrValues d.npmDeps.packageSourceOverrides);
          in {
            packageIsDefault = c.package.outPath == p.outPath;
            inherit (c.unit-tests) stubBuilder buildPhase;
            sameDeps = hashes c.unit-tests == hashes p && c.unit-tests.npmDeps.packageLock == p.npmDeps.packageLock;
            sameNode = c.unit-tests.nodejs.name == p.nodejs.name;
            sameHook = c.unit-tests.npmConfigHook.name == p.npmConfigHook.name;
            src = c.unit-tests.src.files;
          }`)) as Record<string, any>
        assert.isTrue(got.packageIsDefault)
        assert.strictEqual(got.stubBuilder, "buildNpmPackage")
        assert.include(got.buildPhase, "npx vitest run --project unit")
        assert.isTrue(got.sameDeps)
        assert.isTrue(got.sameNode)
        assert.isTrue(got.sameHook)
        assert.includeMembers(got.src, [`${repo}test`, `${repo}vitest.config.ts`, `${repo}src`])
      }
    }).pipe(Effect.provide(NodeContext.layer)))

  it.effect("devShell, overlay", () =>
    Effect.gen(function*() {
      const got = (yield* evalJson(`
        let f = ${flake}; pkgs = (import ${fixtures}/nixpkgs).legacyPackages.x86_64-linux; in {
          shell = map (p: p.name) f.devShells.x86_64-linux.default.packages;
          hook = f.devShells.x86_64-linux.default.shellHook;
          overlaid = (f.overlays.default pkgs pkgs).nix-scheduler-hook.pname;
        }`)) as Record<string, any>
      assert.sameMembers(got.shell, ["nodejs-22.99.0", "openssh-9.99"])
      assert.include(got.hook, "npx vitest run --project unit")
      assert.strictEqual(got.overlaid, "nix-scheduler-hook")
    }).pipe(Effect.provide(NodeContext.layer)))

  it.effect("no registry host name is committed in the packaging", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const files = ["flake.nix", ...(yield* fs.readDirectory(`${repo}nix`)).map((f) => `nix/${f}`)]
      for (const file of files) {
        const content = yield* fs.readFileString(`${repo}${file}`)
        assert.notMatch(content, /https?:\/\/|npmjs|yarnpkg/, file)
      }
    }).pipe(Effect.provide(NodeContext.layer)))
})

describe("nix/render-conf.nix", () => {
  const render = (attrs: string) =>
    run("nix-instantiate", ["--eval", "--strict", "--json", "-E", `import ${repo}nix/render-conf.nix ${attrs}`])

  it.effect("writes nix.conf lines: sorted keys, lists space-joined, bools, JSON attrsets, null left out", () =>
    Effect.gen(function*() {
      const r = yield* render(`{
        system-features = [ "nsh" "big-parallel" ]; collect-garbage = false; slurm-api-port = 6820;
        slurm-extra-submission-params = { partition = "nix"; nodes = 1; }; remote-nix-bin-dir = null;
        mandatory-system-features = [ ];
      }`)
      assert.strictEqual(r.exitCode, 0, r.stderr)
      assert.strictEqual(
        JSON.parse(r.stdout),
        [
          "collect-garbage = false",
          "mandatory-system-features = ",
          "slurm-api-port = 6820",
          `slurm-extra-submission-params = {"nodes":1,"partition":"nix"}`,
          "system-features = nsh big-parallel",
          ""
        ].join("\n")
      )
    }).pipe(Effect.provide(NodeContext.layer)))

  it.effect("refuses what nix.conf syntax cannot hold", () =>
    Effect.gen(function*() {
      const cases: Array<[string, string]> = [
        [`{ slurm-api-host = "a#b"; }`, "contains '#' or a line break"],
        [`{ slurm-extra-submission-params = { comment = "#SBATCH"; }; }`, "contains '#' or a line break"],
        [`{ slurm-api-host = "a\\nb"; }`, "contains '#' or a line break"],
        [`{ "bad key" = "x"; }`, "is not a valid setting name"],
        [`{ slurm-jwt-token-file = ./x; }`, "holds a path"]
      ]
      for (const [attrs, message] of cases) {
        const r = yield* render(attrs)
        assert.notStrictEqual(r.exitCode, 0, attrs)
        assert.include(r.stderr, message, attrs)
      }
    }).pipe(Effect.provide(NodeContext.layer)))
})

describe("nix/module.nix (services.nix-scheduler-hook)", () => {
  /** The module's result for `cfg` over its own defaults; `config` is its mkIf. */
  const module = (cfg: string, select: string) =>
    evalJson(`let m = import ${fixtures}/eval-module.nix (${cfg}); c = m.config; in ${select}`)
  const failedAssertions = "map (a: a.message) (builtins.filter (a: !a.assertion) c.content.assertions)"

  it.effect("writes /etc/nix/nsh.conf, points build-hook at the package's bin/nsh, keeps the token file a path", () =>
    Effect.gen(function*() {
      const got = (yield* module(
        `{
          enable = true;
          package = ${flake}.packages.x86_64-linux.default;
          tokenFile = "/run/secrets/slurm-jwt";
          settings = {
            slurm-api-host = "head"; slurm-state-dir = "/home/nix/.local/state/nsh";
            system-features = [ "nsh" "big-parallel" ]; collect-garbage = true;
            slurm-extra-submission-params = { partition = "nix"; };
          };
        }`,
        `{
          enabled = c.condition;
          conf = c.content.environment.etc."nix/nsh.conf".text;
          hook = c.content.nix.settings.build-hook;
          package = ${flake}.packages.x86_64-linux.default.outPath;
          installed = map (p: p.outPath) c.content.environment.systemPackages;
          failed = ${failedAssertions};
        }`
      )) as Record<string, any>
      assert.isTrue(got.enabled)
      assert.deepStrictEqual(got.failed, [])
      assert.strictEqual(got.hook, `${got.package}/bin/nsh`)
      assert.deepStrictEqual(got.installed, [got.package])
      const lines = (got.conf as string).split("\n")
      assert.match(lines[0] ?? "", /^# /)
      assert.includeMembers(lines, [
        "slurm-api-host = head",
        "slurm-state-dir = /home/nix/.local/state/nsh",
        "system-features = nsh big-parallel",
        "collect-garbage = true",
        `slurm-extra-submission-params = {"partition":"nix"}`,
        "slurm-jwt-token-file = /run/secrets/slurm-jwt"
      ])
      assert.notInclude(got.conf, "slurm-jwt-token =")
    }).pipe(Effect.provide(NodeContext.layer)))

  it.effect("does nothing unless enabled", () =>
    Effect.gen(function*() {
      assert.isFalse(yield* module("{ }", "c.condition"))
    }).pipe(Effect.provide(NodeContext.layer)))

  it.effect("refuses a token in settings, a token file in the store, a relative one, and two token files", () =>
    Effect.gen(function*() {
      const failed = (cfg: string) =>
        Effect.map(module(`{ enable = true; ${cfg} }`, failedAssertions), (messages) => messages as Array<string>)
      const inSettings = yield* failed(`settings.slurm-jwt-token = "eyJhbGciOi";`)
      assert.lengthOf(inSettings, 1)
      assert.include(
        inSettings[0],
        "settings.slurm-jwt-token would put the Slurm JWT into the world-readable Nix store"
      )
      assert.include(inSettings[0], "tokenFile")

      const storeFile = yield* failed(`tokenFile = "/nix/store/0000-slurm-jwt";`)
      assert.lengthOf(storeFile, 1)
      assert.include(storeFile[0], "is in the Nix store")
      const storeFileInSettings = yield* failed(`settings.slurm-jwt-token-file = "/nix/store/0000-slurm-jwt";`)
      assert.lengthOf(storeFileInSettings, 1)
      assert.include(storeFileInSettings[0], "is in the Nix store")

      const relative = yield* failed(`tokenFile = "secrets/slurm-jwt";`)
      assert.lengthOf(relative, 1)
      assert.include(relative[0], "must be an absolute path")

      const both = yield* failed(`tokenFile = "/run/a"; settings.slurm-jwt-token-file = "/run/b";`)
      assert.lengthOf(both, 1)
      assert.include(both[0], "not both")
    }).pipe(Effect.provide(NodeContext.layer)))
})

/** `nix` with flakes on, offline, never writing a lock; `env` adds to the environment. */
const nixOffline = (args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  run("nix", ["--extra-experimental-features", "nix-command flakes", ...args, "--offline", "--no-write-lock-file"], env)

/** A copy of just what flake.nix reads, so an untracked or dirty work tree does not matter. */
const flakeCopy = Effect.gen(function*() {
  const fs = yield* FileSystem.FileSystem
  const dir = yield* fs.makeTempDirectoryScoped({ prefix: "nsh-flake-" })
  for (const file of ["flake.nix", "flake.lock", "nix", "package.json", "package-lock.json"]) {
    yield* fs.copy(`${repo}${file}`, `${dir}/${file}`)
  }
  return dir
})

/**
 * Nix's fetcher cache in a fresh directory: with the user's, a run could answer from what an
 * earlier one (or the stub below, under another revision) left there instead of from the store.
 */
const fetcherCache = Effect.map(
  Effect.flatMap(FileSystem.FileSystem, (fs) => fs.makeTempDirectoryScoped({ prefix: "nsh-xdg-cache-" })),
  (dir) => ({ XDG_CACHE_HOME: dir })
)

const lock = JSON.parse(readFileSync(`${repo}flake.lock`, "utf8")) as {
  version: number
  root: string
  nodes: Record<string, any>
}
const nixpkgsLocked = lock.nodes.nixpkgs?.locked as { rev: string; narHash: string; lastModified: number }

describe("flake.lock", () => {
  it.effect("pins nixpkgs to one revision of github:NixOS/nixpkgs with its narHash, under the branch flake.nix names", () =>
    Effect.gen(function*() {
      assert.strictEqual(lock.version, 7)
      assert.deepStrictEqual(lock.nodes[lock.root], { inputs: { nixpkgs: "nixpkgs" } })
      const { locked, original } = lock.nodes.nixpkgs
      assert.deepStrictEqual(Object.keys(locked).sort(), ["lastModified", "narHash", "owner", "repo", "rev", "type"])
      assert.include(locked, { type: "github", owner: "NixOS", repo: "nixpkgs" })
      assert.match(locked.rev, /^[0-9a-f]{40}$/)
      assert.match(locked.narHash, /^sha256-[A-Za-z0-9+/]{43}=$/)
      assert.isTrue(Number.isInteger(locked.lastModified))
      // Nix relocks (needing the network) an input whose `original` differs from flake.nix's url.
      const url = (yield* evalJson(`(import ${repo}flake.nix).inputs.nixpkgs.url`)) as string
      const [, owner, repoName, ref] = /^github:([^/]+)\/([^/]+)\/([^/?]+)$/.exec(url) ?? []
      assert.deepStrictEqual(original, { type: "github", owner, repo: repoName, ref }, url)
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scoped("a locked github input is taken from the store by its narHash, offline and without --override-input", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* flakeCopy
      // The stub, added as Nix's github fetcher adds a tarball's tree: a path named `source`.
      const tree = `${yield* fs.makeTempDirectoryScoped({ prefix: "nsh-stub-" })}/source`
      yield* fs.copy(`${fixtures}/nixpkgs`, tree)
      const narHash = (yield* run("nix", ["--extra-experimental-features", "nix-command", "hash", "path", tree])).stdout
        .trim()
      const added = yield* run("nix-store", ["--add", tree])
      assert.strictEqual(added.exitCode, 0, added.stderr)
      // The committed lock with only its revision (a made-up one) and narHash changed.
      const relock = (hash: string) =>
        fs.writeFileString(
          `${dir}/flake.lock`,
          JSON.stringify({
            ...lock,
            nodes: {
              ...lock.nodes,
              nixpkgs: { ...lock.nodes.nixpkgs, locked: { ...nixpkgsLocked, rev: "1".repeat(40), narHash: hash } }
            }
          })
        )
      yield* relock(narHash)
      const env = yield* fetcherCache
      const check = yield* nixOffline(["flake", "check", "--no-build", `path:${dir}`], env)
      assert.strictEqual(check.exitCode, 0, check.stderr)
      const pname = yield* nixOffline(["eval", "--raw", `path:${dir}#packages.x86_64-linux.default.pname`], env)
      assert.strictEqual(pname.exitCode, 0, pname.stderr)
      assert.strictEqual(pname.stdout, "nix-scheduler-hook")
      // The control: a narHash that no store path has sends Nix to GitHub, which it cannot reach.
      yield* relock(`sha256-${createHash("sha256").update(randomBytes(16)).digest("base64")}`)
      const missing = yield* nixOffline(["eval", "--raw", `path:${dir}#packages.x86_64-linux.default.pname`], env)
      assert.notStrictEqual(missing.exitCode, 0)
      assert.match(missing.stderr, /github|download|offline/i)
    }).pipe(Effect.provide(NodeContext.layer)))
})

/** Why the pinned nixpkgs cannot be evaluated here, or undefined when it can. */
const realNixpkgsMissing = ((): string | undefined => {
  const nixVersion = /(\d+)\.(\d+)/.exec(execFileSync("nix", ["--version"], { encoding: "utf8" }))
  // nixpkgs' lib/minfeatures.nix: Nix 2.18 or later (lib.fileset needs builtins.readFileType).
  if (nixVersion === null || Number(nixVersion[1]) * 1000 + Number(nixVersion[2]) < 2018) {
    return `this machine's Nix (${nixVersion?.[0]}) is older than 2.18, which that nixpkgs requires`
  }
  const hex = Buffer.from(nixpkgsLocked.narHash.replace(/^sha256-/, ""), "base64").toString("hex")
  const path = execFileSync("nix-store", ["--print-fixed-path", "--recursive", "sha256", hex, "source"], {
    encoding: "utf8"
  }).trim()
  try {
    execFileSync("nix-store", ["--check-validity", path], { stdio: "ignore" })
    return undefined
  } catch {
    return `it is not in this Nix store (${path}): bash test/harness/nixpkgs-source.sh NIXPKGS_GIT_DIR|GITHUB_TARBALL`
  }
})()

describe.skipIf(realNixpkgsMissing !== undefined)(
  `against nixpkgs ${nixpkgsLocked.rev} as flake.lock pins it${
    realNixpkgsMissing === undefined ? "" : ` (skipped: ${realNixpkgsMissing})`
  }`,
  () => {
    /** The JSON value of `body`, a Nix expression in `f`: the flake copied to `dir`, as `nix flake` locks it. */
    const flakeJson = (dir: string, body: string) =>
      Effect.flatMap(
        fetcherCache,
        (env) =>
          nixOffline(
            ["eval", "--impure", "--json", "--expr", `let f = builtins.getFlake "path:${dir}"; in ${body}`],
            env
          )
      ).pipe(Effect.map((r) => {
        assert.strictEqual(r.exitCode, 0, r.stderr)
        return JSON.parse(r.stdout) as Record<string, any>
      }))

    it.scoped(
      "the package, its unit-test check and the devShell instantiate on both systems; bin/nsh runs nodejs_22; meta",
      () =>
        Effect.gen(function*() {
          const dir = yield* flakeCopy
          const pkgJson = yield* readJson("package.json")
          for (const system of systems) {
            const v = yield* flakeJson(
              dir,
              `let p = f.packages.${system}; in {
              inherit (p.default) name drvPath; same = p.default.drvPath == p.nix-scheduler-hook.drvPath;
              node = builtins.match ".*/nix/store/[0-9a-z]{32}-nodejs-([^/]*)/bin/node.*" p.default.installPhase;
              main = p.default.meta.mainProgram;
              license = p.default.meta.license.spdxId; available = p.default.meta.available;
              unit = f.checks.${system}.unit-tests.drvPath; shell = f.devShells.${system}.default.drvPath;
            }`
            )
            assert.strictEqual(v.name, `nix-scheduler-hook-${pkgJson.version}`)
            for (const drv of [v.drvPath, v.unit, v.shell]) assert.match(drv, /^\/nix\/store\/[0-9a-z]{32}-.*\.drv$/)
            assert.isTrue(v.same)
            // The wrapper runs nodejs_22 (a list: the regex group, or null when no match).
            assert.match(v.node?.[0] ?? "", /^22\./)
            assert.strictEqual(v.main, "nsh")
            assert.strictEqual(v.license, "MIT")
            assert.isTrue(v.available, system)
          }
        }).pipe(Effect.provide(NodeContext.layer)),
      600_000
    )

    it.scoped(
      "`nix flake check --no-build` accepts the flake with the lock as committed",
      () =>
        Effect.gen(function*() {
          const dir = yield* flakeCopy
          const check = yield* nixOffline(["flake", "check", "--no-build", `path:${dir}`], yield* fetcherCache)
          assert.strictEqual(check.exitCode, 0, check.stderr)
        }).pipe(Effect.provide(NodeContext.layer)),
      600_000
    )

    it.scoped(
      "the NixOS module in a minimal nixosSystem: nsh.conf, build-hook, no failed assertion, a system to build",
      () =>
        Effect.gen(function*() {
          const dir = yield* flakeCopy
          const v = yield* flakeJson(
            dir,
            `let
            c = (f.inputs.nixpkgs.lib.nixosSystem {
              modules = [ f.nixosModules.default {
                nixpkgs.hostPlatform = "x86_64-linux";
                boot.isContainer = true;
                system.stateVersion = "26.05";
                services.nix-scheduler-hook = {
                  enable = true;
                  tokenFile = "/run/secrets/slurm-jwt";
                  settings = { slurm-api-host = "head"; system-features = [ "nsh" "big-parallel" ];
                    slurm-extra-submission-params = { partition = "nix"; }; };
                };
              } ];
            }).config;
          in {
            conf = c.environment.etc."nix/nsh.conf".text;
            hook = c.nix.settings.build-hook;
            package = "\${c.services.nix-scheduler-hook.package}";
            installed = builtins.elem c.services.nix-scheduler-hook.package c.environment.systemPackages;
            failed = map (a: a.message) (builtins.filter (a: !a.assertion) c.assertions);
            toplevel = c.system.build.toplevel.drvPath;
          }`
          )
          assert.deepStrictEqual(v.failed, [])
          assert.strictEqual(v.hook, `${v.package}/bin/nsh`)
          assert.isTrue(v.installed)
          assert.includeMembers((v.conf as string).split("\n"), [
            "slurm-api-host = head",
            "system-features = nsh big-parallel",
            `slurm-extra-submission-params = {"partition":"nix"}`,
            "slurm-jwt-token-file = /run/secrets/slurm-jwt"
          ])
          assert.match(v.toplevel, /^\/nix\/store\/[0-9a-z]{32}-nixos-system-.*\.drv$/)
        }).pipe(Effect.provide(NodeContext.layer)),
      600_000
    )
  }
)

describe("real Nix on the packaging", () => {
  const nixFlake = (dir: string, ...args: Array<string>) =>
    nixOffline([...args, "--override-input", "nixpkgs", `path:${fixtures}/nixpkgs`, `path:${dir}`])

  it.scoped("`nix flake check --no-build` and `nix flake show` accept the flake (nixpkgs input = the stub)", () =>
    Effect.gen(function*() {
      const dir = yield* flakeCopy
      const check = yield* nixFlake(dir, "flake", "check", "--no-build")
      assert.strictEqual(check.exitCode, 0, check.stderr)
      // Nix >= 2.13 leaves other systems' outputs out unless --all-systems (which 2.8 does not know).
      const showAll = yield* nixFlake(dir, "flake", "show", "--json", "--all-systems")
      const show = showAll.exitCode !== 0 && /unrecogni[sz]ed flag/.test(showAll.stderr)
        ? yield* nixFlake(dir, "flake", "show", "--json")
        : showAll
      assert.strictEqual(show.exitCode, 0, show.stderr)
      const outputs = JSON.parse(show.stdout)
      for (const system of systems) {
        assert.strictEqual(outputs.packages[system]["nix-scheduler-hook"].name, "nix-scheduler-hook-0.1.0")
        assert.strictEqual(outputs.packages[system].default.name, "nix-scheduler-hook-0.1.0")
        assert.sameMembers(Object.keys(outputs.checks[system]), ["package", "unit-tests"])
        assert.property(outputs.devShells[system], "default")
      }
      assert.strictEqual(outputs.nixosModules.default.type, "nixos-module")
      assert.strictEqual(outputs.overlays.default.type, "nixpkgs-overlay")
    }).pipe(Effect.provide(NodeContext.layer)))

  /** A loopback npm registry serving one package whose tarball is `served`. */
  const registry = (name: string, integrity: string, served: Buffer) =>
    Effect.acquireRelease(
      Effect.async<{ readonly url: string; readonly requests: Array<string>; readonly server: http.Server }>(
        (resume) => {
          const requests: Array<string> = []
          const server = http.createServer((req, res) => {
            requests.push(req.url ?? "")
            const { port } = server.address() as AddressInfo
            if (req.url === `/${name.replace("/", "%2f")}`) {
              res.setHeader("content-type", "application/json")
              const tarball = `http://127.0.0.1:${port}/${name}/-/tiny-1.0.0.tgz`
              res.end(JSON.stringify({
                name,
                "dist-tags": { latest: "1.0.0" },
                versions: { "1.0.0": { name, version: "1.0.0", dist: { tarball, integrity } } }
              }))
            } else if (req.url === `/${name}/-/tiny-1.0.0.tgz`) {
              res.end(served)
            } else {
              res.statusCode = 404
              res.end()
            }
          })
          server.listen(0, "127.0.0.1", () => {
            const { port } = server.address() as AddressInfo
            resume(Effect.succeed({ url: `http://127.0.0.1:${port}/`, requests, server }))
          })
        }
      ),
      ({ server }) => Effect.sync(() => server.close())
    )

  /** A fresh tarball (unique, so its store path was never built) and a lock pinning it. */
  const tinyPackage = (dir: string, name: string) =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      yield* fs.makeDirectory(`${dir}/package`, { recursive: true })
      const manifest = { name, version: "1.0.0", description: randomBytes(8).toString("hex") }
      yield* fs.writeFileString(`${dir}/package/package.json`, JSON.stringify(manifest))
      const tar = yield* run("tar", ["-czf", `${dir}/tiny.tgz`, "-C", dir, "package"])
      assert.strictEqual(tar.exitCode, 0, tar.stderr)
      const bytes = Buffer.from(yield* fs.readFile(`${dir}/tiny.tgz`))
      const integrity = `sha512-${createHash("sha512").update(bytes).digest("base64")}`
      const lock = {
        name: "t",
        lockfileVersion: 3,
        packages: { "": { name: "t" }, [`node_modules/${name}`]: { version: "1.0.0", integrity } }
      }
      yield* fs.writeFileString(`${dir}/lock.json`, JSON.stringify(lock))
      return { bytes, integrity, lockFile: `${dir}/lock.json` }
    }).pipe(Effect.orDie)

  const buildTarball = (lockFile: string, name: string, registryUrl: string) =>
    run(
      "nix-build",
      [
        "--no-out-link",
        `${fixtures}/build-npm-tarball.nix`,
        "--argstr",
        "lockFile",
        lockFile,
        "--argstr",
        "modulePath",
        `node_modules/${name}`
      ],
      { npm_config_registry: registryUrl }
    )

  /**
   * The store path holding exactly `bytes` as a flat file named `name` (where a fixed-output build
   * of them lands, even a rejected one: Nix keeps it under its actual hash), deleted with its
   * deriver when the test ends so the store is left as it was found.
   */
  const fixedPath = (bytes: Buffer, name: string) =>
    Effect.acquireRelease(
      Effect.map(
        run("nix-store", ["--print-fixed-path", "sha512", createHash("sha512").update(bytes).digest("hex"), name]),
        (r) => r.stdout.trim()
      ),
      (path) =>
        Effect.gen(function*() {
          const deriver = (yield* run("nix-store", ["--query", "--deriver", path])).stdout.trim()
          yield* run("nix-store", ["--delete", path])
          if (deriver.endsWith(".drv")) yield* run("nix-store", ["--delete", deriver])
        })
    )

  it.scoped("a lock entry without `resolved` is fetched by `npm pack` from the configured registry, pinned by its integrity", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* fs.makeTempDirectoryScoped({ prefix: "nsh-npm-" })
      const name = "@nsh-test/tiny"
      const tiny = yield* tinyPackage(dir, name)
      const expected = yield* fixedPath(tiny.bytes, "nsh-test-tiny-1.0.0.tgz")
      const reg = yield* registry(name, tiny.integrity, tiny.bytes)
      const build = yield* buildTarball(tiny.lockFile, name, reg.url)
      assert.strictEqual(build.exitCode, 0, build.stderr)
      assert.strictEqual(build.stdout.trim(), expected)
      assert.isTrue(Buffer.from(yield* fs.readFile(expected)).equals(tiny.bytes))
      assert.includeMembers(reg.requests, [`/@nsh-test%2ftiny`, `/${name}/-/tiny-1.0.0.tgz`])
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scoped("a registry serving other bytes than the lock's integrity fails the build", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* fs.makeTempDirectoryScoped({ prefix: "nsh-npm-" })
      const name = "@nsh-test/tiny"
      const tiny = yield* tinyPackage(dir, name)
      const other = yield* tinyPackage(`${dir}/other`, name)
      yield* fixedPath(other.bytes, "nsh-test-tiny-1.0.0.tgz")
      // The registry is consistent with itself (npm accepts the bytes); only the lock can object.
      const reg = yield* registry(name, other.integrity, other.bytes)
      const build = yield* buildTarball(tiny.lockFile, name, reg.url)
      assert.notStrictEqual(build.exitCode, 0)
      assert.include(build.stderr, "hash mismatch in fixed-output derivation")
      assert.include(build.stderr, tiny.integrity)
      assert.include(reg.requests, `/${name}/-/tiny-1.0.0.tgz`)
    }).pipe(Effect.provide(NodeContext.layer)))
})
