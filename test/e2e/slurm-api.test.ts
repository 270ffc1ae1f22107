/**
 * SlurmApi against the real slurmrestd of the harness cluster (http://127.0.0.1:6820; Slurm 22.05,
 * 24.11 or 26.05 under test/harness/on-release.sh).
 * Every job runs in /tmp, writes only there (node1's private /tmp) and is cancelled at the end of
 * its test whatever happens.
 */
import { Command, HttpClient, HttpClientError } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Clock, Effect, Exit, Layer, Option, Redacted, Ref } from "effect"
import { randomBytes } from "node:crypto"
import { type Activity, NixLog } from "../../src/dispatch/NixLog.js"
import { waitShowingQueue } from "../../src/runner/QueueStatus.js"
import type { JobSpec } from "../../src/slurm/JobSpec.js"
import { waitForAllocation, waitForEnd } from "../../src/slurm/Lifecycle.js"
import { SlurmApi } from "../../src/slurm/SlurmApi.js"
import { layerWith, NodeHttpClientLive } from "../../src/slurm/SlurmApiLive.js"
import { TestConfig } from "../support/settings.js"
import { cluster } from "./support/cluster.js"

const run = (cmd: string, ...args: Array<string>) =>
  Command.make(cmd, ...args).pipe(Command.string, Effect.provide(NodeContext.layer), Effect.orDie)

const scontrolToken = (lifespan: number) =>
  Effect.map(
    run("scontrol", "token", `lifespan=${lifespan}`),
    (out) => Redacted.make(out.trim().replace(/^SLURM_JWT=/, ""))
  )

/** A counting HttpClient around Node's, plus an optional fault injected into chosen requests. */
const countingHttp = (count: Ref.Ref<number>, loseAnswerOf?: (url: string) => Effect.Effect<boolean>) =>
  Layer.effect(
    HttpClient.HttpClient,
    Effect.map(HttpClient.HttpClient, (client) =>
      client.pipe(
        HttpClient.tapRequest(() => Ref.update(count, (n) => n + 1)),
        HttpClient.transform((response, request) =>
          Effect.flatMap(response, (r) =>
            Effect.flatMap(loseAnswerOf?.(request.url) ?? Effect.succeed(false), (lose) =>
              lose
                ? Effect.fail(
                  new HttpClientError.RequestError({
                    request,
                    reason: "Transport",
                    cause: Object.assign(new Error("socket hang up"), { code: "ECONNRESET" })
                  })
                )
                : Effect.succeed(r)))
        )
      ))
  ).pipe(Layer.provide(NodeHttpClientLive))

const apiWith = (token: Redacted.Redacted<string>, http: Layer.Layer<HttpClient.HttpClient> = NodeHttpClientLive) =>
  layerWith().pipe(
    Layer.provide(http),
    Layer.provide(TestConfig({ slurmApiHost: "127.0.0.1", slurmApiPort: 6820, slurmJwtToken: Option.some(token) }))
  )

const spec = (label: string, script: string, extra: Record<string, unknown> = {}): JobSpec => ({
  name: `nsh-e2e-${label}`,
  comment: `nsh:nsh-${randomBytes(8).toString("hex")} e2e-slurm-api-${label}`,
  script: `#!/bin/sh\n${script}\n`,
  currentWorkingDirectory: "/tmp",
  environment: { PATH: "/usr/bin:/bin" },
  standardOutput: `/tmp/nsh-e2e-${label}-%j.out`,
  timeLimitMinutes: 5,
  extra
})

/** Submits and guarantees the job is cancelled when the test's scope closes. */
const submitted = (job: JobSpec) =>
  Effect.flatMap(
    SlurmApi,
    (api) => Effect.acquireRelease(api.submit(job), ({ jobId }) => api.cancel(jobId).pipe(Effect.ignore))
  )

const inQueue = (name: string) => Effect.map(run("squeue", "-h", "-o", "%i", "-n", name), (out) => out.trim())

