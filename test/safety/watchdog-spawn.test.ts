/**
 * The hook's side of the watchdog (src/safety/Watchdog.ts): the idle stage runs in its own session
 * holding none of Nix's descriptors and no token in argv or environment; when the scope closes
 * without `finished` it hands every message to the clean-up stage (here a stand-in,
 * test/fixtures/watchdog/echo-watchdog.mjs, that reports what it got into a file); after `finished` it does not.
 */
import { FileSystem } from "@effect/platform"
import { NodeFileSystem } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Option, Redacted, Schedule } from "effect"
import { execFileSync } from "node:child_process"
import { existsSync, readdirSync, readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { Watchdog, WatchdogLive, type WatchdogParams } from "../../src/safety/Watchdog.js"
import { decodeHookMessage } from "../../src/safety/WatchdogProtocol.js"

const echo = fileURLToPath(new URL("../fixtures/watchdog/echo-watchdog.mjs", import.meta.url))

interface Seen {
  readonly pid: number
  readonly sid: number
  readonly env: Record<string, string>
  readonly fds: Record<string, string | null>
  readonly lines: ReadonlyArray<string>
}

const params = (command: ReadonlyArray<string>): WatchdogParams => ({
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
  tag: "nsh-0123456789abcdef",
  nodeFiles: ["/state/nsh-0123456789abcdef.log"],
  localFiles: ["/state/journal/nsh-0123456789abcdef.json"],
  command
})

/**
 * Where the stand-in writes its report. The idle stage waits for the clean-up stage, so once it
 * exited the report is there if and only if the clean-up stage ran.
 */
const reportFile = Effect.gen(function*() {
  const fs = yield* FileSystem.FileSystem
  const dir = yield* fs.makeTempDirectoryScoped({ prefix: "nsh-watchdog-" })
  const path = `${dir}/seen`
  return {
    path,
    read: Effect.sync(() =>
      existsSync(path) ? Option.some(JSON.parse(readFileSync(path, "utf8")) as Seen) : Option.none()
    )
  }
})

/** SLURM_JWT set in the hook's environment for the duration of the scope. */
const tokenInEnvironment = Effect.acquireRelease(
  Effect.sync(() => {
    const before = process.env["SLURM_JWT"]
    process.env["SLURM_JWT"] = "env-secret"
    return before
  }),
  (before) =>
    Effect.sync(() => {
      if (before === undefined) delete process.env["SLURM_JWT"]
      else process.env["SLURM_JWT"] = before
    })
)

const procStat = (pid: number) => {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ")
}
const fdTarget = (pid: number, fd: number) =>
  Effect.try(() => execFileSync("readlink", [`/proc/${pid}/fd/${fd}`], { stdio: "pipe" }).toString().trim())

/** Until the (reaped) process is gone: the idle stage is our child, so nothing lingers as a zombie. */
const exited = (pid: number, what: string) =>
  Effect.sync(() => {
    try {
      return procStat(pid)[0] === "Z"
    } catch {
      return true
    }
  }).pipe(
    Effect.repeat({ until: (gone) => gone, schedule: Schedule.spaced("20 millis") }),
    Effect.timeoutFail({
      duration: "10 seconds",
      onTimeout: () => new Error(`the watchdog (pid ${pid}) still runs 10 s after ${what}`)
    }),
    Effect.asVoid
  )

const messages = (seen: Seen) => seen.lines.map((line) => Option.getOrThrow(decodeHookMessage(line)))

describe("Watchdog (hook side)", () => {
  it.scopedLive("the idle stage has its own session, none of the hook's fds, and no token outside the socket", () =>
    Effect.gen(function*() {
      yield* tokenInEnvironment
      const handle = yield* Watchdog.start(params([process.execPath, echo, "/dev/null"]))
      yield* handle.ready
      const [, , pgid, sid] = procStat(handle.pid)
      assert.strictEqual(Number(sid), handle.pid, "not the leader of a session of its own")
      assert.strictEqual(Number(pgid), handle.pid)
      // The socket (fd 3 at spawn) is its stdin; every other fd, whatever this process had open, is /dev/null.
      assert.match(yield* fdTarget(handle.pid, 0), /^socket:/)
      const others = readdirSync(`/proc/${handle.pid}/fd`).map(Number).filter((fd) => fd !== 0)
      for (const fd of [1, 2, 4, 5]) assert.include(others, fd)
      for (const fd of others) assert.strictEqual(yield* fdTarget(handle.pid, fd), "/dev/null", `fd ${fd}`)
      const environ = readFileSync(`/proc/${handle.pid}/environ`, "utf8").split("\0")
      assert.isFalse(environ.some((v) => v.startsWith("SLURM_JWT=")))
      assert.include(environ, `PATH=${process.env["PATH"]}`)
      assert.notInclude(readFileSync(`/proc/${handle.pid}/cmdline`, "utf8"), "jwt-secret")
      assert.strictEqual(
        yield* Effect.sync(() => execFileSync("readlink", [`/proc/${handle.pid}/cwd`]).toString().trim()),
        "/"
      )
    }).pipe(Effect.provide(WatchdogLive)))

  it.scopedLive("without finished, the clean-up stage gets every message on stdin, and not the socket", () =>
    Effect.gen(function*() {
      const report = yield* reportFile
      const pid = yield* Effect.scoped(
        Effect.gen(function*() {
          const handle = yield* Watchdog.start(params([process.execPath, echo, report.path]))
          yield* handle.jobSubmitted(42)
          yield* handle.nodeKnown("node1")
          return handle.pid
        })
      )
      yield* exited(pid, "the hook's socket closed")
      const seen = Option.getOrElse(yield* report.read, () => assert.fail("the clean-up stage did not run"))
      assert.strictEqual(seen.sid, pid, "the clean-up stage left the watchdog's session")
      // Its stdin is the pipe from the idle stage; fd 3 may be node's own (epoll), not the hook's socket.
      assert.deepStrictEqual({ ...seen.fds, 3: undefined }, {
        1: "/dev/null",
        2: "/dev/null",
        3: undefined,
        4: "/dev/null",
        5: "/dev/null"
      })
      assert.notMatch(seen.fds[3] ?? "", /^socket:/)
      const got = messages(seen)
      assert.deepStrictEqual(got.map((m) => m._tag), ["start", "job", "node"])
      const [start, job, node] = got
      assert.deepStrictEqual(job, { _tag: "job", jobId: 42 })
      assert.deepStrictEqual(node, { _tag: "node", node: "node1" })
      if (start?._tag !== "start") return assert.fail("no start")
      assert.strictEqual(Redacted.value(start.slurm.token), "jwt-secret")
      assert.strictEqual(start.tag, "nsh-0123456789abcdef")
      assert.deepStrictEqual(start.localFiles, ["/state/journal/nsh-0123456789abcdef.json"])
    }).pipe(Effect.provide(WatchdogLive), Effect.provide(NodeFileSystem.layer)))

  it.scopedLive("after finished the watchdog exits without starting the clean-up stage", () =>
    Effect.gen(function*() {
      const report = yield* reportFile
      const pid = yield* Effect.scoped(
        Effect.gen(function*() {
          const handle = yield* Watchdog.start(params([process.execPath, echo, report.path]))
          yield* handle.jobSubmitted(7)
          yield* handle.finished()
          return handle.pid
        })
      )
      yield* exited(pid, "finished and the socket's close")
      assert.isTrue(Option.isNone(yield* report.read), "the clean-up stage ran after finished")
    }).pipe(Effect.provide(WatchdogLive), Effect.provide(NodeFileSystem.layer)))

  it.scopedLive("a clean-up stage that could not run is a WatchdogError at start", () =>
    Effect.gen(function*() {
      const missing = yield* Effect.flip(Watchdog.start(params(["/nonexistent/nsh", "__watchdog"])))
      assert.strictEqual(missing._tag, "WatchdogError")
      assert.match(missing.message, /watchdog .* failed: cannot start it \(\/nonexistent\/nsh __watchdog\)/)
    }).pipe(Effect.provide(WatchdogLive)))
})
