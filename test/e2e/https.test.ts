/**
 * nsh through a real TLS endpoint (Debian's nginx in front of the harness's slurmrestd, certificates
 * from a CA the test makes): a build with slurm-api-ca-file, the wrong CA and the wrong host name
 * refused with what to do and nothing sent in plain, and `Authorization: Bearer` really sent (and
 * accepted from Slurm 23.02 on).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { readFile, writeFile } from "node:fs/promises"
import type { CheckResult } from "../../src/cli/doctor/Check.js"
import {
  assertBuiltOnNode1,
  assertCleanedUp,
  buildEnv,
  nshBuild,
  outputsOf,
  plannedDerivations,
  submittedJobs
} from "./support/build.js"
import { run } from "./support/cluster.js"
import { tlsProxy } from "./support/tlsProxy.js"

interface Report {
  readonly ok: boolean
  readonly checks: ReadonlyArray<CheckResult>
}

/** `bin/nsh doctor --json` (no test job) and its slurmrestd check. */
const doctor = (confPath: string) =>
  Effect.promise(async () => {
    const result = await run("./bin/nsh", ["doctor", "--json"], { env: { ...process.env, NSH_CONF: confPath } })
    const report = JSON.parse(result.stdout) as Report
    const check = report.checks.find((c) => c.name === "slurmrestd")
    assert.isDefined(check, result.stdout)
    return { code: result.code, check: check!, text: JSON.stringify(check) }
  })

/** The Slurm release of the harness (22.05 on bookworm, 24.11 on trixie, 26.05 on sid). */
const slurmRelease = Effect.promise(async () => {
  const version = /(\d+)\.(\d+)\./.exec((await run("scontrol", ["--version"])).stdout)
  assert.isNotNull(version, "scontrol --version")
  return [Number(version![1]), Number(version![2])] as const
})

describe("nsh over HTTPS", () => {
  it.scopedLive(
    "builds through an https:// slurm-api-url, verifying against slurm-api-ca-file",
    () =>
      Effect.gen(function*() {
        const proxy = yield* tlsProxy
        const env = yield* buildEnv("https", `slurm-api-ca-file = ${proxy.caFile}`, `slurm-api-url = ${proxy.url}`)

        const report = yield* doctor(env.confPath)
        assert.strictEqual(report.check.status, "pass", report.text)
        assert.match(
          report.check.summary,
          new RegExp(`^${proxy.url} answers and accepts the token \\(TLSv1\\.[23]\\)$`)
        )
        assert.include(
          report.check.details,
          `verified against slurm-api-ca-file ${proxy.caFile}, for the host name 127.0.0.1`
        )
        assert.isTrue(
          report.check.details.some((d) =>
            d.startsWith("certificate CN=server, issued by CN=nsh-e2e-ca, valid until ")
          ),
          report.text
        )

        yield* Effect.promise(proxy.clearLog)
        const build = yield* nshBuild(env, "single", [], 120_000)
        assert.strictEqual(build.code, 0, build.stderr)
        const [drvPath] = plannedDerivations(build)
        const jobs = submittedJobs(build)
        assert.deepStrictEqual(jobs.map((j) => j.drvPath), [drvPath])
        const outputs = yield* outputsOf(drvPath!)
        yield* assertBuiltOnNode1(outputs)
        yield* assertCleanedUp(env, [jobs[0]!.jobId])
        // Every request of the build went through the proxy, with the X-SLURM headers.
        const log = yield* Effect.promise(proxy.log)
        assert.isTrue(
          log.some((l) => /^POST \/slurm\/v0\.0\.\d+\/job\/submit auth=none x-slurm-user-token=present 200$/.test(l)),
          log.join("\n")
        )
        assert.isTrue(
          log.some((l) => new RegExp(`^GET /slurm/v0\\.0\\.\\d+/job/${jobs[0]!.jobId} `).test(l)),
          log.join("\n")
        )
      }),
    240_000
  )

  it.scopedLive(
    "refuses a certificate from another CA, saying to set slurm-api-ca-file, and sends nothing",
    () =>
      Effect.gen(function*() {
        const proxy = yield* tlsProxy
        const env = yield* buildEnv(
          "https-ca",
          `slurm-api-ca-file = ${proxy.otherCaFile}`,
          `slurm-api-url = ${proxy.url}`
        )
        const report = yield* doctor(env.confPath)
        assert.strictEqual(report.code, 1)
        assert.strictEqual(report.check.status, "fail", report.text)
        assert.include(
          report.check.summary,
          `cannot trust slurmrestd at ${proxy.url}: its certificate is not signed by a CA in slurm-api-ca-file ${proxy.otherCaFile}`
        )
        assert.include(report.check.summary, "set slurm-api-ca-file to the PEM file of the CA that signed it")
        assert.include(report.check.summary, "nsh never falls back to plain HTTP")

        // The hook declines with the same reason, before any request reached slurmrestd.
        const build = yield* nshBuild(env, "single", [], 120_000)
        assert.include(build.stderr, `cannot trust slurmrestd at ${proxy.url}`)
        assert.deepStrictEqual(submittedJobs(build), [])
        assert.deepStrictEqual(yield* Effect.promise(proxy.log), [])
      }),
    240_000
  )

  it.scopedLive(
    "refuses a certificate for another host name, saying to fix the name in slurm-api-url",
    () =>
      Effect.gen(function*() {
        const proxy = yield* tlsProxy
        const env = yield* buildEnv(
          "https-name",
          `slurm-api-ca-file = ${proxy.caFile}`,
          `slurm-api-url = ${proxy.wrongHostUrl}`
        )
        const report = yield* doctor(env.confPath)
        assert.strictEqual(report.check.status, "fail", report.text)
        assert.include(
          report.check.summary,
          `cannot trust slurmrestd at ${proxy.wrongHostUrl}: its certificate is not for 127.0.0.2`
        )
        assert.include(report.check.summary, "use a host name the certificate names in slurm-api-url")
        assert.deepStrictEqual(yield* Effect.promise(proxy.log), [])
      }),
    120_000
  )

  it.scopedLive(
    "sends Authorization: Bearer (and no X-SLURM-USER-TOKEN) with slurm-api-auth = bearer",
    () =>
      Effect.gen(function*() {
        const proxy = yield* tlsProxy
        // No slurm-user-name: with Bearer the token names its user.
        const env = yield* buildEnv(
          "https-bearer",
          `slurm-api-ca-file = ${proxy.caFile}\nslurm-api-auth = bearer`,
          `slurm-api-url = ${proxy.url}`
        )
        yield* Effect.promise(async () =>
          writeFile(env.confPath, (await readFile(env.confPath, "utf8")).replace(/^slurm-user-name = .*\n/m, ""))
        )

        const report = yield* doctor(env.confPath)
        const log = yield* Effect.promise(proxy.log)
        assert.isNotEmpty(log)
        assert.isTrue(log.every((l) => / auth=bearer x-slurm-user-token=absent /.test(l)), log.join("\n"))
        const [major, minor] = yield* slurmRelease
        if (major > 23 || (major === 23 && minor >= 2)) {
          assert.strictEqual(report.check.status, "pass", report.text)
          assert.include(report.check.details, "token sent as Authorization: Bearer")
        } else {
          // Slurm 22.05's slurmrestd reads only X-SLURM-USER-TOKEN.
          assert.strictEqual(report.check.status, "fail", report.text)
          assert.include(report.check.summary, "slurm-api-auth = bearer needs Slurm 23.02 or later")
        }
      }),
    120_000
  )
})
