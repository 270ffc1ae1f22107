/**
 * SlurmApiLive against a scripted slurmrestd: negotiation, retries, timeouts, token rejection,
 * submits that queue a job despite errors or lose their answer, concurrency.
 */
import { FileSystem } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit } from "effect"
import { writeFile } from "node:fs/promises"
import type { Settings } from "../../src/config/Settings.js"
import type { ApiVersion } from "../../src/slurm/dialects/index.js"
import type { JobSpec } from "../../src/slurm/JobSpec.js"
import type { SlurmApiService } from "../../src/slurm/SlurmApi.js"
import { makeSlurmApi, NodeHttpClientLive } from "../../src/slurm/SlurmApiLive.js"
import { isPassingFault, type SlurmError } from "../../src/slurm/SlurmErrors.js"
import {
  type Answer,
  drop,
  fakeConfig,
  fakeSlurmrestd,
  fastHttpOptions,
  future,
  goodToken,
  json,
  type SeenRequest,
  slow,
  text
} from "./support/FakeSlurmrestd.js"
import { sample, synthetic } from "./support/fixtures.js"
import { jwt } from "./support/jwt.js"

const fast = fastHttpOptions

const spec: JobSpec = {
  name: "nix-build-hello",
  comment: "nsh:nsh-0123456789abcdef /nix/store/abc-hello.drv",
  script: "#!/bin/sh\ntrue\n",
  currentWorkingDirectory: "/tmp",
  environment: { PATH: "/usr/bin:/bin" },
  standardOutput: "/tmp/nsh-0123456789abcdef.log",
  timeLimitMinutes: 10,
  extra: {}
}

/** A fake serving `served` and the SlurmApi talking to it. */
const setup = (
  served: ReadonlyArray<ApiVersion>,
  handler: (request: SeenRequest, path: string) => Answer,
  options: { readonly token?: string | undefined; readonly settings?: Partial<Settings> } = {}
) =>
  Effect.gen(function*() {
    const fake = yield* fakeSlurmrestd(served, handler)
    const token = "token" in options ? options.token : goodToken
    const api: SlurmApiService = yield* makeSlurmApi(fast).pipe(
      Effect.provide(NodeHttpClientLive),
      Effect.provide(fakeConfig(fake.port, token, { slurmApiVersion: "v0.0.38", ...options.settings }))
    )
    return { fake, api }
  })

const failureOf = <A, E>(exit: Exit.Exit<A, E>): E => {
  if (Exit.isSuccess(exit)) throw new Error("expected a failure")
  const failure = Cause.failureOption(exit.cause)
  if (failure._tag === "None") throw new Error(`expected a typed failure: ${Cause.pretty(exit.cause)}`)
  return failure.value
}

const paths = (requests: ReadonlyArray<SeenRequest>) => requests.map((r) => `${r.method} ${r.path}`)

