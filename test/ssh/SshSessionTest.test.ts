import { describe, it } from "@effect/vitest"
import { Effect, Ref, Stream } from "effect"
import { assert } from "vitest"
import { SshConnectError } from "../../src/ssh/SshErrors.js"
import { SshSession } from "../../src/ssh/SshSession.js"
import { SshCalls, SshSessionTest } from "./SshSessionTest.js"

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes)

describe("SshSessionTest (the double)", () => {
  it.live("runs commands locally, feeds stdin, records connect/exec/disconnect", () =>
    Effect.gen(function*() {
      const ssh = yield* SshSession
      const result = yield* Effect.scoped(
        Effect.flatMap(ssh.connect("node9"), (conn) =>
          conn.exec("tr a-z A-Z; echo oops >&2; exit 4", Stream.make(new TextEncoder().encode("hello"))))
      )
      assert.deepStrictEqual([text(result.stdout), text(result.stderr), result.exitCode], ["HELLO", "oops\n", 4])
      assert.deepStrictEqual(yield* Ref.get(yield* SshCalls), [
        { _tag: "Connect", host: "node9" },
        { _tag: "Exec", host: "node9", command: "tr a-z A-Z; echo oops >&2; exit 4" },
        { _tag: "Disconnect", host: "node9" }
      ])
    }).pipe(Effect.provide(SshSessionTest())))

  it.live("scripted answers see the whole stdin; connect can be made to fail", () =>
    Effect.gen(function*() {
      const ssh = yield* SshSession
      const conn = yield* ssh.connect("node1")
      const result = yield* conn.exec("nix-store --import", Stream.make(new Uint8Array([1, 2, 3])))
      assert.strictEqual(text(result.stdout), "got 3 bytes on node1")
      const error = yield* Effect.flip(ssh.connect("down"))
      assert.strictEqual(error._tag, "SshConnectError")
    }).pipe(
      Effect.scoped,
      Effect.provide(
        SshSessionTest({
          script: ({ host, stdin }) => ({ stdout: `got ${stdin.length} bytes on ${host}` }),
          failConnect: (host) => (host === "down" ? new SshConnectError({ host, reason: "test" }) : undefined)
        })
      )
    ))

  it.live("spawn streams a local process", () =>
    Effect.gen(function*() {
      const ssh = yield* SshSession
      const conn = yield* ssh.connect("node1")
      const proc = yield* conn.spawn("printf 'a\\nb\\n'")
      const lines = yield* proc.stdout.pipe(Stream.decodeText(), Stream.splitLines, Stream.runCollect)
      assert.deepStrictEqual([...lines], ["a", "b"])
      assert.deepStrictEqual(yield* proc.exit, { exitCode: 0, signal: undefined })
    }).pipe(Effect.scoped, Effect.provide(SshSessionTest())))
})