describe("SlurmApi on the harness cluster's slurmrestd", () => {
  it.scopedLive("negotiates the newest version served, runs ~1 s jobs to COMPLETED, and reports their cost", () =>
    Effect.gen(function*() {
      const token = yield* scontrolToken(600)
      const count = yield* Ref.make(0)
      const shown: Array<string> = []
      const showing = Layer.succeed(
        NixLog,
        NixLog.of({
          log: () => Effect.void,
          activity: (_type, text) =>
            Effect.sync((): Activity => (shown.push(text), { id: 1, result: () => Effect.void })),
          buildLog: () => Effect.void
        })
      )
      const oneJob = (i: number) =>
        Effect.gen(function*() {
          const before = yield* Ref.get(count)
          const started = yield* Clock.currentTimeMillis
          const { jobId } = yield* submitted(spec(`one-second-${i}`, "sleep 1"))
          const allocation = yield* waitShowingQueue(jobId)
          const runningSeen = yield* Clock.currentTimeMillis
          assert.strictEqual(allocation._tag, "Allocated")
          if (allocation._tag === "Allocated") assert.strictEqual(allocation.batchHost, "node1")
          const end = yield* waitForEnd(jobId)
          assert.deepStrictEqual(end.outcome, { _tag: "Succeeded" })
          const requests = (yield* Ref.get(count)) - before
          assert.strictEqual(requests, 1 + allocation.polls + end.polls)
          return { jobId, toRunning: runningSeen - started, requests, polls: `${allocation.polls}+${end.polls}` }
        }).pipe(Effect.scoped)
      const program = Effect.gen(function*() {
        const api = yield* SlurmApi
        assert.strictEqual(yield* api.apiVersion, cluster().apiVersion)
        yield* api.ping
        const setup = yield* Ref.get(count)
        const runs = []
        for (let i = 0; i < 5; i++) runs.push(yield* oneJob(i))
        for (const r of runs) {
          console.log(
            `[slurm-api e2e] ~1 s job ${r.jobId}: submit→RUNNING seen ${r.toRunning} ms, ${r.requests} requests (1 submit + ${r.polls} polls)`
          )
        }
        console.log(
          `[slurm-api e2e] negotiation + ping: ${setup} requests; queue states shown: ${JSON.stringify(shown)}`
        )
      })
      yield* program.pipe(Effect.provide(Layer.merge(apiWith(token, countingHttp(count)), showing)))
    }))

  it.scopedLive("reports exit 3 as Failed with code 3", () =>
    Effect.gen(function*() {
      const token = yield* scontrolToken(600)
      const { jobId } = yield* submitted(spec("exit3", "exit 3")).pipe(Effect.provide(apiWith(token)))
      const end = yield* waitForEnd(jobId).pipe(Effect.provide(apiWith(token)))
      assert.strictEqual(end.outcome._tag, "Failed")
      if (end.outcome._tag === "Failed") assert.deepStrictEqual(end.outcome.exit, { _tag: "Exited", code: 3 })
    }))

  it.scopedLive("cancels a held (pending) job and a running job", () =>
    Effect.gen(function*() {
      const api = yield* SlurmApi
      const held = yield* submitted(spec("held", "true", { hold: true }))
      assert.match(held.warnings.join(" "), /held state/)
      const pending = yield* api.getJob(held.jobId)
      assert.strictEqual(pending.state, "PENDING")
      yield* api.cancel(held.jobId)
      assert.strictEqual((yield* waitForEnd(held.jobId)).outcome._tag, "Cancelled")

      const long = yield* submitted(spec("long", "sleep 60"))
      const allocation = yield* waitForAllocation(long.jobId)
      assert.strictEqual(allocation._tag, "Allocated")
      yield* api.cancel(long.jobId)
      assert.strictEqual((yield* waitForEnd(long.jobId)).outcome._tag, "Cancelled")
      // Cancelling again (a finished job) is not an error.
      yield* api.cancel(long.jobId)
    }).pipe(Effect.provide(Layer.unwrapEffect(Effect.map(scontrolToken(600), (t) => apiWith(t))))))

  it.scopedLive("takes back a job queued despite errors, or reports the refusal (64 CPUs on a 4-CPU node)", () =>
    Effect.gen(function*() {
      const api = yield* SlurmApi
      const job = spec("impossible", "true")
      const exit = yield* Effect.exit(api.submit({ ...job, cpusPerTask: 64 }))
      assert.isTrue(Exit.isFailure(exit))
      const error = Exit.isFailure(exit) ? exit.cause : undefined
      const failure = error?._tag === "Fail" ? error.error : undefined
      assert.strictEqual(failure?._tag, "SlurmRequestError")
      if (failure?._tag === "SlurmRequestError") {
        if (failure.jobId === undefined) {
          // Slurm 24.11 refuses such a job outright (2014), with no job id to take back.
          assert.match(failure.message, /Requested node configuration is not available/)
        } else {
          // 22.05 queues it and reports the error (lab 41/42), 26.05 queues it with the reason as a
          // "non-zero return code" warning: nsh must cancel it.
          assert.match(failure.message, /Requested partition configuration not available now/)
          assert.strictEqual((yield* api.getJob(failure.jobId)).state, "CANCELLED")
        }
      }
      assert.strictEqual(yield* inQueue(job.name), "")
    }).pipe(Effect.provide(Layer.unwrapEffect(Effect.map(scontrolToken(600), (t) => apiWith(t))))))

  it.scopedLive("finds the job by its comment when a submit answer is lost, instead of submitting twice", () =>
    Effect.gen(function*() {
      const token = yield* scontrolToken(600)
      const count = yield* Ref.make(0)
      const lost = yield* Ref.make(false)
      // Lose the answer to the first submit only: the job exists, nsh does not know its id.
      const loseFirstSubmit = (url: string) =>
        url.endsWith("/job/submit")
          ? Ref.getAndSet(lost, true).pipe(Effect.map((already) => !already))
          : Effect.succeed(false)
      const job = spec("lost-answer", "sleep 30")
      const program = Effect.gen(function*() {
        const submittedJob = yield* submitted(job)
        assert.match(submittedJob.warnings.join(" "), /found the job by its comment/)
        assert.strictEqual(yield* inQueue(job.name), String(submittedJob.jobId))
      })
      yield* program.pipe(Effect.provide(apiWith(token, countingHttp(count, loseFirstSubmit))))
    }))

  it.scopedLive("says an expired, garbage or foreign token was rejected, and never shows it", () =>
    Effect.gen(function*() {
      const expired = yield* scontrolToken(1)
      yield* Effect.sleep("2100 millis")
      const good = Redacted.value(yield* scontrolToken(600))
      const [header, payload] = good.split(".")
      const badSignature = Redacted.make(
        `${header}.${payload}.${Buffer.from("not the signature").toString("base64url")}`
      )
      const garbage = Redacted.make("garbage-token")
      const failures = []
      for (
        const [token, expected] of [
          [expired, /expired at \d{4}-\d\d-\d\dT/],
          [badSignature, /not yet expired: wrong signature or another user's token\?/],
          [garbage, /not a readable JWT/]
        ] as const
      ) {
        for (const operation of ["ping", "getJob", "submit"] as const) {
          const exit = yield* Effect.exit(
            Effect.flatMap(
              SlurmApi,
              (api) =>
                operation === "ping"
                  ? api.ping
                  : operation === "getJob"
                  ? api.getJob(1)
                  : api.submit(spec("auth", "true"))
            ).pipe(Effect.provide(apiWith(token)))
          )
          assert.isTrue(Exit.isFailure(exit), `${operation} with a rejected token must fail`)
          const text = `${JSON.stringify(exit)} ${String(exit)} ${Exit.isFailure(exit) ? String(exit.cause) : ""}`
          assert.match(text, /SlurmAuthError/, `${operation}: ${text}`)
          assert.match(text, expected, `${operation}: ${text}`)
          assert.notInclude(text, Redacted.value(token))
          failures.push(text)
        }
      }
      assert.notInclude(failures.join("\n"), good)
      assert.strictEqual(yield* inQueue("nsh-e2e-auth"), "")
    }))
})
