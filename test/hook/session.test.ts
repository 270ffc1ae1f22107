import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Layer, Option, Queue, Ref } from "effect"
import { readFileSync } from "node:fs"
import { NixLog } from "../../src/dispatch/NixLog.js"
import { type BuildRequest, type TryAnswer, TryHandler } from "../../src/dispatch/TryHandler.js"
import { Fallback, FallbackError, type FallbackProcess, type FallbackReply } from "../../src/hook/Fallback.js"
import { HookIO } from "../../src/hook/HookIO.js"
import { encodeSettings, encodeTry } from "../../src/hook/HookProtocol.js"
import { runSession } from "../../src/hook/Session.js"

const golden = readFileSync(new URL("../fixtures/hook/nix-2.8-hook-stdin.bin", import.meta.url))
const afterAccept = readFileSync(new URL("../fixtures/hook/nix-2.8-hook-after-accept.bin", import.meta.url))

const drv = (name: string) => `/nix/store/${"0".repeat(32)}-${name}.drv`
const tryOf = (name: string, requiredFeatures: ReadonlyArray<string> = []): BuildRequest => ({
  amWilling: true,
  neededSystem: "x86_64-linux",
  drvPath: drv(name),
  requiredFeatures
})
const settings = (builders: string) =>
  encodeSettings([["builders", builders], ["system", "x86_64-linux"], ["timeout", "7"]])
const stream = (builders: string, ...names: ReadonlyArray<string>) =>
  Buffer.concat([settings(builders), ...names.map((n) => encodeTry(tryOf(n)))])

/** Nix's side of the pipes: stdin fed from a queue (None = EOF), stderr writes recorded. */
const makeIO = Effect.gen(function*() {
  const input = yield* Queue.unbounded<Option.Option<Uint8Array>>()
  const writes = yield* Ref.make<ReadonlyArray<string>>([])
  const written = yield* Queue.unbounded<string>()
  let ended = false
  const layer = Layer.succeed(
    HookIO,
    HookIO.of({
      read: Effect.suspend(() =>
        ended ? Effect.succeed(Option.none()) : Effect.tap(Queue.take(input), (c) => {
          ended = Option.isNone(c)
        })
      ),
      write: (data) => {
        const text = typeof data === "string" ? data : Buffer.from(data).toString()
        return Effect.zipRight(Ref.update(writes, (w) => [...w, text]), Queue.offer(written, text))
      }
    })
  )
  const feed = (bytes: Uint8Array, chunk = bytes.length || 1) =>
    Effect.forEach(
      Array.from({ length: Math.ceil(bytes.length / chunk) }, (_, i) => bytes.subarray(i * chunk, (i + 1) * chunk)),
      (c) => Queue.offer(input, Option.some(c)),
      { discard: true }
    )
  return { layer, writes, written, feed, eof: Queue.offer(input, Option.none()) }
})

/** A TryHandler answering from a table by drv name; records what it was asked. */
const makeHandler = (answers: (request: BuildRequest) => TryAnswer, timeout = 7) =>
  Effect.gen(function*() {
    const asked = yield* Ref.make<ReadonlyArray<BuildRequest>>([])
    const layer = Layer.succeed(
      TryHandler,
      TryHandler.of({
        answer: (request, options) => {
          assert.strictEqual(options.timeout, timeout)
          return Effect.as(Ref.update(asked, (a) => [...a, request]), answers(request))
        }
      })
    )
    return { layer, asked }
  })

const makeLog = Effect.gen(function*() {
  const lines = yield* Ref.make<ReadonlyArray<string>>([])
  const layer = Layer.succeed(
    NixLog,
    NixLog.of({
      log: (level, text) => Ref.update(lines, (l) => [...l, `${level} ${text}`]),
      activity: () => Effect.die("unused"),
      buildLog: () => Effect.void
    })
  )
  return { layer, lines }
})

/** A fallback double: answers from a list, records starts, offers and forwarded bytes. */
const makeFallback = (replies: ReadonlyArray<FallbackReply | FallbackError>, startFails = false) =>
  Effect.gen(function*() {
    const starts = yield* Ref.make<ReadonlyArray<string>>([])
    const offers = yield* Ref.make<ReadonlyArray<Buffer>>([])
    const forwarded = yield* Ref.make<ReadonlyArray<Buffer>>([])
    const inputEnded = yield* Deferred.make<void>()
    let next = 0
    const proc: FallbackProcess = {
      offer: (raw) =>
        Effect.zipRight(
          Ref.update(offers, (o) => [...o, Buffer.from(raw)]),
          Effect.suspend(() => {
            const reply = replies[next++]
            return reply === undefined
              ? Effect.die("no more replies")
              : reply instanceof FallbackError
              ? Effect.fail(reply)
              : Effect.succeed(reply)
          })
        ),
      forward: (bytes) => Ref.update(forwarded, (f) => [...f, Buffer.from(bytes)]),
      endInput: Deferred.succeed(inputEnded, undefined),
      exitCode: Effect.as(Deferred.await(inputEnded), 42)
    }
    const layer = Layer.succeed(
      Fallback,
      Fallback.of({
        start: (settingsRaw) =>
          Effect.zipRight(
            Ref.update(starts, (s) => [...s, Buffer.from(settingsRaw).toString("hex")]),
            startFails ? Effect.fail(new FallbackError({ reason: "no nix here" })) : Effect.succeed(proc)
          )
      })
    )
    return { layer, starts, offers, forwarded }
  })

