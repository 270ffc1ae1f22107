import { describe, it } from "@effect/vitest"
import { Console, Effect, Layer, Option, Redacted, Ref } from "effect"
import { assert } from "vitest"
import { dryRun, dryRunExitCode, dryRunReport, renderText } from "../../src/cli/DryRun.js"
import { Config } from "../../src/config/Config.js"
import type { Settings } from "../../src/config/Settings.js"
import type { Derivation } from "../../src/store/Derivation.js"
import { messages, NixLogRecording } from "../support/NixLogRecording.js"
import { NixStoreWith } from "../support/NixStoreRecording.js"
import { testLoaded } from "../support/settings.js"

const drvPath = "/nix/store/vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv-hello-2.12.drv"
const secret = "eyJhbGciOiJIUzI1NiJ9.secret-token-text.sig"

const drv = (env: Record<string, string>): Derivation => ({
  drvPath,
  outputs: [{ name: "out", path: "/nix/store/wwwwwwwwwwwwwwwwwwwwwwwwwwwwwwww-hello-2.12", hashAlgo: "", hash: "" }],
  inputDrvs: [],
  inputSrcs: [],
  system: "x86_64-linux",
  builder: "/bin/sh",
  args: [],
  env: { name: "hello-2.12", ...env },
  structuredAttrs: undefined
})

const config = (overrides: Partial<Settings> = {}) =>
  Config.fromLoaded({
    ...testLoaded({ slurmJwtToken: Option.some(Redacted.make(secret)), ...overrides }),
    sources: new Map([
      ["slurm-api-host", { _tag: "file", file: "/etc/nix/nsh.conf", line: 3 }],
      ["slurm-jwt-token", { _tag: "env", variable: "SLURM_JWT" }]
    ]),
    files: ["/etc/nix/nsh.conf"]
  })

const withDrv = (env: Record<string, string>, overrides: Partial<Settings> = {}) =>
  Layer.merge(NixStoreWith(drv(env)), config(overrides))

/** Runs `dryRun`, returning what it printed. */
const printed = (json: boolean) =>
  Effect.gen(function*() {
    const lines = yield* Ref.make<ReadonlyArray<string>>([])
    const real = yield* Effect.console
    const recording: Console.Console = {
      ...real,
      log: (...args) => Ref.update(lines, (all) => [...all, args.join(" ")])
    }
    yield* dryRun([drvPath], { json }).pipe(Effect.withConsole(recording), Effect.provide(NixLogRecording))
    return (yield* Ref.get(lines)).join("\n")
  })

