import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { ActivityType, NixLog, ResultType, Verbosity } from "../../src/dispatch/NixLog.js"
import { nixLogHookWith } from "../../src/hook/NixLogLive.js"

/** A hook NixLog at `verbosity` whose output is recorded. */
const recording = (verbosity: number) => {
  const stderr: Array<string> = []
  const buildLog: Array<string> = []
  const layer = nixLogHookWith({
    stderr: (line) => (stderr.push(line), true),
    buildLog: (chunk) => Effect.sync(() => buildLog.push(Buffer.from(chunk).toString()))
  }, verbosity)
  const json = () =>
    stderr.map((line) => {
      assert.match(line, /^@nix \{.*\}\n$/)
      return JSON.parse(line.slice(5)) as Record<string, unknown>
    })
  return { layer, stderr, buildLog, json }
}

describe("NixLogHook", () => {
  it.effect("writes messages up to Nix's verbosity as @nix msg lines", () => {
    const out = recording(Verbosity.info)
    return Effect.gen(function*() {
      const log = yield* NixLog
      yield* log.log(Verbosity.error, "broken")
      yield* log.log(Verbosity.info, "said")
      yield* log.log(Verbosity.talkative, "too chatty for -v0")
      assert.deepStrictEqual(out.json(), [
        { action: "msg", level: 0, msg: "broken" },
        { action: "msg", level: 3, msg: "said" }
      ])
    }).pipe(Effect.provide(out.layer))
  })

  it.effect("starts an activity, sends results, stops it when its scope closes", () => {
    const out = recording(Verbosity.error)
    return Effect.gen(function*() {
      const log = yield* NixLog
      const ids = yield* Effect.scoped(Effect.gen(function*() {
        const first = yield* log.activity(ActivityType.build, "building on node1", ["/nix/store/x.drv", "node1", 1, 1])
        const second = yield* log.activity(ActivityType.unknown, "waiting", [], Verbosity.talkative)
        yield* first.result(ResultType.progress, [1, 2, -1, 0.5])
        return [first.id, second.id]
      }))
      const [a, b] = ids
      assert.notStrictEqual(a, b)
      for (const id of ids) assert.isTrue(Number.isSafeInteger(id) && id! > 0)
      assert.deepStrictEqual(out.json(), [
        {
          action: "start",
          id: a,
          level: 3,
          type: 105,
          text: "building on node1",
          fields: ["/nix/store/x.drv", "node1", 1, 1],
          parent: 0
        },
        { action: "start", id: b, level: 4, type: 0, text: "waiting", fields: [], parent: 0 },
        // Nix accepts only strings and non-negative integers in fields.
        { action: "result", id: a, type: 105, fields: [1, 2, "-1", "0.5"] },
        { action: "stop", id: b },
        { action: "stop", id: a }
      ])
    }).pipe(Effect.provide(out.layer))
  })

  it.effect("sends build-log bytes to the build log untouched", () => {
    const out = recording(Verbosity.info)
    return Effect.gen(function*() {
      const log = yield* NixLog
      yield* log.buildLog(Buffer.from("compiling…\r50%"))
      assert.deepStrictEqual(out.buildLog, ["compiling…\r50%"])
      assert.deepStrictEqual(out.stderr, [])
    }).pipe(Effect.provide(out.layer))
  })

  it.effect("a line that finds no room is dropped and counted; the count is reported once Nix reads again", () => {
    const taken: Array<string> = []
    let room = true
    const layer = nixLogHookWith({
      stderr: (line) => room && (taken.push(line), true),
      buildLog: () => Effect.void
    }, Verbosity.info)
    return Effect.gen(function*() {
      const log = yield* NixLog
      yield* log.log(Verbosity.info, "first")
      room = false
      yield* log.log(Verbosity.info, "lost 1")
      yield* Effect.logWarning("lost 2")
      room = true
      yield* log.log(Verbosity.info, "after")
      assert.deepStrictEqual(taken.map((line) => JSON.parse(line.slice(5))), [
        { action: "msg", level: 3, msg: "first" },
        { action: "msg", level: 1, msg: "nsh: 2 progress lines were dropped while Nix was not reading" },
        { action: "msg", level: 3, msg: "after" }
      ])
    }).pipe(Effect.provide(layer))
  })

  it.effect("routes Effect.log* through Nix's levels", () => {
    const out = recording(Verbosity.info)
    return Effect.gen(function*() {
      yield* Effect.logWarning("careful")
      yield* Effect.logInfo("fyi", 42)
      yield* Effect.logDebug("hidden at -v0")
      assert.deepStrictEqual(out.json(), [
        { action: "msg", level: 1, msg: "careful" },
        { action: "msg", level: 3, msg: "fyi 42" }
      ])
    }).pipe(Effect.provide(out.layer))
  })

  it.effect("shows Effect.logDebug when Nix runs at debug verbosity", () => {
    const out = recording(Verbosity.debug)
    return Effect.gen(function*() {
      yield* Effect.logDebug("details")
      assert.deepStrictEqual(out.json(), [{ action: "msg", level: 6, msg: "details" }])
    }).pipe(Effect.provide(out.layer))
  })
})
