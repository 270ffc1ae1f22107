/**
 * The hook ↔ watchdog protocol (src/safety/WatchdogProtocol.ts), the watchdog's reading of it
 * (`watch`), and what it does for a vanished hook (`abandon`) against recording doubles.
 */
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Fiber, Layer, Option, Redacted, Ref, Stream, TestClock } from "effect"
import { abandon, submitLandingWindow } from "../../src/safety/Abandon.js"
import { FileRemover } from "../../src/safety/FileRemover.js"
import { watch } from "../../src/safety/WatchdogMain.js"
import {
  abandonedOf,
  applyMessage,
  decodeHookMessage,
  encodeHookMessage,
  finishedLine,
  type HookMessage,
  initialWatchState,
  isReadyLine,
  readyLine,
  type Start
} from "../../src/safety/WatchdogProtocol.js"
import { defaultHttpOptions } from "../../src/slurm/http/SlurmHttp.js"
import type { JobInfo } from "../../src/slurm/JobSpec.js"
import { SlurmApi } from "../../src/slurm/SlurmApi.js"
import { SlurmUnreachable } from "../../src/slurm/SlurmErrors.js"

const tag = "nsh-0123456789abcdef"
const start: Start = {
  _tag: "start",
  slurm: {
    url: "",
    host: "127.0.0.1",
    port: 6820,
    caFile: "",
    auth: "x-slurm",
    apiVersion: "v0.0.38",
    userName: "alice",
    token: Redacted.make("jwt-secret")
  },
  tag,
  nodeFiles: [`/state/${tag}.log`, `/state/${tag}.lease`, `/state/${tag}.root`],
  localFiles: [`/state/journal/${tag}.json`],
  sshArgs: []
}

const fold = (messages: ReadonlyArray<HookMessage>) => messages.reduce(applyMessage, initialWatchState)

describe("watchdog protocol", () => {
  it("round-trips every message as one JSON line; the token is only readable on the wire", () => {
    const messages: ReadonlyArray<HookMessage> = [start, { _tag: "job", jobId: 42 }, { _tag: "node", node: "node1" }, {
      _tag: "finished"
    }]
    for (const message of messages) {
      const line = encodeHookMessage(message)
      assert.isTrue(line.endsWith("\n") && !line.slice(0, -1).includes("\n"))
      assert.deepStrictEqual(
        JSON.stringify(Option.getOrThrow(decodeHookMessage(line.trimEnd()))),
        JSON.stringify(message)
      )
    }
    assert.include(encodeHookMessage(start), "jwt-secret")
    const decoded = Option.getOrThrow(decodeHookMessage(encodeHookMessage(start).trimEnd()))
    assert.strictEqual(decoded._tag, "start")
    if (decoded._tag === "start") {
      assert.strictEqual(Redacted.value(decoded.slurm.token), "jwt-secret")
      assert.notInclude(JSON.stringify(decoded), "jwt-secret")
    }
  })

  it("ignores lines that are not messages; knows the ready and finished lines", () => {
    assert.isTrue(Option.isNone(decodeHookMessage("")))
    assert.isTrue(Option.isNone(decodeHookMessage("{\"_tag\":\"job\",\"jobId\":\"x\"}")))
    assert.isTrue(Option.isNone(decodeHookMessage("not json")))
    assert.isTrue(isReadyLine(readyLine.trimEnd()))
    assert.isFalse(isReadyLine("{\"_tag\":\"start\"}"))
    assert.strictEqual(encodeHookMessage({ _tag: "finished" }), `${finishedLine}\n`)
  })

  it("abandons only after a start and without finished; later job ids and nodes win", () => {
    assert.isTrue(Option.isNone(abandonedOf(fold([]))))
    assert.isTrue(Option.isNone(abandonedOf(fold([{ _tag: "job", jobId: 1 }]))))
    assert.isTrue(Option.isNone(abandonedOf(fold([start, { _tag: "job", jobId: 1 }, { _tag: "finished" }]))))
    const plan = Option.getOrThrow(
      abandonedOf(fold([start, { _tag: "job", jobId: 1 }, { _tag: "node", node: "a" }, { _tag: "job", jobId: 2 }, {
        _tag: "node",
        node: "b"
      }]))
    )
    assert.deepStrictEqual([plan.jobId, plan.node], [Option.some(2), Option.some("b")])
    assert.strictEqual(plan.start.tag, tag)
  })

  it.effect("watch reassembles lines across chunks, skips garbage, and ignores what follows finished", () =>
    Effect.gen(function*() {
      const wire = [encodeHookMessage(start), "garbage\n", encodeHookMessage({ _tag: "job", jobId: 7 })].join("")
      const chunks = [wire.slice(0, 10), wire.slice(10, 200), wire.slice(200)]
      const state = yield* watch(Stream.fromIterable(chunks).pipe(Stream.splitLines))
      assert.deepStrictEqual(state.jobId, Option.some(7))
      assert.strictEqual(Option.getOrThrow(state.start).tag, tag)
      assert.isFalse(state.finished)

      const finishedFirst = Stream.fromIterable([
        encodeHookMessage(start),
        encodeHookMessage({ _tag: "finished" }),
        encodeHookMessage({ _tag: "job", jobId: 9 })
      ]).pipe(Stream.splitLines)
      const done = yield* watch(finishedFirst)
      assert.isTrue(done.finished)
      assert.isTrue(Option.isNone(done.jobId))
    }))

  it.effect("a broken input counts as EOF", () =>
    Effect.gen(function*() {
      const broken = Stream.concat(
        Stream.make(encodeHookMessage(start).trimEnd()),
        Stream.fail(new Error("ECONNRESET"))
      )
      const state = yield* watch(broken)
      assert.isTrue(Option.isSome(abandonedOf(state)))
    }))
})