const decline = (reason = "no"): TryAnswer => ({ _tag: "Decline", reason })

const run = (
  io: Effect.Effect.Success<typeof makeIO>,
  handler: { readonly layer: Layer.Layer<TryHandler> },
  fallback: { readonly layer: Layer.Layer<Fallback> },
  log: { readonly layer: Layer.Layer<NixLog> }
) =>
  runSession({ verbosity: 3, debugLog: undefined }).pipe(
    Effect.provide(Layer.mergeAll(io.layer, handler.layer, fallback.layer, log.layer))
  )

describe("Session", () => {
  it.effect("declines each of Nix 2.8's tries (1-byte chunks) and exits 0 on EOF", () =>
    Effect.gen(function*() {
      const io = yield* makeIO
      const handler = yield* makeHandler(() => decline(), 0)
      // Its builders is @/etc/nix/machines: whether that exists depends on the machine, so the
      // fallback double declines too.
      const fallback = yield* makeFallback([{ _tag: "Decline" }, { _tag: "Decline" }, { _tag: "Decline" }, {
        _tag: "Decline"
      }])
      const log = yield* makeLog
      yield* io.feed(golden, 1)
      yield* io.eof
      assert.strictEqual(yield* run(io, handler, fallback, log), 0)
      assert.deepStrictEqual(yield* Ref.get(io.writes), ["# decline\n", "# decline\n", "# decline\n", "# decline\n"])
      assert.deepStrictEqual((yield* Ref.get(handler.asked)).map((r) => r.requiredFeatures), [[], [], [], ["slurm"]])
    }))

  it.effect("answers each try before more input arrives and stays alive after decline and postpone", () =>
    Effect.gen(function*() {
      const io = yield* makeIO
      const handler = yield* makeHandler((
        r
      ) => (r.drvPath === drv("b") ? { _tag: "Postpone", reason: "busy" } : decline()))
      const fallback = yield* makeFallback([])
      const log = yield* makeLog
      const session = yield* Effect.fork(run(io, handler, fallback, log))
      yield* io.feed(stream("", "a"))
      assert.strictEqual(yield* Queue.take(io.written), "# decline\n")
      yield* io.feed(encodeTry(tryOf("b")))
      assert.strictEqual(yield* Queue.take(io.written), "# postpone\n")
      yield* io.feed(encodeTry(tryOf("b")))
      assert.strictEqual(yield* Queue.take(io.written), "# postpone\n")
      yield* io.eof
      assert.strictEqual(yield* session.await.pipe(Effect.flatten), 0)
      assert.deepStrictEqual((yield* Ref.get(handler.asked)).map((r) => r.drvPath), [drv("a"), drv("b"), drv("b")])
      assert.strictEqual((yield* Ref.get(fallback.starts)).length, 0)
    }))

  it.effect("on accept: one write with the machine, reads both lists, exits with the build's code", () =>
    Effect.gen(function*() {
      const io = yield* makeIO
      const ran = yield* Ref.make<ReadonlyArray<ReadonlyArray<string>>>([])
      const handler = yield* makeHandler((r) =>
        r.drvPath === drv("top")
          ? {
            _tag: "Accept",
            build: {
              machine: "slurm",
              run: (inputs, wanted) => Effect.as(Ref.set(ran, [inputs, wanted]), 100)
            }
          }
          : decline()
      )
      const fallback = yield* makeFallback([])
      const log = yield* makeLog
      yield* io.feed(Buffer.concat([stream("", "dep", "top"), afterAccept]), 5)
      // No EOF: the lists must be read as soon as they are complete.
      const code = yield* run(io, handler, fallback, log)
      assert.strictEqual(code, 100)
      assert.deepStrictEqual(yield* Ref.get(io.writes), ["# decline\n", "# accept\nslurm\n"])
      const [inputs, wanted] = yield* Ref.get(ran)
      assert.strictEqual(inputs?.length, 2)
      assert.deepStrictEqual(wanted, ["out"])
    }))

  it.effect("answers decline-permanently when nsh cannot work and no builders are set", () =>
    Effect.gen(function*() {
      const io = yield* makeIO
      const handler = yield* makeHandler(() => ({ _tag: "DeclinePermanently", reason: "bad nsh.conf" }))
      const fallback = yield* makeFallback([])
      const log = yield* makeLog
      yield* io.feed(stream("@/nonexistent/machines", "a"))
      yield* io.eof
      assert.strictEqual(yield* run(io, handler, fallback, log), 0)
      assert.deepStrictEqual(yield* Ref.get(io.writes), ["# decline-permanently\n"])
    }))

  it.effect("hands declined tries to one fallback, fed the raw settings and try bytes", () =>
    Effect.gen(function*() {
      const io = yield* makeIO
      const handler = yield* makeHandler((r) =>
        r.drvPath === drv("c") ? { _tag: "DeclinePermanently", reason: "bad nsh.conf" } : decline()
      )
      const fallback = yield* makeFallback([{ _tag: "Decline" }, { _tag: "Postpone" }, { _tag: "Decline" }])
      const log = yield* makeLog
      yield* io.feed(stream("ssh://node1 x86_64-linux", "a", "b", "c"), 3)
      yield* io.eof
      assert.strictEqual(yield* run(io, handler, fallback, log), 0)
      assert.deepStrictEqual(yield* Ref.get(io.writes), ["# decline\n", "# postpone\n", "# decline\n"])
      assert.deepStrictEqual(yield* Ref.get(fallback.starts), [settings("ssh://node1 x86_64-linux").toString("hex")])
      assert.deepStrictEqual((yield* Ref.get(fallback.offers)).map((o) => o.toString("hex")), [
        encodeTry(tryOf("a")).toString("hex"),
        encodeTry(tryOf("b")).toString("hex"),
        encodeTry(tryOf("c")).toString("hex")
      ])
    }))

  it.effect("relays the fallback's accept and hands it the rest of stdin", () =>
    Effect.gen(function*() {
      const io = yield* makeIO
      const handler = yield* makeHandler(() => decline())
      const fallback = yield* makeFallback([{ _tag: "Accept", machine: "ssh://node1" }])
      const log = yield* makeLog
      yield* io.feed(Buffer.concat([stream("ssh://node1", "top"), afterAccept.subarray(0, 10)]))
      yield* io.feed(afterAccept.subarray(10), 7)
      yield* io.eof
      assert.strictEqual(yield* run(io, handler, fallback, log), 42)
      assert.deepStrictEqual(yield* Ref.get(io.writes), ["# accept\nssh://node1\n"])
      assert.isTrue(Buffer.concat(yield* Ref.get(fallback.forwarded)).equals(afterAccept))
    }))

  it.effect("stops using a fallback that declines permanently", () =>
    Effect.gen(function*() {
      const io = yield* makeIO
      const handler = yield* makeHandler(() => decline())
      const fallback = yield* makeFallback([{ _tag: "DeclinePermanently" }])
      const log = yield* makeLog
      yield* io.feed(stream("ssh://node1", "a", "b"))
      yield* io.eof
      assert.strictEqual(yield* run(io, handler, fallback, log), 0)
      assert.deepStrictEqual(yield* Ref.get(io.writes), ["# decline\n", "# decline\n"])
      assert.strictEqual((yield* Ref.get(fallback.offers)).length, 1)
    }))

  it.effect("declines and says why when the fallback cannot start, and does not retry it", () =>
    Effect.gen(function*() {
      const io = yield* makeIO
      const handler = yield* makeHandler(() => decline())
      const fallback = yield* makeFallback([], true)
      const log = yield* makeLog
      yield* io.feed(stream("ssh://node1", "a", "b"))
      yield* io.eof
      assert.strictEqual(yield* run(io, handler, fallback, log), 0)
      assert.deepStrictEqual(yield* Ref.get(io.writes), ["# decline\n", "# decline\n"])
      assert.strictEqual((yield* Ref.get(fallback.starts)).length, 1)
      const lines = yield* Ref.get(log.lines)
      assert.strictEqual(lines.length, 1)
      assert.match(lines[0]!, /^1 nsh cannot hand this derivation to Nix's build-remote .*no nix here/)
    }))

  it.effect("logs garbage from Nix at error level and exits 1", () =>
    Effect.gen(function*() {
      const io = yield* makeIO
      const handler = yield* makeHandler(() => decline())
      const fallback = yield* makeFallback([])
      const log = yield* makeLog
      yield* io.feed(Buffer.from([2, 0, 0, 0, 0, 0, 0, 0]))
      assert.strictEqual(yield* run(io, handler, fallback, log), 1)
      assert.match((yield* Ref.get(log.lines))[0]!, /^0 nsh could not decode .*setting marker 2/)
    }))

  it.effect("exits 0 on EOF before any settings", () =>
    Effect.gen(function*() {
      const io = yield* makeIO
      const handler = yield* makeHandler(() => decline())
      const fallback = yield* makeFallback([])
      const log = yield* makeLog
      yield* io.eof
      assert.strictEqual(yield* run(io, handler, fallback, log), 0)
      assert.deepStrictEqual(yield* Ref.get(io.writes), [])
    }))
})
