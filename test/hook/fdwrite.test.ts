/**
 * Writes to Nix never block the hook: a real child process (test/fixtures/hook/unread-pipes.ts,
 * bundled) runs the real NixLogHook with its stderr and fd 4 on pipes this test does not read,
 * as when Nix waits for another hook's answer or nix-build is stopped with ctrl-z. The child's
 * timer must keep ticking (as the lease renewal must keep renewing), the build log must wait in
 * memory within 8 MiB (beyond it the writer waits, the node's log file holding the rest), and
 * once Nix reads again everything arrives, complete and in order, the last line at exit included.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Queue } from "effect"
import { build } from "esbuild"
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import { closeSync, constants, mkdtempSync, openSync, rmSync, writeFileSync } from "node:fs"
import * as Net from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"

const fixture = fileURLToPath(new URL("../fixtures/hook/unread-pipes.ts", import.meta.url))
const MiB = 1024 * 1024
const total = 16 * MiB
const lines = 2000

/** A named pipe opened at both ends (read end non-blocking, so opening does not wait). */
const fifo = (path: string) => {
  execFileSync("mkfifo", [path])
  const read = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK)
  const write = openSync(path, constants.O_WRONLY)
  return { read, write }
}

/** Everything readable from `fd` until every writer closed it. */
const readAll = (fd: number) =>
  Effect.async<Buffer>((resume) => {
    const chunks: Array<Buffer> = []
    const socket = new Net.Socket({ fd, readable: true, writable: false })
    socket.on("data", (chunk: Buffer) => chunks.push(chunk))
    socket.on("end", () => resume(Effect.succeed(Buffer.concat(chunks))))
    return Effect.sync(() => socket.destroy())
  })

/** The child's reports (`tick <n> <logged>`, `done <logged>`), line by line. */
const reports = (child: ChildProcess) =>
  Effect.gen(function*() {
    const queue = yield* Queue.unbounded<string>()
    let partial = ""
    child.stdout!.setEncoding("utf8").on("data", (text: string) => {
      const parts = (partial + text).split("\n")
      partial = parts.pop() ?? ""
      for (const line of parts) Queue.unsafeOffer(queue, line)
    })
    return queue
  })

/** A hang is the fault under test: bounded, so it fails the test with what was seen last. */
const bounded = <A, E, R>(what: string | (() => string), effect: Effect.Effect<A, E, R>) =>
  Effect.timeoutFail(effect, {
    duration: "30 seconds",
    onTimeout: () => new Error(`the hook froze: ${typeof what === "string" ? what : what()}`)
  })

describe("writes to Nix's pipes", () => {
  it.scopedLive(
    "never block the hook: timers run while Nix does not read, the build log waits within 8 MiB, nothing is lost",
    () =>
      Effect.gen(function*() {
        const dir = yield* Effect.acquireRelease(
          Effect.sync(() => mkdtempSync(join(tmpdir(), "nsh-fdwrite-"))),
          (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
        )
        const bundled = yield* Effect.promise(() =>
          build({
            entryPoints: [fixture],
            bundle: true,
            platform: "node",
            format: "esm",
            target: "node20",
            write: false
          })
        )
        const script = join(dir, "child.mjs")
        writeFileSync(script, bundled.outputFiles[0]!.contents)
        const stderr = fifo(join(dir, "stderr"))
        const log = fifo(join(dir, "log"))
        const child = yield* Effect.acquireRelease(
          Effect.sync(() =>
            spawn(process.execPath, [script, String(total), String(lines)], {
              // Like Nix: fd 2 a pipe, fd 4 the write end and fd 5 the read end of the build-log pipe.
              stdio: ["ignore", "pipe", stderr.write, "ignore", log.write, log.read]
            })
          ),
          (child) => Effect.sync(() => child.kill("SIGKILL"))
        )
        // Only the child holds the write ends now: the reads below end when it exits.
        closeSync(stderr.write)
        closeSync(log.write)
        const exited = Effect.async<number | null>((resume) => {
          child.on("exit", (code) => resume(Effect.succeed(code)))
        })
        const queue = yield* reports(child)

        // Nobody reads: the child keeps ticking while its writer stops at the bound.
        let last = ""
        let same = 0
        let logged = 0
        yield* bounded(
          () => `no report after ${JSON.stringify(last)}`,
          Effect.gen(function*() {
            while (same < 10) {
              last = yield* Queue.take(queue)
              const value = Number(/^tick \d+ (\d+)$/.exec(last)?.[1])
              assert.isTrue(Number.isFinite(value), `unexpected report ${last}`)
              same = value === logged ? same + 1 : 0
              logged = value
            }
          })
        )
        // 8 MiB wait in the child; the rest of what was logged is in the 64 KiB pipe (plus one chunk in flight).
        assert.isAtLeast(logged, 8 * MiB, last)
        assert.isAtMost(logged, 8 * MiB + MiB, last)

        // Nix reads again: every byte arrives, in order, and the writer finishes.
        const logRead = yield* Effect.fork(readAll(log.read))
        const done = yield* bounded(
          "it did not finish once the log was read",
          Queue.take(queue).pipe(Effect.repeat({ until: (line) => line.startsWith("done") }))
        )
        assert.strictEqual(done, `done ${total}`)
        const errRead = yield* Effect.fork(readAll(stderr.read))
        assert.strictEqual(yield* bounded("it did not exit", exited), 0)
        const logBytes = yield* bounded("the log did not end", Fiber.join(logRead))
        assert.strictEqual(logBytes.length, total)
        const firstWrong = logBytes.findIndex((byte, k) => byte !== k % 251)
        assert.strictEqual(firstWrong, -1, `byte ${firstWrong} of the log is out of order`)

        // The @nix lines waited too, and the last one was written at exit.
        const errText = (yield* bounded("stderr did not end", Fiber.join(errRead))).toString()
        const messages = errText.split("\n").filter((l) => l !== "").map((l) =>
          (JSON.parse(l.slice(5)) as { msg: string }).msg
        )
        assert.strictEqual(messages.length, lines + 1)
        assert.strictEqual(messages[0], `line 0 ${"x".repeat(100)}`)
        assert.strictEqual(messages[lines - 1], `line ${lines - 1} ${"x".repeat(100)}`)
        assert.strictEqual(messages[lines], "the last line")
      }),
    60_000
  )
})