const info = (jobId: number, fields: Partial<JobInfo> = {}): JobInfo => ({
  jobId,
  name: "nix-build-x",
  comment: `nsh:${tag} /nix/store/x.drv`,
  state: "RUNNING",
  flags: [],
  rawState: "RUNNING",
  reason: "None",
  batchHost: "node1",
  exit: undefined,
  submitTime: 0,
  startTime: 0,
  endTime: 0,
  restartCount: 0,
  userName: "alice",
  ...fields
})

/** A SlurmApi whose jobs are scripted per call, and a remover; both log what they were asked. */
const doubles = (script: {
  readonly listJobs?: ReadonlyArray<ReadonlyArray<JobInfo>>
  readonly getJob?: ReadonlyArray<JobInfo>
  readonly cancelFails?: boolean
}) =>
  Effect.gen(function*() {
    const calls = yield* Ref.make<ReadonlyArray<string>>([])
    const log = (call: string) => Ref.update(calls, (all) => [...all, call])
    const lists = yield* Ref.make(script.listJobs ?? [])
    const gets = yield* Ref.make(script.getJob ?? [])
    const next = <A>(ref: Ref.Ref<ReadonlyArray<A>>) =>
      Ref.modify(ref, (all): [A | undefined, ReadonlyArray<A>] => [all[0], all.length > 1 ? all.slice(1) : all])
    const unreachable = new SlurmUnreachable({ url: "http://127.0.0.1:6820", reason: "connection refused" })
    const api = SlurmApi.of({
      apiVersion: Effect.succeed("v0.0.38"),
      renderSubmission: () => Effect.succeed({}),
      ping: Effect.void,
      submit: () => Effect.die("no submit in the watchdog"),
      listJobs: Effect.zipRight(log("list"), Effect.map(next(lists), (jobs) => jobs ?? [])),
      getJob: (id) =>
        Effect.zipRight(
          log(`get ${id}`),
          Effect.flatMap(next(gets), (job) => job ? Effect.succeed(job) : Effect.die("no job"))
        ),
      cancel: (id) => Effect.zipRight(log(`cancel ${id}`), script.cancelFails ? Effect.fail(unreachable) : Effect.void)
    })
    const remover = FileRemover.of({
      removeOnNode: (node, paths) => log(`rm ${node} ${paths.join(" ")}`),
      removeLocal: (paths) => log(`rm local ${paths.join(" ")}`)
    })
    return { calls, layer: Layer.merge(Layer.succeed(SlurmApi, api), Layer.succeed(FileRemover, remover)) }
  })

const cancelled = info(42, { state: "CANCELLED", rawState: "CANCELLED" })

