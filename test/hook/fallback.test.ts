import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Option, Ref, type Scope } from "effect"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, beforeEach } from "vitest"
import type { BuildRequest } from "../../src/dispatch/TryHandler.js"
import { Fallback, type FallbackCommand, makeFallback } from "../../src/hook/Fallback.js"
import { HookIO } from "../../src/hook/HookIO.js"
import { encodeAcceptLists, encodeSettings, encodeTry } from "../../src/hook/HookProtocol.js"

const fake = new URL("../fixtures/hook/fake-build-remote.mjs", import.meta.url).pathname
const settings = encodeSettings([["builders", "ssh://node1 x86_64-linux"], ["system", "x86_64-linux"]])
const tryOf = (name: string): Buffer =>
  encodeTry(
    {
      amWilling: false,
      neededSystem: "x86_64-linux",
      drvPath: `/nix/store/${"1".repeat(32)}-${name}.drv`,
      requiredFeatures: ["kvm"]
    } satisfies BuildRequest
  )
const lists = encodeAcceptLists([`/nix/store/${"2".repeat(32)}-a`, `/nix/store/${"3".repeat(32)}-b`], ["out"])

let dir = ""
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "nsh-fallback-"))
  process.env["FAKE_RECORD"] = join(dir, "stdin")
  process.env["FAKE_EXIT"] = "5"
})
afterEach(() => rmSync(dir, { recursive: true, force: true }))

const withFallback = <A, E>(
  commands: ReadonlyArray<FallbackCommand>,
  body: (fallback: typeof Fallback.Service, writes: Ref.Ref<ReadonlyArray<string>>) => Effect.Effect<A, E, Scope.Scope>
) =>
  Effect.gen(function*() {
    const writes = yield* Ref.make<ReadonlyArray<string>>([])
    const io = Layer.succeed(
      HookIO,
      HookIO.of({
        read: Effect.succeed(Option.none()),
        write: (data) =>
          Ref.update(writes, (w) => [...w, typeof data === "string" ? data : Buffer.from(data).toString()])
      })
    )
    const fallback = yield* Effect.provide(Fallback, makeFallback(() => commands).pipe(Layer.provide(io)))
    return yield* body(fallback, writes)
  }).pipe(Effect.scoped)

describe("Fallback with a fake build-remote", () => {
  it.live("replays settings and tries verbatim, relays answers and lines, then hands over", () =>
    withFallback(
      [{ command: fake, args: ["decline", "postpone", "accept:ssh://node1"] }],
      (fallback, writes) =>
        Effect.gen(function*() {
          const proc = yield* fallback.start(settings)
          assert.deepStrictEqual(yield* proc.offer(tryOf("a")), { _tag: "Decline" })
          assert.deepStrictEqual(yield* proc.offer(tryOf("b")), { _tag: "Postpone" })
          assert.deepStrictEqual(yield* proc.offer(tryOf("c")), { _tag: "Accept", machine: "ssh://node1" })
          yield* proc.forward(lists.subarray(0, 11))
          yield* proc.forward(lists.subarray(11))
          yield* proc.endInput
          assert.strictEqual(yield* proc.exitCode, 5)

          const recorded = readFileSync(process.env["FAKE_RECORD"]!)
          assert.isTrue(recorded.equals(Buffer.concat([settings, tryOf("a"), tryOf("b"), tryOf("c"), lists])))
          const considering = `@nix {"action":"msg","level":3,"msg":"fake: considering"}\n`
          assert.deepStrictEqual(yield* Ref.get(writes), [
            considering,
            "plain line from fake\n",
            considering,
            "plain line from fake\n",
            considering,
            "plain line from fake\n",
            "fake: built with 2 inputs, outputs out\n"
          ])
        })
    ))

  it.live("skips a command that exits without answering (e.g. `nix __build-remote` on Nix 2.8)", () =>
    withFallback([
      { command: "/bin/sh", args: ["-c", "echo \"error: '__build-remote' is not a recognised command\" >&2; exit 1"] },
      { command: fake, args: ["decline-permanently"] }
    ], (fallback, writes) =>
      Effect.gen(function*() {
        const proc = yield* fallback.start(settings)
        assert.deepStrictEqual(yield* proc.offer(tryOf("a")), { _tag: "DeclinePermanently" })
        assert.isFalse((yield* Ref.get(writes)).some((w) => w.includes("recognised")))
        assert.isTrue(readFileSync(process.env["FAKE_RECORD"]!).equals(Buffer.concat([settings, tryOf("a")])))
      })))

  it.live("fails with every reason when no command works", () =>
    withFallback([
      { command: "/bin/sh", args: ["-c", "echo nope >&2; exit 1"] },
      { command: join("/nonexistent", "build-remote"), args: ["3"] }
    ], (fallback) =>
      Effect.gen(function*() {
        const proc = yield* fallback.start(settings)
        const error = yield* Effect.flip(proc.offer(tryOf("a")))
        assert.match(error.message, /\/bin\/sh -c .* exited with code 1 without answering \(nope\)/)
        assert.match(error.message, /\/nonexistent\/build-remote 3 exited with code 127 without answering \(.*ENOENT/)
      })))

  it.live("reports a fallback that dies after it answered once", () =>
    withFallback(
      [{ command: fake, args: ["decline", "exit:9"] }, { command: fake, args: ["decline"] }],
      (fallback) =>
        Effect.gen(function*() {
          const proc = yield* fallback.start(settings)
          assert.deepStrictEqual(yield* proc.offer(tryOf("a")), { _tag: "Decline" })
          // A process that spoke the protocol and then died is broken, not unsupported: no next candidate.
          const error = yield* Effect.flip(proc.offer(tryOf("b")))
          assert.match(error.message, /fake-build-remote\.mjs decline exit:9 exited with code 9$/)
        })
    ))
})
