/**
 * HookIOLive after the front's hand-over (src/hook/Front.ts): the replayed bytes first, then what
 * Nix writes next on the stream the front paused.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer, Option } from "effect"
import { PassThrough } from "node:stream"
import { HookIO, HookIOLive } from "../../src/hook/HookIO.js"

const text = (chunk: Option.Option<Uint8Array>) => Option.map(chunk, (c) => Buffer.from(c).toString("utf8"))

describe("HookIOLive", () => {
  it.scoped("reads the replay, then resumes the stream the front paused, until its end", () =>
    Effect.gen(function*() {
      const stdin = new PassThrough()
      // What the front does: read in flowing mode, then stop and pause.
      const front = () => {}
      stdin.on("data", front)
      stdin.off("data", front)
      stdin.pause()
      const io = Context.get(yield* Layer.build(HookIOLive(Buffer.from("settings+try"), stdin)), HookIO)
      assert.deepStrictEqual(text(yield* io.read), Option.some("settings+try"))
      // Nix's accept lists arrive only after the hook answered.
      stdin.write("accept lists")
      assert.deepStrictEqual(text(yield* io.read), Option.some("accept lists"))
      stdin.end()
      assert.isTrue(Option.isNone(yield* io.read))
    }))
})