describe("version negotiation", () => {
  it.scopedLive("picks the newest served version once, probing every version at once", () =>
    Effect.gen(function*() {
      const { api, fake } = yield* setup(
        ["v0.0.40", "v0.0.41", "v0.0.42"],
        () => json(synthetic("v0.0.45-ping.json")),
        {
          settings: { slurmApiVersion: "auto" }
        }
      )
      assert.strictEqual(yield* api.apiVersion, "v0.0.42")
      assert.strictEqual(yield* api.apiVersion, "v0.0.42")
      assert.deepStrictEqual(paths(fake.requests()).sort(), [
        "GET /slurm/v0.0.38/ping",
        "GET /slurm/v0.0.39/ping",
        "GET /slurm/v0.0.40/ping",
        "GET /slurm/v0.0.41/ping",
        "GET /slurm/v0.0.42/ping",
        "GET /slurm/v0.0.43/ping",
        "GET /slurm/v0.0.44/ping",
        "GET /slurm/v0.0.45/ping"
      ])
    }))

  it.scopedLive("shares one negotiation between concurrent first uses", () =>
    Effect.gen(function*() {
      const { api, fake } = yield* setup(["v0.0.38"], () => json(sample("01-ping-v0.0.38.json")), {
        settings: { slurmApiVersion: "auto" }
      })
      const versions = yield* Effect.all([api.apiVersion, api.apiVersion, api.apiVersion], { concurrency: "unbounded" })
      assert.deepStrictEqual(versions, ["v0.0.38", "v0.0.38", "v0.0.38"])
      assert.strictEqual(fake.requests().length, 8)
    }))

  it.scopedLive("lists what the server offers when it serves none of nsh's versions", () =>
    Effect.gen(function*() {
      const { api } = yield* setup([], (_, path) =>
        path === "/openapi/v3"
          ? json({ paths: { "/slurm/v0.0.36/ping": {}, "/slurm/v0.0.37/ping": {}, "/slurm/v0.0.37/jobs": {} } })
          : text("?", 500), { settings: { slurmApiVersion: "auto" } })
      const error = failureOf(yield* Effect.exit(api.ping))
      assert.strictEqual(error._tag, "SlurmVersionUnsupported")
      assert.match(error.message, /it offers v0\.0\.36, v0\.0\.37 \(set slurm-api-version/)
    }))

  it.scopedLive("uses an explicit version as given, without probing", () =>
    Effect.gen(function*() {
      const { api, fake } = yield* setup(["v0.0.39"], () => json({ pings: [] }), {
        settings: { slurmApiVersion: "v0.0.39" }
      })
      assert.strictEqual(yield* api.apiVersion, "v0.0.39")
      assert.strictEqual(fake.requests().length, 0)
      yield* api.ping
      assert.deepStrictEqual(paths(fake.requests()), ["GET /slurm/v0.0.39/ping"])
    }))

  it.scopedLive("negotiates anew after the server stopped serving the version", () =>
    Effect.gen(function*() {
      let upgraded = false
      const { api, fake } = yield* setup(["v0.0.38", "v0.0.39"], (request) =>
        upgraded && request.path.startsWith("/slurm/v0.0.39")
          ? text("Unable find requested URL. Please view /openapi/v3 for API reference.", 404)
          : json(sample("01-ping-v0.0.38.json")), { settings: { slurmApiVersion: "auto" } })
      assert.strictEqual(yield* api.apiVersion, "v0.0.39")
      upgraded = true
      assert.strictEqual(failureOf(yield* Effect.exit(api.ping))._tag, "SlurmVersionUnsupported")
      assert.strictEqual(yield* api.apiVersion, "v0.0.38")
      assert.isTrue(fake.requests().length > 8)
    }))
})

describe("authentication", () => {
  it.scopedLive("sends the token and the user name from its sun claim, or slurm-user-name", () =>
    Effect.gen(function*() {
      const { api, fake } = yield* setup(["v0.0.38"], () => json(sample("01-ping-v0.0.38.json")))
      yield* api.ping
      assert.deepInclude(fake.requests()[0]!.headers, { "x-slurm-user-token": goodToken, "x-slurm-user-name": "alice" })
      const other = yield* setup(["v0.0.38"], () => json(sample("01-ping-v0.0.38.json")), {
        settings: { slurmApiVersion: "v0.0.38", slurmUserName: "bob" }
      })
      yield* other.api.ping
      assert.strictEqual(other.fake.requests()[0]!.headers["x-slurm-user-name"], "bob")
    }))

  it.scopedLive("tells where to put a token when there is none, without sending anything", () =>
    Effect.gen(function*() {
      const { api, fake } = yield* setup(["v0.0.38"], () => json({}), { token: undefined })
      const error = failureOf(yield* Effect.exit(api.getJob(1)))
      assert.strictEqual(error._tag, "SlurmAuthError")
      assert.match(
        error.message,
        /no Slurm token is configured .* SLURM_JWT, in the file named by slurm-jwt-token-file/
      )
      assert.strictEqual(fake.requests().length, 0)
    }))

  const expiredToken = jwt({ exp: 1795583515 - 3600 * 24 * 400, sun: "alice" })
  const rejected: Record<string, string> = {
    "/ping": "49-auth-garbage-token-ping.json",
    "/jobs": "50-auth-garbage-token-jobs.json",
    "/job/2": "55-auth-expired-token-job.json",
    "/job/submit": "56-auth-expired-token-submit.json"
  }
  const rejecting = (_: SeenRequest, path: string) =>
    rejected[path] === undefined
      ? json(sample("53-auth-garbage-token-cancel.json"), 500)
      : json(sample(rejected[path]!), 500)

  it.scopedLive("recognises an expired token at once, on every operation, instead of 'job not found'", () =>
    Effect.gen(function*() {
      const { api, fake } = yield* setup(["v0.0.38"], rejecting, { token: expiredToken })
      const errors = [
        failureOf(yield* Effect.exit(api.ping)),
        failureOf(yield* Effect.exit(api.getJob(2))),
        failureOf(yield* Effect.exit(api.listJobs)),
        failureOf(yield* Effect.exit(api.cancel(2))),
        failureOf(yield* Effect.exit(api.submit(spec)))
      ]
      for (const error of errors) {
        assert.strictEqual(error._tag, "SlurmAuthError")
        assert.match(error.message, /^the Slurm token was rejected by http:\/\/127\.0\.0\.1:\d+: expired at 2025-10-/)
      }
      // One request each: nothing to retry when the token's own expiry explains the answer.
      assert.strictEqual(fake.requests().length, 5)
    }))

  it.scopedLive("recognises a token that is not a JWT at once", () =>
    Effect.gen(function*() {
      const { api, fake } = yield* setup(["v0.0.38"], rejecting, { token: "garbage" })
      const error = failureOf(yield* Effect.exit(api.ping))
      assert.match(error.message, /rejected by .*: it is not a readable JWT/)
      assert.strictEqual(fake.requests().length, 1)
    }))

  it.scopedLive("suspects signature or user after retries when the token has not expired", () =>
    Effect.gen(function*() {
      const { api, fake } = yield* setup(["v0.0.38"], rejecting, { token: goodToken })
      const error = failureOf(yield* Effect.exit(api.getJob(2)))
      assert.strictEqual(error._tag, "SlurmAuthError")
      assert.match(error.message, /not yet expired: wrong signature or another user's token\?/)
      assert.strictEqual(fake.requests().length, 4)
    }))

  it.scopedLive("never shows the token in errors, however they are printed", () =>
    Effect.gen(function*() {
      const secret = jwt({ exp: 1000, sun: "alice", secret: "s3cr3t-marker" })
      const { api } = yield* setup(["v0.0.38"], rejecting, { token: secret })
      const noAuth = yield* setup(["v0.0.38"], () => text("Authentication failure", 401), { token: secret })
      const dead = yield* setup(["v0.0.38"], () => drop, { token: secret })
      const exits: ReadonlyArray<Exit.Exit<unknown, SlurmError>> = [
        yield* Effect.exit(api.ping),
        yield* Effect.exit(api.submit(spec)),
        yield* Effect.exit(api.getJob(2)),
        yield* Effect.exit(noAuth.api.ping),
        yield* Effect.exit(dead.api.getJob(2))
      ]
      for (const exit of exits) {
        assert.isTrue(Exit.isFailure(exit))
        const error = failureOf(exit)
        const printed = [
          String(error),
          error.message,
          JSON.stringify(error),
          JSON.stringify(exit),
          Cause.pretty(Exit.isFailure(exit) ? exit.cause : Cause.empty),
          String(exit)
        ]
        for (const p of printed) {
          assert.notInclude(p, secret)
          assert.notInclude(p, secret.split(".")[1]!)
        }
      }
    }))

  it.scopedLive("reports a 401 as an authentication problem", () =>
    Effect.gen(function*() {
      const { api } = yield* setup(["v0.0.38"], () => text("Authentication failure", 401))
      const error = failureOf(yield* Effect.exit(api.ping))
      assert.strictEqual(error._tag, "SlurmAuthError")
      assert.match(error.message, /HTTP 401 Authentication failure; user name alice/)
    }))
})

describe("transient failures", () => {
  /** Answers with `faults` in turn, then with `ok`. */
  const flaky = (faults: ReadonlyArray<Answer>, ok: Answer) => {
    let n = 0
    return () => faults[n++] ?? ok
  }
  const job = json(sample("07-job-running.json"))

  it.scopedLive("retries 502/503/504 and slurmctld hiccups (5004 timeouts) with backoff", () =>
    Effect.gen(function*() {
      const hiccup = json({ errors: [{ error_number: 5004, error: "Socket timed out on send/recv operation" }] }, 500)
      const { api, fake } = yield* setup(
        ["v0.0.38"],
        flaky([text("bad gateway", 502), text("unavailable", 503), hiccup], job)
      )
      assert.strictEqual((yield* api.getJob(1)).state, "RUNNING")
      assert.strictEqual(fake.requests().length, 4)
    }))

  it.scopedLive("retries a dropped connection and a slow answer", () =>
    Effect.gen(function*() {
      const { api, fake } = yield* setup(["v0.0.38"], flaky([drop, slow(1000, job)], job))
      assert.strictEqual((yield* api.getJob(1)).batchHost, "node1")
      assert.strictEqual(fake.requests().length, 3)
    }))

  it.scopedLive("gives up after the retries with what went wrong", () =>
    Effect.gen(function*() {
      const { api, fake } = yield* setup(["v0.0.38"], () => slow(1000, job))
      const error = failureOf(yield* Effect.exit(api.getJob(1)))
      assert.strictEqual(error._tag, "SlurmUnreachable")
      assert.match(
        error.message,
        /^cannot reach slurmrestd at http:\/\/127\.0\.0\.1:\d+: no answer within 300ms \(check slurm-api-url or slurm-api-host/
      )
      assert.strictEqual(fake.requests().length, 4)
    }))

  it.scopedLive("reports a refused connection", () =>
    Effect.gen(function*() {
      // Nothing listens on port 1 of the loopback address.
      const api = yield* makeSlurmApi(fast).pipe(
        Effect.provide(NodeHttpClientLive),
        Effect.provide(fakeConfig(1, goodToken, { slurmApiVersion: "v0.0.38" }))
      )
      const error = failureOf(yield* Effect.exit(api.ping))
      assert.strictEqual(error._tag, "SlurmUnreachable")
      assert.match(error.message, /connection refused \(check slurm-api-url or slurm-api-host\/slurm-api-port/)
    }))

  it.scopedLive("does not retry requests slurmrestd refused", () =>
    Effect.gen(function*() {
      const { api, fake } = yield* setup(["v0.0.38"], () => json(sample("31-get-non-numeric-job.json"), 400))
      assert.strictEqual(failureOf(yield* Effect.exit(api.getJob(1)))._tag, "SlurmRequestError")
      assert.strictEqual(fake.requests().length, 1)
    }))

  it.scopedLive("reuses one connection for requests one after another", () =>
    Effect.gen(function*() {
      const { api, fake } = yield* setup(["v0.0.38"], () => job)
      for (let i = 0; i < 5; i++) yield* api.getJob(1)
      assert.strictEqual(new Set(fake.requests().map((r) => r.remotePort)).size, 1)
    }))

  it.scopedLive("keeps at most maxConcurrentRequests requests in flight", () =>
    Effect.gen(function*() {
      const fake = yield* fakeSlurmrestd(["v0.0.38"], () => slow(20, json(sample("07-job-running.json"))))
      const api = yield* makeSlurmApi({ ...fast, maxConcurrentRequests: 3 }).pipe(
        Effect.provide(NodeHttpClientLive),
        Effect.provide(fakeConfig(fake.port, goodToken, { slurmApiVersion: "v0.0.38" }))
      )
      yield* Effect.all(Array.from({ length: 12 }, () => api.getJob(1)), { concurrency: "unbounded" })
      assert.strictEqual(fake.requests().length, 12)
      assert.strictEqual(fake.maxInFlight(), 3)
    }))
})

describe("jobs", () => {
  it.scopedLive("reports unknown jobs as not found, on 22.05 (500) and later (404)", () =>
    Effect.gen(function*() {
      const old = yield* setup(["v0.0.38"], () => json(sample("29-get-unknown-job.json"), 500))
      assert.strictEqual(failureOf(yield* Effect.exit(old.api.getJob(999999)))._tag, "SlurmJobNotFound")
      const later = yield* setup(["v0.0.42"], () => json({ jobs: [], errors: [{ error_number: 2017 }] }, 404), {
        settings: { slurmApiVersion: "v0.0.42" }
      })
      assert.strictEqual(failureOf(yield* Effect.exit(later.api.getJob(999999)))._tag, "SlurmJobNotFound")
    }))

  it.scopedLive("lists jobs", () =>
    Effect.gen(function*() {
      const { api } = yield* setup(["v0.0.38"], () => json(sample("58-list-jobs.json")), {
        settings: { slurmUserName: "root" }
      })
      assert.strictEqual((yield* api.listJobs).length, 11)
    }))

  it.scopedLive("lists only this user's jobs: others' records are dropped undecoded, an odd one fails nothing", () =>
    Effect.gen(function*() {
      const body = structuredClone(sample("58-list-jobs.json")) as { jobs: Array<Record<string, unknown>> }
      body.jobs[2]!["user_name"] = "alice"
      body.jobs.push({ user_name: "bob", job_state: ["RUNNING"] })
      const { api } = yield* setup(["v0.0.38"], () => json(body))
      assert.deepStrictEqual((yield* api.listJobs).map((j) => j.jobId), [body.jobs[2]!["job_id"]])
    }))

  it.scopedLive("an answer larger than maxResponseBytes is an error naming the bound", () =>
    Effect.gen(function*() {
      const [one] = (sample("58-list-jobs.json") as { jobs: ReadonlyArray<unknown> }).jobs
      const huge = { jobs: Array.from({ length: 4000 }, () => one) }
      const { api } = yield* setup(["v0.0.38"], () => json(huge))
      const error = failureOf(yield* Effect.exit(api.listJobs))
      assert.strictEqual(error._tag, "SlurmProtocolError")
      assert.include(error.message, "list jobs: the answer is larger than 1 MiB")
    }))

  it.scopedLive("cancels idempotently: finished and unknown jobs are fine, other failures are not", () =>
    Effect.gen(function*() {
      const old = yield* setup(
        ["v0.0.38"],
        (request) =>
          request.path.endsWith("/999999")
            ? json(sample("30-cancel-unknown-job.json"), 500)
            : json(sample("28-cancel-completed.json"))
      )
      yield* old.api.cancel(2)
      yield* old.api.cancel(999999)
      const later = yield* setup(["v0.0.43"], (request) =>
        request.path.endsWith("/45")
          ? json(synthetic("v0.0.43-cancel-permission.json"))
          : json(synthetic("v0.0.42-cancel-unknown.json")), { settings: { slurmApiVersion: "v0.0.43" } })
      yield* later.api.cancel(999999)
      const error = failureOf(yield* Effect.exit(later.api.cancel(45)))
      assert.strictEqual(error._tag, "SlurmRequestError")
      assert.match(error.message, /Job not owned by user \(Slurm error 2002\)/)
    }))

  it.scopedLive("reports a controller that does not answer slurmrestd's ping", () =>
    Effect.gen(function*() {
      const { api } = yield* setup(["v0.0.45"], () => json(synthetic("v0.0.45-ping-down.json")), {
        settings: { slurmApiVersion: "v0.0.45" }
      })
      const error = failureOf(yield* Effect.exit(api.ping))
      assert.strictEqual(error._tag, "SlurmUnreachable")
      assert.match(error.message, /its slurmctld \(slurmctl\) does not/)
    }))

  it.scopedLive("names a rejected token that slurmrestd >= 24.11 reports as every controller DOWN", () =>
    Effect.gen(function*() {
      // Seen on 24.11.5: ping 200 + DOWN, diag 511 + error 1007, for an expired or forged token.
      const { api, fake } = yield* setup(["v0.0.42"], (request) =>
        request.path.endsWith("/diag")
          ? json({ errors: [{ error_number: 1007, error: "Protocol authentication error" }] }, 511)
          : json(synthetic("v0.0.45-ping-down.json")), { settings: { slurmApiVersion: "v0.0.42" } })
      const error = failureOf(yield* Effect.exit(api.ping))
      assert.strictEqual(error._tag, "SlurmAuthError")
      assert.deepStrictEqual(paths(fake.requests()), ["GET /slurm/v0.0.42/ping", "GET /slurm/v0.0.42/diag"])
    }))
})

describe("submit", () => {
  it.scopedLive("v0.0.45: cancels a job queued with a 'non-zero return code' warning and fails with its reason", () =>
    Effect.gen(function*() {
      // As Slurm 26.05.5 answers a 64-CPU job on a 4-CPU partition: HTTP 200, errors empty.
      const reason = "Requested partition configuration not available now"
      const { api, fake } = yield* setup(["v0.0.45"], (request) =>
        request.method === "POST"
          ? json({
            job_id: 7,
            step_id: "batch",
            errors: [],
            warnings: [
              {
                description: `Job submission resulted in non-zero return code: ${reason}`,
                source: "slurm_submit_batch_job()"
              },
              { description: reason, source: "slurm_submit_batch_job()" }
            ]
          })
          : json({ errors: [], warnings: [] }), { settings: { slurmApiVersion: "v0.0.45" } })
      const error = failureOf(yield* Effect.exit(api.submit(spec)))
      assert.strictEqual(error._tag, "SlurmRequestError")
      if (error._tag === "SlurmRequestError") {
        assert.strictEqual(error.jobId, 7)
        assert.include(error.message, reason)
        assert.notInclude(error.message, "non-zero return code")
      }
      assert.include(paths(fake.requests()), "DELETE /slurm/v0.0.45/job/7")
    }))

  it.scopedLive("v0.0.42: a held job's 'non-zero return code' warning stays a warning", () =>
    Effect.gen(function*() {
      // As Slurm 24.11.5 answers a submission with hold = true.
      const held = "Job submission resulted in non-zero return code: Job is in held state, pending scheduler release"
      const { api, fake } = yield* setup(["v0.0.42"], () =>
        json({
          job_id: 8,
          step_id: "batch",
          errors: [],
          warnings: [{ description: held, source: "slurm_submit_batch_job()" }]
        }), {
        settings: { slurmApiVersion: "v0.0.42" }
      })
      assert.deepStrictEqual(yield* api.submit(spec), { jobId: 8, warnings: [held] })
      assert.notInclude(paths(fake.requests()), "DELETE /slurm/v0.0.42/job/8")
    }))

  it.scopedLive("sends the version's body and returns the job id with warnings", () =>
    Effect.gen(function*() {
      const { api, fake } = yield* setup(["v0.0.40"], () => json(synthetic("v0.0.40-submit-result.json")), {
        settings: { slurmApiVersion: "v0.0.40" }
      })
      assert.deepStrictEqual(yield* api.submit(spec), {
        jobId: 40,
        warnings: ["Requested partition configuration not available now"]
      })
      const [request] = fake.requests()
      assert.strictEqual(`${request!.method} ${request!.path}`, "POST /slurm/v0.0.40/job/submit")
      // v0.0.40's shape, written out: the script inside `job`, the environment as K=V, the time limit as a {set, number}.
      assert.deepStrictEqual(request!.body, {
        job: {
          name: "nix-build-hello",
          comment: "nsh:nsh-0123456789abcdef /nix/store/abc-hello.drv",
          current_working_directory: "/tmp",
          standard_output: "/tmp/nsh-0123456789abcdef.log",
          script: "#!/bin/sh\ntrue\n",
          environment: ["PATH=/usr/bin:/bin"],
          time_limit: { set: true, infinite: false, number: 10 }
        }
      })
    }))

  for (
    const [version, status, body] of [
      ["v0.0.38", 200, sample("41-submit-too-many-cpus.json")],
      ["v0.0.39", 500, synthetic("v0.0.39-submit-partition-config.json")]
    ] as const
  ) {
    it.scopedLive(`${version}: cancels a job queued despite errors and fails with them`, () =>
      Effect.gen(function*() {
        const { api, fake } = yield* setup([version], (request) =>
          request.method === "POST" ? json(body, status) : json(sample("24-cancel-pending.json")), {
          settings: { slurmApiVersion: version }
        })
        const error = failureOf(yield* Effect.exit(api.submit(spec)))
        assert.strictEqual(error._tag, "SlurmRequestError")
        if (error._tag !== "SlurmRequestError") {
          return
        }
        const jobId = (body as { job_id: number }).job_id
        assert.strictEqual(error.jobId, jobId)
        assert.match(
          error.message,
          new RegExp(
            `Requested partition configuration not available now \\(Slurm error 2015\\); slurmctld queued it anyway as job ${jobId}, which nsh cancelled`
          )
        )
        assert.deepStrictEqual(paths(fake.requests()), [
          `POST /slurm/${version}/job/submit`,
          `DELETE /slurm/${version}/job/${jobId}`
        ])
      }))
  }

  it.scopedLive("fails with slurmrestd's errors when nothing was queued", () =>
    Effect.gen(function*() {
      const { api } = yield* setup(["v0.0.38"], () => json(sample("39-submit-invalid-bad-partition.json"), 500))
      const error = failureOf(yield* Effect.exit(api.submit({ ...spec, partition: "nope" })))
      assert.strictEqual(error._tag, "SlurmRequestError")
      assert.match(error.message, /^slurmrestd refused submit: Invalid partition name specified \(Slurm error 2000\)$/)
    }))

  it.scopedLive("refuses obviously wrong values without sending anything", () =>
    Effect.gen(function*() {
      const { api, fake } = yield* setup(["v0.0.38"], () => json(sample("06-submit-ok.json")))
      const error = failureOf(
        yield* Effect.exit(
          api.submit({ ...spec, timeLimitMinutes: -5, cpusPerTask: 0, extra: { time_limit: { set: true, number: 0 } } })
        )
      )
      assert.strictEqual(error._tag, "SlurmInvalidSubmission")
      assert.match(
        error.message,
        /the time limit is -5, but must be a whole number of minutes of at least 1; the extra time_limit is 0/
      )
      assert.match(error.message, /cpus_per_task is 0/)
      assert.strictEqual(fake.requests().length, 0)
    }))

  const listed = (comment: string) => {
    const body = structuredClone(sample("58-list-jobs.json")) as { jobs: Array<{ job_id: number; comment: string }> }
    body.jobs[3]!.comment = comment // This user's job (the test's token is alice's); the others are root's.
    ;(body.jobs[3] as { user_name?: string }).user_name = "alice"
    return { body, jobId: body.jobs[3]!.job_id }
  }

  it.scopedLive("finds a job whose submit answer was lost instead of submitting it twice", () =>
    Effect.gen(function*() {
      const { body, jobId } = listed(spec.comment)
      const { api, fake } = yield* setup(["v0.0.38"], (request) => request.method === "POST" ? drop : json(body))
      const submitted = yield* api.submit(spec)
      assert.strictEqual(submitted.jobId, jobId)
      assert.match(
        submitted.warnings[0]!,
        /the submit answer was lost \(cannot reach slurmrestd .*connection reset.*\); found the job by its comment/
      )
      assert.deepStrictEqual(paths(fake.requests()), ["POST /slurm/v0.0.38/job/submit", "GET /slurm/v0.0.38/jobs"])
    }))

  it.scopedLive("never submits again after a lost answer: looks for the job a while, then fails as a passing fault", () =>
    Effect.gen(function*() {
      const { api, fake } = yield* setup(
        ["v0.0.38"],
        (request) =>
          request.method === "POST" ? slow(1000, json(sample("06-submit-ok.json"))) : json(listed("someone else").body)
      )
      const error = failureOf(yield* Effect.exit(api.submit(spec)))
      assert.strictEqual(error._tag, "SlurmSubmitUnanswered")
      assert.isTrue(isPassingFault(error))
      assert.include(error.message, "no answer within")
      // One POST (a second could queue a twin), then the first look and one per retry.
      assert.deepStrictEqual(paths(fake.requests()), [
        "POST /slurm/v0.0.38/job/submit",
        ...Array.from({ length: 4 }, () => "GET /slurm/v0.0.38/jobs")
      ])
    }))

  it.scopedLive("finds a job that shows up in the list only a moment after its answer was lost", () =>
    Effect.gen(function*() {
      const { body, jobId } = listed(spec.comment)
      let lists = 0
      const { api, fake } = yield* setup(["v0.0.38"], (request) =>
        request.method === "POST"
          ? drop
          : json(lists++ < 2 ? listed("someone else").body : body))
      assert.strictEqual((yield* api.submit(spec)).jobId, jobId)
      assert.strictEqual(fake.requests().filter((r) => r.method === "POST").length, 1)
    }))

  it.scopedLive("does not resubmit when the lookup itself fails", () =>
    Effect.gen(function*() {
      const { api, fake } = yield* setup(["v0.0.38"], (request) =>
        request.method === "POST" ? drop : json({ errors: [{ error_number: 2 }] }, 400))
      assert.strictEqual(failureOf(yield* Effect.exit(api.submit(spec)))._tag, "SlurmSubmitUnanswered")
      assert.strictEqual(
        fake.requests().filter((r) =>
          r.method === "POST"
        ).length,
        1
      )
    }))
})

describe("a token that changes (short-lived site tokens)", () => {
  const expiredToken = jwt({ exp: Math.floor(Date.now() / 1000) - 60, sun: "alice" })
  const freshToken = jwt({ exp: future, sun: "alice", n: 2 })
  // slurmctld 22.05 as the lab saw it: a request with the expired token gets HTTP 500, error -1.
  const acceptingOnly = (accepted: string) => (request: SeenRequest, path: string) =>
    request.headers["x-slurm-user-token"] !== accepted
      ? json(sample("55-auth-expired-token-job.json"), 500)
      : path === "/ping"
      ? json(sample("01-ping-v0.0.38.json"))
      : json(sample("07-job-running.json"))
  const tokenFile = (text: string) =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* fs.makeTempDirectoryScoped({ prefix: "nsh-token-" })
      const file = `${dir}/slurm.jwt`
      yield* fs.writeFileString(file, text)
      return file
    }).pipe(Effect.provide(NodeContext.layer))
  const tokensSent = (requests: ReadonlyArray<SeenRequest>) =>
    requests.map((r) => r.headers["x-slurm-user-token"] === freshToken ? "fresh" : "expired")

  it.scopedLive("reads the token file again when the token is rejected, tries once more with the new one, and keeps it", () =>
    Effect.gen(function*() {
      // Loaded at start (then expired), the file rewritten since: slurmctld's rejection sends nsh to it.
      const file = yield* tokenFile(`SLURM_JWT=${freshToken}\n`)
      const { api, fake } = yield* setup(["v0.0.38"], acceptingOnly(freshToken), {
        token: expiredToken,
        settings: { slurmApiVersion: "v0.0.38", slurmJwtTokenFile: file }
      })
      const job = yield* api.getJob(2)
      assert.isAbove(job.jobId, 0)
      yield* api.ping
      assert.deepStrictEqual(tokensSent(fake.requests()), ["expired", "fresh", "fresh"])
    }))

  it.scopedLive("fails naming the file and `scontrol token` when the file holds no better token; polls may wait for it", () =>
    Effect.gen(function*() {
      const file = yield* tokenFile(`${expiredToken}\n`)
      const { api, fake } = yield* setup(["v0.0.38"], acceptingOnly(freshToken), {
        token: expiredToken,
        settings: { slurmApiVersion: "v0.0.38", slurmJwtTokenFile: file }
      })
      const error = failureOf(yield* Effect.exit(api.getJob(2)))
      assert.strictEqual(error._tag, "SlurmAuthError")
      assert.include(error.message, "expired at ")
      assert.include(error.message, `nsh read ${file} again`)
      assert.include(error.message, `\`scontrol token lifespan=SECONDS > ${file}\``)
      assert.isTrue(error._tag === "SlurmAuthError" && error.renewable === true)
      assert.strictEqual(fake.requests().length, 1)
      // The file is renewed: the next request finds the new token.
      yield* Effect.promise(() => writeFile(file, freshToken))
      yield* api.getJob(2)
      assert.deepStrictEqual(tokensSent(fake.requests()), ["expired", "expired", "fresh"])
    }))

  it.scopedLive("a token rejected before its expiry (22.05's -1, retried as a hiccup) is replaced by a renewed file's too", () =>
    Effect.gen(function*() {
      const file = yield* tokenFile(freshToken)
      const { api, fake } = yield* setup(["v0.0.38"], acceptingOnly(freshToken), {
        token: goodToken,
        settings: { slurmApiVersion: "v0.0.38", slurmJwtTokenFile: file }
      })
      const job = yield* api.getJob(2)
      assert.isAbove(job.jobId, 0)
      const sent = fake.requests().map((r) => r.headers["x-slurm-user-token"] === freshToken)
      assert.deepStrictEqual(sent, [false, false, false, false, true])
    }))

  it.scopedLive("a new token that is rejected too ends it there, saying how to renew", () =>
    Effect.gen(function*() {
      const file = yield* tokenFile(freshToken)
      const { api, fake } = yield* setup(["v0.0.38"], acceptingOnly("nobody's"), {
        token: expiredToken,
        settings: { slurmApiVersion: "v0.0.38", slurmJwtTokenFile: file }
      })
      const error = failureOf(yield* Effect.exit(api.getJob(2)))
      assert.strictEqual(error._tag, "SlurmAuthError")
      assert.include(error.message, `scontrol token lifespan=SECONDS > ${file}`)
      // The fresh token is not expired: slurmctld's -1 is retried as a hiccup first, then given up.
      assert.deepStrictEqual(tokensSent(fake.requests()), ["expired", "fresh", "fresh", "fresh", "fresh"])
    }))

  it.scopedLive("a token from nsh.conf is not read again: the message says to replace it or use a file", () =>
    Effect.gen(function*() {
      const { api, fake } = yield* setup(["v0.0.38"], acceptingOnly(freshToken), { token: expiredToken })
      const error = failureOf(yield* Effect.exit(api.getJob(2)))
      assert.include(error.message, "slurm-jwt-token in nsh.conf: replace it with a new one from `scontrol token`")
      assert.isFalse(error._tag === "SlurmAuthError" && error.renewable === true)
      assert.strictEqual(fake.requests().length, 1)
    }))
})
