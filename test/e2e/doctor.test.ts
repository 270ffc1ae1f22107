/**
 * `nsh doctor --job` against the harness cluster: every check passes on a right nsh.conf, and each
 * check fails once on purpose (the checks after it are skipped or still run, as they depend on
 * it), always with a fix, exit 1, and no test job left in the queue.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Ref } from "effect"
import { chmod, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { runCli } from "../../src/Cli.js"
import type { CheckResult } from "../../src/cli/doctor/Check.js"
import { NixLogPlain } from "../../src/hook/NixLogLive.js"
import { CliLayersLive } from "../../src/layers/Cli.js"
import { NodeHttpClientLive } from "../../src/slurm/SlurmApiLive.js"
import { SshSessionLayer } from "../../src/ssh/SshSessionLive.js"
import { buildEnv } from "./support/build.js"
import { cluster, run, squeueJobs, token } from "./support/cluster.js"

const Order = ["nsh.conf", "token", "slurmrestd", "job", "ssh", "nix", "state-dir"]

interface Report {
  readonly ok: boolean
  readonly checks: ReadonlyArray<CheckResult>
}

/** A BuildEnv (nsh.conf for the harness, a 0600 token file, a state directory node1 shares), `extra` appended. */
const setup = (extra: ReadonlyArray<string> = []) =>
  Effect.map(buildEnv("doctor", extra.join("\n")), (env) => ({ ...env, tokenFile: join(env.dir, "slurm.jwt") }))

/** `bin/nsh doctor --job --json` as a user runs it. */
const doctor = (confPath: string) =>
  Effect.promise(async () => {
    const result = await run("./bin/nsh", ["doctor", "--job", "--json"], {
      env: { ...process.env, NSH_CONF: confPath }
    })
    return { code: result.code, report: JSON.parse(result.stdout) as Report, stderr: result.stderr }
  })

const statuses = (report: Report) => Object.fromEntries(report.checks.map((c) => [c.name, c.status]))
const check = (report: Report, name: string) => report.checks.find((c) => c.name === name)!

/** The doctor's own test job never stays queued: it is cancelled whatever happened. */
const assertNoDoctorJob = Effect.promise(async () => {
  const left = (await squeueJobs()).filter((j) => j.name === "nsh-doctor")
  assert.deepStrictEqual(left, [])
})

/** Asserts `name` failed with a fix and that every check came in order. */
const assertFailed = (report: Report, code: number | null, name: string, expected: RegExp) => {
  assert.strictEqual(code, 1)
  assert.isFalse(report.ok)
  assert.deepStrictEqual(report.checks.map((c) => c.name), Order)
  const failed = check(report, name)
  assert.strictEqual(failed.status, "fail", JSON.stringify(report.checks, null, 2))
  assert.match(failed.summary, expected)
  assert.isString(failed.fix)
  assert.deepStrictEqual(
    report.checks.filter((c) => c.status === "fail").map((c) => c.name),
    [name],
    JSON.stringify(report.checks, null, 2)
  )
}

