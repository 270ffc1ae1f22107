/**
 * `nsh --dry-run` as a user runs it: the bundled bin/nsh, an nsh.conf named by NSH_CONF, and a
 * derivation instantiated by this machine's Nix (test/fixtures/store/e2e-drvs.nix).
 */
import { Command, FileSystem } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { assert, beforeAll, describe, it } from "@effect/vitest"
import { Effect, Stream } from "effect"
import { fileURLToPath } from "node:url"

const repo = fileURLToPath(new URL("../..", import.meta.url))
const drvsNix = `${repo}test/fixtures/store/e2e-drvs.nix`
const secret = "eyJhbGciOiJIUzI1NiJ9.nsh-dry-run-e2e-secret.c2ln"

const text = (s: Stream.Stream<Uint8Array, unknown>) => Stream.mkString(Stream.decodeText(s))

/** Runs a command in the repo to completion, whatever its exit code. */
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
      return { exitCode, stdout, stderr }
    })
  )

beforeAll(async () => {
  const build = await Effect.runPromise(run("node", ["scripts/build.mjs"]).pipe(Effect.provide(NodeContext.layer)))
  if (build.exitCode !== 0) throw new Error(`node scripts/build.mjs failed: ${build.stderr}`)
}, 120_000)

interface Report {
  readonly drvPath: string
  readonly decision: { readonly accept: boolean }
  readonly tag: string
  readonly endpoint: string
  readonly apiVersion: string
  readonly settings: ReadonlyArray<{ readonly key: string; readonly value: unknown; readonly source: string }>
  readonly request: { readonly script: string; readonly job: Record<string, unknown> }
}

describe("nsh --dry-run", () => {
  it.scoped("prints the merged job as JSON, touching nothing and never showing the token", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* fs.makeTempDirectoryScoped({ prefix: "nsh-dry-run-" })
      const stateDir = `${dir}/state`
      const conf = `${dir}/nsh.conf`
      yield* fs.writeFileString(
        conf,
        [
          "# written by test/e2e/dry-run.test.ts",
          `slurm-state-dir = ${stateDir}`,
          `slurm-extra-submission-params = {"partition": "batch"}`,
          `slurm-jwt-token = ${secret}`,
          "slurm-api-port = 6821",
          ""
        ].join("\n")
      )
      yield* fs.chmod(conf, 0o600)
      const instantiated = yield* run("nix-instantiate", ["--option", "substituters", "", drvsNix, "-A", "odd"])
      assert.strictEqual(instantiated.exitCode, 0, instantiated.stderr)
      const drvPath = instantiated.stdout.trim()

      const env = { NSH_CONF: conf, SLURM_JWT: "" }
      const result = yield* run("./bin/nsh", ["--dry-run", drvPath, "--json"], env)
      assert.strictEqual(result.exitCode, 0, result.stderr)
      const report = JSON.parse(result.stdout) as Report
      assert.strictEqual(report.drvPath, drvPath)
      assert.isTrue(report.decision.accept)
      assert.strictEqual(report.apiVersion, "v0.0.38")
      assert.strictEqual(report.endpoint, "http://localhost:6821/slurm/v0.0.38/job/submit")
      // The derivation asks for {cpus_per_task = 2; partition = "debug";}; nsh.conf overrides the partition.
      assert.deepStrictEqual(report.request.job, {
        name: "nix-build-nsh-e2e-odd+name.x_y__z",
        comment: `nsh:${report.tag} ${drvPath}`,
        current_working_directory: "/tmp",
        environment: {
          PATH: "/run/current-system/sw/bin:/nix/var/nix/profiles/default/bin:/usr/local/bin:/usr/bin:/bin",
          HOME: stateDir,
          NSH_TAG: report.tag
        },
        standard_output: `${stateDir}/${report.tag}.log`,
        time_limit: 1440,
        cpus_per_task: 2,
        partition: "batch"
      })
      assert.include(report.request.script, "nonce='<nonce>'")
      const setting = (key: string) => report.settings.find((s) => s.key === key)
      assert.deepStrictEqual(setting("slurm-extra-submission-params"), {
        key: "slurm-extra-submission-params",
        value: { partition: "batch" },
        source: `${conf}:3`
      })
      assert.strictEqual(setting("slurm-jwt-token")?.value, `<redacted: from ${conf}:4>`)
      assert.strictEqual(setting("job-lease-timeout")?.source, "default")

      for (const out of [result.stdout, result.stderr]) assert.notInclude(out, "nsh-dry-run-e2e-secret")
      assert.isFalse(yield* fs.exists(stateDir), "a dry run must not create the state directory")

      const textRun = yield* run("./bin/nsh", ["--dry-run", drvPath], env)
      assert.strictEqual(textRun.exitCode, 0, textRun.stderr)
      assert.include(textRun.stdout, "Decision: accept")
      for (const out of [textRun.stdout, textRun.stderr]) assert.notInclude(out, "nsh-dry-run-e2e-secret")
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scoped("exits 2 with a clear message for a missing path or a file that is not a derivation", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* fs.makeTempDirectoryScoped({ prefix: "nsh-dry-run-" })
      yield* fs.writeFileString(`${dir}/nsh.conf`, "")
      yield* fs.writeFileString(`${dir}/fake.drv`, "not an ATerm\n")
      const env = { NSH_CONF: `${dir}/nsh.conf` }
      const missing = yield* run("./bin/nsh", ["--dry-run", `${dir}/missing.drv`, "--json"], env)
      assert.strictEqual(missing.exitCode, 2)
      assert.include(missing.stderr, `cannot read derivation ${dir}/missing.drv: no such file`)
      assert.strictEqual(missing.stdout, "")
      const notDrv = yield* run("./bin/nsh", ["--dry-run", `${dir}/fake.drv`], env)
      assert.strictEqual(notDrv.exitCode, 2)
      assert.include(notDrv.stderr, "it is not a derivation")
    }).pipe(Effect.provide(NodeContext.layer)))
})