describe("dryRunReport", () => {
  it.effect("accepts a derivation the cluster can build and shows the exact request", () =>
    Effect.gen(function*() {
      const report = yield* dryRunReport(drvPath)
      assert.deepStrictEqual(report.decision, { accept: true })
      assert.strictEqual(report.apiVersion, "v0.0.38")
      assert.include(report.apiVersionNote, "every version")
      assert.strictEqual(report.endpoint, "http://localhost:6820/slurm/v0.0.38/job/submit")
      assert.match(report.tag, /^nsh-[0-9a-f]{16}$/)
      const body = report.request as { script: string; job: Record<string, unknown> }
      assert.strictEqual(body.script, report.script)
      assert.include(report.script, "nonce='<nonce>'")
      assert.deepStrictEqual(body.job, {
        name: "nix-build-hello-2.12",
        comment: `nsh:${report.tag} ${drvPath}`,
        current_working_directory: "/tmp",
        environment: {
          PATH: "/run/current-system/sw/bin:/nix/var/nix/profiles/default/bin:/usr/local/bin:/usr/bin:/bin",
          HOME: "/tmp/nsh-test-state",
          NSH_TAG: report.tag
        },
        standard_output: `/tmp/nsh-test-state/${report.tag}.log`,
        time_limit: 1440,
        partition: "conf",
        cpus_per_task: 2
      })
    }).pipe(
      Effect.provide(
        withDrv(
          { requiredSystemFeatures: "nsh", extraSlurmParams: JSON.stringify({ partition: "drv", cpus_per_task: 2 }) },
          { slurmExtraSubmissionParams: { partition: "conf" } }
        )
      )
    ))

  it.effect("shows an https:// slurm-api-url, what its certificate is verified against and the token's header", () =>
    Effect.gen(function*() {
      const report = yield* dryRunReport(drvPath)
      assert.strictEqual(report.endpoint, "https://slurm-rest.example.org:6820/slurm/v0.0.38/job/submit")
      assert.strictEqual(
        report.transport,
        "TLS, the certificate verified against slurm-api-ca-file /etc/nsh/ca.pem; the token as Authorization: Bearer"
      )
      const text = yield* printed(false)
      assert.include(text, "Endpoint: POST https://slurm-rest.example.org:6820/slurm/v0.0.38/job/submit\n")
      assert.include(text, "Transport: TLS, the certificate verified against slurm-api-ca-file /etc/nsh/ca.pem")
      assert.notInclude(text, secret)
    }).pipe(
      Effect.provide(
        withDrv({ requiredSystemFeatures: "nsh" }, {
          slurmApiUrl: "https://slurm-rest.example.org:6820",
          slurmApiCaFile: "/etc/nsh/ca.pem",
          slurmApiAuth: "bearer"
        })
      )
    ))

  it.effect("says plain HTTP when slurmrestd is reached without TLS", () =>
    Effect.gen(function*() {
      const report = yield* dryRunReport(drvPath)
      assert.strictEqual(report.transport, "plain HTTP (no TLS); the token as X-SLURM-USER-TOKEN")
    }).pipe(Effect.provide(withDrv({ requiredSystemFeatures: "nsh" }))))

  it.effect("shows which source set each job field", () =>
    Effect.gen(function*() {
      const report = yield* dryRunReport(drvPath)
      const job = (report.request as { job: Record<string, unknown> }).job
      assert.strictEqual(job["gres"], "gpu:1")
      assert.strictEqual(job["partition"], "conf")
      assert.strictEqual(job["cpus_per_task"], 2)
      assert.strictEqual(report.jobFieldSources["gres"], `slurm-feature-params "cuda"`)
      assert.strictEqual(report.jobFieldSources["cpus_per_task"], "the derivation's extraSlurmParams")
      assert.strictEqual(report.jobFieldSources["partition"], "slurm-extra-submission-params")
      assert.strictEqual(report.jobFieldSources["name"], "nsh")
      assert.strictEqual(report.jobFieldSources["time_limit"], "nsh")
      assert.match(renderText(report), /\n {2}gres +slurm-feature-params "cuda"\n/)
    }).pipe(
      Effect.provide(
        withDrv(
          { requiredSystemFeatures: "nsh cuda", extraSlurmParams: JSON.stringify({ cpus_per_task: 2 }) },
          {
            systemFeatures: ["nsh", "cuda"],
            slurmFeatureParams: { cuda: { gres: "gpu:1", partition: "gpu", cpus_per_task: 8 } },
            slurmExtraSubmissionParams: { partition: "conf" }
          }
        )
      )
    ))

  it.effect("declines with the routing reason", () =>
    Effect.gen(function*() {
      const report = yield* dryRunReport(drvPath)
      assert.isFalse(report.decision.accept)
      assert.include(report.decision.accept ? "" : report.decision.reason, "'kvm'")
    }).pipe(Effect.provide(withDrv({ requiredSystemFeatures: "kvm nsh" }))))

  it.effect("shows each setting's source and the token only as where it came from", () =>
    Effect.gen(function*() {
      const report = yield* dryRunReport(drvPath)
      const byKey = new Map(report.settings.map((s) => [s.key, s]))
      assert.deepStrictEqual(byKey.get("slurm-api-host"), {
        key: "slurm-api-host",
        value: "localhost",
        source: "/etc/nix/nsh.conf:3"
      })
      assert.deepStrictEqual(byKey.get("system-features"), {
        key: "system-features",
        value: ["nsh"],
        source: "default"
      })
      assert.deepStrictEqual(byKey.get("slurm-jwt-token"), {
        key: "slurm-jwt-token",
        value: "<redacted: from env SLURM_JWT>",
        source: "env SLURM_JWT"
      })
      const text = renderText(report)
      assert.include(text, "slurm-jwt-token")
      assert.include(text, "<redacted: from env SLURM_JWT>")
      assert.include(text, "Decision: accept")
      assert.include(text, "POST http://localhost:6820/slurm/v0.0.38/job/submit")
    }).pipe(Effect.provide(withDrv({}))))

  it.effect("prints text or one JSON document, never the token or a real nonce", () =>
    Effect.gen(function*() {
      const text = yield* printed(false)
      const json = yield* printed(true)
      for (const out of [text, json]) {
        assert.notInclude(out, secret)
        assert.notInclude(out, "secret-token-text")
        assert.notMatch(out, /[0-9a-f]{32}/)
      }
      const document = JSON.parse(json) as { drvPath: string; request: { job: { comment: string } } }
      assert.strictEqual(document.drvPath, drvPath)
      assert.include(document.request.job.comment, drvPath)
    }).pipe(Effect.provide(withDrv({}))))

  it.effect("fails with exit code 2 for a missing derivation and 1 for a bad extraSlurmParams", () =>
    Effect.gen(function*() {
      const missing = yield* Effect.flip(dryRunReport("/nix/store/missing.drv"))
      assert.strictEqual(missing._tag, "DerivationError")
      assert.strictEqual(dryRunExitCode(missing), 2)
      const bad = yield* Effect.flip(
        dryRunReport(drvPath).pipe(Effect.provide(withDrv({ extraSlurmParams: "--partition=x" })))
      )
      assert.strictEqual(bad._tag, "ExtraSlurmParamsError")
      assert.strictEqual(dryRunExitCode(bad), 1)
    }).pipe(Effect.provide(withDrv({}))))

  it.effect("shows the refusal of a field a derivation may not set, and exits 1", () =>
    Effect.gen(function*() {
      const code = yield* dryRun([drvPath], { json: false }).pipe(
        Effect.provide(withDrv({ extraSlurmParams: JSON.stringify({ environment: { PATH: "/x" } }) }))
      )
      assert.strictEqual(code, 1)
      const said = yield* messages
      assert.strictEqual(said.length, 1)
      assert.include(
        said[0],
        `0 nsh --dry-run: cannot submit ${drvPath}: the derivation's extraSlurmParams sets environment.PATH`
      )
    }).pipe(Effect.provide(NixLogRecording)))

  it.effect("shows a derivation's environment and comment as added to nsh's", () =>
    Effect.gen(function*() {
      const report = yield* dryRunReport(drvPath)
      assert.strictEqual(
        report.jobFieldSources["environment"],
        "nsh, with entries from the derivation's extraSlurmParams"
      )
      assert.strictEqual(report.jobFieldSources["comment"], "nsh's tag, then the derivation's extraSlurmParams")
      assert.strictEqual(report.jobFieldSources["partition"], "the derivation's extraSlurmParams")
      const job = (report.request as { job: { environment: Record<string, string>; comment: string } }).job
      assert.strictEqual(job.environment["OMP_NUM_THREADS"], "2")
      assert.isDefined(job.environment["PATH"])
      assert.match(job.comment, / mine$/)
    }).pipe(
      Effect.provide(
        withDrv({
          extraSlurmParams: JSON.stringify({ environment: { OMP_NUM_THREADS: "2" }, comment: "mine", partition: "p" })
        })
      )
    ))
})