describe("nsh doctor --job on the harness", () => {
  it.scoped("passes every check on a right nsh.conf, naming the job's node and the versions", () =>
    Effect.gen(function*() {
      const { confPath } = yield* setup()
      const { code, report, stderr } = yield* doctor(confPath)
      assert.strictEqual(code, 0, `${stderr}\n${JSON.stringify(report, null, 2)}`)
      assert.isTrue(report.ok)
      assert.deepStrictEqual(statuses(report), Object.fromEntries(Order.map((n) => [n, "pass"])))
      assert.include(check(report, "slurmrestd").details.join("\n"), `API version chosen: ${cluster().apiVersion}`)
      assert.match(check(report, "job").summary, /^job \d+ was queued and started on node1$/)
      assert.match(check(report, "nix").summary, /^nix-store \(Nix\) \d+\.\d+/)
      assert.notInclude(JSON.stringify(report), token())
      yield* assertNoDoctorJob
    }))

  it.scoped("nsh.conf: a bad value fails and the checks that need it are skipped", () =>
    Effect.gen(function*() {
      const { confPath } = yield* setup(["slurm-api-port = http"])
      const { code, report } = yield* doctor(confPath)
      assertFailed(report, code, "nsh.conf", /nsh\.conf:\d+: slurm-api-port: expected an integer/)
      assert.deepStrictEqual(report.checks.slice(1).map((c) => c.status), Order.slice(1).map(() => "skip"))
    }))

  it.scoped("token: a token file others can read fails", () =>
    Effect.gen(function*() {
      const { confPath, tokenFile } = yield* setup()
      yield* Effect.promise(() => chmod(tokenFile, 0o644))
      const { code, report } = yield* doctor(confPath)
      assertFailed(report, code, "token", /readable by others \(mode 0644\)/)
      assert.strictEqual(check(report, "token").fix, `chmod 600 ${tokenFile}`)
      yield* assertNoDoctorJob
    }))

  it.scoped("slurmrestd: a port nothing listens on fails, and the job and node checks are skipped", () =>
    Effect.gen(function*() {
      const { confPath } = yield* setup(["slurm-api-port = 9"])
      const { code, report } = yield* doctor(confPath)
      assertFailed(report, code, "slurmrestd", /cannot reach slurmrestd at http:\/\/127\.0\.0\.1:9/)
      assert.deepStrictEqual(report.checks.slice(3).map((c) => c.status), ["skip", "skip", "skip", "skip"])
    }))

  it.scoped("job: a partition the cluster does not have fails", () =>
    Effect.gen(function*() {
      const { confPath } = yield* setup([`slurm-extra-submission-params = {"partition": "nsh-doctor-nowhere"}`])
      const { code, report } = yield* doctor(confPath)
      assertFailed(report, code, "job", /refused the test job/)
      yield* assertNoDoctorJob
    }))

  it.scopedLive("ssh: a node whose host key is unknown fails (an ssh config without known_hosts)", () =>
    Effect.gen(function*() {
      const { confPath, dir } = yield* setup()
      const sshConfig = join(dir, "ssh_config")
      yield* Effect.promise(() =>
        writeFile(
          sshConfig,
          "Host *\n  UserKnownHostsFile /dev/null\n  GlobalKnownHostsFile /dev/null\nInclude /root/.ssh/config\n"
        )
      )
      // In process, with the real command and layers but this ssh config (OpenSSH reads no variable for it).
      const previous = process.env["NSH_CONF"]
      yield* Effect.acquireRelease(
        Effect.sync(() => {
          process.env["NSH_CONF"] = confPath
        }),
        () =>
          Effect.sync(() => {
            if (previous === undefined) delete process.env["NSH_CONF"]
            else process.env["NSH_CONF"] = previous
          })
      )
      const out = yield* Ref.make("")
      const real = yield* Effect.console
      const layers = {
        ...CliLayersLive,
        doctor: Layer.mergeAll(NodeContext.layer, NodeHttpClientLive, SshSessionLayer({ configFile: sshConfig }))
      }
      const code = yield* runCli(layers, ["node", "nsh", "doctor", "--job", "--json"], { colour: false }).pipe(
        Effect.withConsole({ ...real, log: (...a) => Ref.update(out, (o) => o + a.join(" ")) }),
        Effect.provide(Layer.merge(NodeContext.layer, NixLogPlain()))
      )
      const report = JSON.parse(yield* Ref.get(out)) as Report
      assertFailed(report, code, "ssh", /host key of node1 \(SHA256:\S+\) is not known/)
      assert.deepStrictEqual([check(report, "nix").status, check(report, "state-dir").status], ["skip", "skip"])
      yield* assertNoDoctorJob
    }))

  it.scoped("nix: a remote-nix-bin-dir without nix-store fails", () =>
    Effect.gen(function*() {
      const { confPath } = yield* setup(["remote-nix-bin-dir = /nonexistent-nix/bin"])
      const { code, report } = yield* doctor(confPath)
      assertFailed(report, code, "nix", /nix-store does not run on node1 from remote-nix-bin-dir .* \(exit 127/)
      assert.include(check(report, "nix").fix, "remote-nix-bin-dir")
      yield* assertNoDoctorJob
    }))

  it.scoped("state-dir: a slurm-state-dir missing on the node fails", () =>
    Effect.gen(function*() {
      const missing = `/root/.cache/nsh-e2e-doctor-missing-${process.pid}`
      const { confPath } = yield* setup([`slurm-state-dir = ${missing}`])
      const { code, report } = yield* doctor(confPath)
      assertFailed(report, code, "state-dir", /is missing or not writable on node1/)
      assert.include(check(report, "state-dir").fix, `mkdir -p ${missing}`)
      yield* assertNoDoctorJob
    }))
})