describe("abandon (the watchdog's clean-up)", () => {
  it.effect("cancels the reported job, waits for it to end, then removes its node files and the journal entry", () =>
    Effect.gen(function*() {
      const { calls, layer } = yield* doubles({
        getJob: [info(42, { flags: ["COMPLETING"], state: undefined, rawState: "COMPLETING" }), cancelled]
      })
      const fiber = yield* Effect.fork(
        Effect.provide(abandon({ start, jobId: Option.some(42), node: Option.some("node1") }), layer)
      )
      yield* TestClock.adjust("2 seconds")
      const report = yield* Fiber.join(fiber)
      assert.deepStrictEqual(report.problems, [])
      assert.deepStrictEqual(report.cancelled, [42])
      assert.deepStrictEqual(yield* Ref.get(calls), [
        "cancel 42",
        "get 42",
        "get 42",
        `rm node1 ${start.nodeFiles.join(" ")}`,
        `rm local ${start.localFiles.join(" ")}`
      ])
    }))

  it.effect("without a job id, finds the job by its tag (and only that job), and learns the node from it", () =>
    Effect.gen(function*() {
      const other = info(5, { comment: "nsh:nsh-ffffffffffffffff /nix/store/y.drv" })
      const prefixOnly = info(6, { comment: `nsh:${tag}0 /nix/store/z.drv` })
      const { calls, layer } = yield* doubles({
        listJobs: [[other, prefixOnly, info(7)]],
        getJob: [info(7, { state: "CANCELLED", rawState: "CANCELLED", batchHost: "node3" })]
      })
      const report = yield* Effect.provide(abandon({ start, jobId: Option.none(), node: Option.none() }), layer)
      assert.deepStrictEqual(report.cancelled, [7])
      assert.deepStrictEqual(report.node, Option.some("node3"))
      assert.deepStrictEqual((yield* Ref.get(calls)).slice(0, 4), [
        "list",
        "cancel 7",
        "get 7",
        `rm node3 ${start.nodeFiles.join(" ")}`
      ])
    }))

  it.effect("keeps looking for a submit still in flight, and gives up after lookupFor when nothing was queued", () =>
    Effect.gen(function*() {
      const { calls, layer } = yield* doubles({
        listJobs: [[], [], [info(8)]],
        getJob: [info(8, { state: "CANCELLED" })]
      })
      const fiber = yield* Effect.fork(
        Effect.provide(abandon({ start, jobId: Option.none(), node: Option.none() }), layer)
      )
      yield* TestClock.adjust("5 seconds")
      const report = yield* Fiber.join(fiber)
      assert.deepStrictEqual(report.cancelled, [8])
      assert.deepStrictEqual((yield* Ref.get(calls)).filter((c) => c === "list").length, 3)

      // A submit request in flight when the hook died may queue its job long after: still found.
      const late = yield* doubles({
        listJobs: [...Array.from({ length: 25 }, () => []), [info(9)]],
        getJob: [info(9, { state: "CANCELLED" })]
      })
      const fiber1 = yield* Effect.fork(
        Effect.provide(abandon({ start, jobId: Option.none(), node: Option.none() }), late.layer)
      )
      yield* TestClock.adjust("55 seconds")
      assert.deepStrictEqual((yield* Fiber.join(fiber1)).cancelled, [9])
      assert.isTrue(Duration.greaterThan(submitLandingWindow, Duration.times(defaultHttpOptions.requestTimeout, 2)))

      const none = yield* doubles({ listJobs: [[]] })
      const fiber2 = yield* Effect.fork(
        Effect.provide(abandon({ start, jobId: Option.none(), node: Option.none() }), none.layer)
      )
      yield* TestClock.adjust(Duration.sum(submitLandingWindow, "1 second"))
      const report2 = yield* Fiber.join(fiber2)
      assert.deepStrictEqual(report2.cancelled, [])
      assert.deepStrictEqual(report2.problems, [])
      const calls2 = yield* Ref.get(none.calls)
      assert.isAbove(calls2.length, 5)
      assert.deepStrictEqual(calls2.at(-1), `rm local ${start.localFiles.join(" ")}`)
      assert.isFalse(calls2.some((c) => c.startsWith("rm node")))
    }))

  it.effect("a job that never ran leaves no node to clean", () =>
    Effect.gen(function*() {
      const { calls, layer } = yield* doubles({ getJob: [info(42, { state: "CANCELLED", batchHost: "" })] })
      const report = yield* Effect.provide(abandon({ start, jobId: Option.some(42), node: Option.none() }), layer)
      assert.deepStrictEqual(report.node, Option.none())
      assert.deepStrictEqual(yield* Ref.get(calls), ["cancel 42", "get 42", `rm local ${start.localFiles.join(" ")}`])
    }))

  it.effect("retries a failing cancel for about 30 s, then keeps the journal entry for the orphan reaper", () =>
    Effect.gen(function*() {
      const { calls, layer } = yield* doubles({ cancelFails: true })
      const fiber = yield* Effect.fork(
        Effect.provide(abandon({ start, jobId: Option.some(42), node: Option.some("node1") }), layer)
      )
      yield* TestClock.adjust("29 seconds")
      assert.isNull(yield* Fiber.poll(fiber).pipe(Effect.map(Option.getOrNull)))
      yield* TestClock.adjust("10 seconds")
      const report = yield* Fiber.join(fiber)
      const attempts = (yield* Ref.get(calls)).filter((c) => c === "cancel 42").length
      assert.isAtLeast(attempts, 6)
      assert.isAtMost(attempts, 12)
      assert.strictEqual(report.problems.length, 1)
      assert.match(report.problems[0]!, /could not cancel job 42: cannot reach slurmrestd/)
      // Without its lease the job gives up by itself; the journal entry stays for `nsh cancel --orphans`.
      const removals = (yield* Ref.get(calls)).filter((c) => c.startsWith("rm"))
      assert.deepStrictEqual(removals, [`rm node1 ${start.nodeFiles.join(" ")}`])
    }))
})
