import { Command, FileSystem } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { describe, it } from "@effect/vitest"
import { Chunk, Effect, Exit, Schedule, Scope, Stream } from "effect"
import { assert } from "vitest"
import { resolveHost } from "../../src/ssh/OpenSshConfig.js"
import { SshSession } from "../../src/ssh/SshSession.js"
import { SshSessionLayer } from "../../src/ssh/SshSessionLive.js"
import { chooseTransport, type SshTransportSetting } from "../../src/ssh/TransportChoice.js"
import { haveSshd, startCertSshd } from "./support/RealSshd.js"
import { hostBlock, makeKeys, startServer, type TestKeys, writeConfig } from "./support/TestServer.js"

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes)

const connectWith = (configFile: string, host: string, transport: SshTransportSetting = "openssh") =>
  SshSession.pipe(
    Effect.flatMap((ssh) => ssh.connect(host)),
    Effect.provide(SshSessionLayer({ configFile, transport }))
  )

const within = <A, E, R>(what: string, effect: Effect.Effect<A, E, R>) =>
  Effect.timeoutFail(effect, {
    duration: "10 seconds",
    onTimeout: () => new Error(`${what} did not happen within 10 s`)
  })

/** Retries `check` (every 100 ms, at most 10 s) until it holds: for what another process does. */
const eventually = <R>(what: string, check: Effect.Effect<boolean, unknown, R>) =>
  within(
    what,
    Effect.repeat(check, { until: (ok) => ok, schedule: Schedule.spaced("100 millis") }).pipe(Effect.asVoid)
  )

/** The control sockets' directory is made private under XDG_RUNTIME_DIR: a fresh one per test. */
const privateRuntimeDir = Effect.gen(function*() {
  const fs = yield* FileSystem.FileSystem
  const dir = yield* fs.makeTempDirectoryScoped({ prefix: "nsh-runtime-" })
  const before = process.env.XDG_RUNTIME_DIR
  process.env.XDG_RUNTIME_DIR = dir
  yield* Effect.addFinalizer(() =>
    Effect.sync(() => {
      if (before === undefined) delete process.env.XDG_RUNTIME_DIR
      else process.env.XDG_RUNTIME_DIR = before
    })
  )
  return `${dir}/nsh`
})

const entries = (dir: string) => Effect.flatMap(FileSystem.FileSystem, (fs) => fs.readDirectory(dir))

const pgrep = (pattern: string) =>
  Command.exitCode(Command.make("pgrep", "-f", pattern)).pipe(Effect.map((code) => code === 0))

/** The in-process ssh2 server, reached by the system's OpenSSH client. */
const setup = Effect.gen(function*() {
  yield* privateRuntimeDir
  const keys: TestKeys = yield* makeKeys
  const server = yield* startServer(keys)
  const fs = yield* FileSystem.FileSystem
  yield* fs.writeFileString(`${keys.dir}/known_hosts`, `[127.0.0.1]:${server.port} ${keys.hostPublic}\n`)
  const config = yield* writeConfig(keys, hostBlock(keys, server.port))
  return { keys, server, config }
})

describe("ssh-transport = openssh against the in-process ssh2 server", () => {
  it.scopedLive("exec returns stdout, stderr and exit code; channels run at once on one master", () =>
    Effect.gen(function*() {
      const { config } = yield* setup
      const conn = yield* connectWith(config, "testnode")
      const ok = yield* conn.exec("echo hello")
      assert.deepStrictEqual([ok.exitCode, text(ok.stdout)], [0, "hello\n"])
      const failed = yield* conn.exec("fail 3")
      assert.deepStrictEqual([failed.exitCode, text(failed.stderr)], [3, "boom\n"])
      const words = Array.from({ length: 8 }, (_, i) => `w${i}`)
      const results = yield* Effect.forEach(words, (w) => conn.exec(`echo ${w}`), { concurrency: "unbounded" })
      assert.deepStrictEqual(results.map((r) => text(r.stdout).trim()), words)
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scopedLive("a connection cut mid-command fails the command; the next one reconnects", () =>
    Effect.gen(function*() {
      const { config } = yield* setup
      const conn = yield* connectWith(config, "testnode")
      const error = yield* Effect.flip(conn.exec("drop"))
      assert.strictEqual(error._tag, "SshChannelError")
      assert.include(error.message, "closed before the command exited")
      assert.strictEqual(text((yield* conn.exec("echo again")).stdout), "again\n")
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scopedLive("an unknown host key fails clearly, as a host key error", () =>
    Effect.gen(function*() {
      const { config, keys } = yield* setup
      yield* Effect.flatMap(FileSystem.FileSystem, (fs) => fs.writeFileString(`${keys.dir}/known_hosts`, ""))
      const error = yield* Effect.flip(connectWith(config, "testnode"))
      assert.strictEqual(error._tag, "SshHostKeyError")
      assert.include(error.message, "host key of testnode")
      assert.include(error.message, "is unknown")
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scopedLive("a changed host key fails clearly, naming the new key's fingerprint", () =>
    Effect.gen(function*() {
      const { config, keys, server } = yield* setup
      yield* Effect.flatMap(
        FileSystem.FileSystem,
        (fs) => fs.writeFileString(`${keys.dir}/known_hosts`, `[127.0.0.1]:${server.port} ${keys.otherHostPublic}\n`)
      )
      const error = yield* Effect.flip(connectWith(config, "testnode"))
      assert.strictEqual(error._tag, "SshHostKeyError")
      assert.include(error.message, "has CHANGED")
      assert.match(error.message, /SHA256:/)
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scopedLive("a closed port is a connect error carrying ssh's own words", () =>
    Effect.gen(function*() {
      yield* privateRuntimeDir
      const keys = yield* makeKeys
      const config = yield* writeConfig(keys, hostBlock(keys, 1))
      const error = yield* Effect.flip(connectWith(config, "testnode"))
      assert.strictEqual(error._tag, "SshConnectError")
      assert.include(error.message, "Connection refused")
    }).pipe(Effect.provide(NodeContext.layer)))
})

describe.skipIf(!haveSshd)("OpenSSH user certificates, against a real sshd that trusts only a user CA", () => {
  it.scopedLive("auto picks OpenSSH for a key with a -cert.pub beside it, and it logs in; ssh2 alone cannot", () =>
    Effect.gen(function*() {
      yield* privateRuntimeDir
      const sshd = yield* startCertSshd
      const config = yield* resolveHost("certnode", { configFile: sshd.configFile })
      const choice = yield* chooseTransport("auto", config, {})
      assert.strictEqual(choice.transport, "openssh")
      assert.include(choice.why, `${sshd.keyFile}-cert.pub`)

      const conn = yield* connectWith(sshd.configFile, "certnode", "auto")
      const result = yield* conn.exec("echo \"$SSH_CONNECTION\" | cut -d' ' -f4")
      assert.strictEqual(text(result.stdout).trim(), String(sshd.port), text(result.stderr))

      // The same config over ssh2 offers the plain key, which this sshd does not accept.
      const refused = yield* Effect.flip(Effect.scoped(connectWith(sshd.configFile, "certnode", "ssh2")))
      assert.strictEqual(refused._tag, "SshConnectError")
      assert.include(refused.message, "Permission denied")
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scopedLive("the control master stops and its socket goes when the session's scope closes", () =>
    Effect.gen(function*() {
      const runtime = yield* privateRuntimeDir
      const sshd = yield* startCertSshd
      const scope = yield* Scope.make()
      const conn = yield* connectWith(sshd.configFile, "certnode").pipe(Scope.extend(scope))
      yield* conn.exec("true")
      const [dir] = yield* entries(runtime)
      assert.isDefined(dir)
      assert.deepStrictEqual(yield* entries(`${runtime}/${dir}`), ["s"])
      const info = yield* Effect.flatMap(FileSystem.FileSystem, (fs) => fs.stat(runtime))
      assert.strictEqual(info.mode & 0o777, 0o700)
      const master = `ControlPath=${runtime}/${dir}/s`
      assert.isTrue(yield* pgrep(master))
      yield* Scope.close(scope, Exit.void)
      assert.deepStrictEqual(yield* entries(runtime), [])
      yield* eventually("the master's exit", Effect.map(pgrep(master), (running) => !running))
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scopedLive("closing a long-running command's scope ends it on the node; nothing outlives us", () =>
    Effect.gen(function*() {
      yield* privateRuntimeDir
      const sshd = yield* startCertSshd
      const conn = yield* connectWith(sshd.configFile, "certnode")
      const marker = `sleep 31${Math.floor(Math.random() * 1e6)}`
      const scope = yield* Scope.make()
      const proc = yield* conn.spawn(`echo started; ${marker}; echo never`).pipe(Scope.extend(scope))
      const pull = yield* Stream.toPull(proc.stdout).pipe(Scope.extend(scope))
      assert.strictEqual(text(Chunk.toReadonlyArray(yield* pull)[0]!), "started\n")
      yield* eventually("the remote command's start", pgrep(marker))
      yield* Scope.close(scope, Exit.void)
      yield* eventually("the remote command's end", Effect.map(pgrep(marker), (running) => !running))
      // The connection goes on serving other commands.
      assert.strictEqual(text((yield* conn.exec("echo still")).stdout), "still\n")
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scopedLive("a command's own exit 255 is its status; a lost master fails the running command", () =>
    Effect.gen(function*() {
      const runtime = yield* privateRuntimeDir
      const sshd = yield* startCertSshd
      const conn = yield* connectWith(sshd.configFile, "certnode")
      assert.strictEqual((yield* conn.exec("exit 255")).exitCode, 255)
      const proc = yield* conn.spawn("echo up; exec sleep 600")
      const pull = yield* Stream.toPull(proc.stdout)
      yield* pull
      const [dir] = yield* entries(runtime)
      yield* Command.exitCode(Command.make("ssh", "-o", `ControlPath=${runtime}/${dir}/s`, "-O", "exit", "certnode"))
      const lost = yield* within("the command's failure", Effect.flip(proc.exit))
      assert.strictEqual(lost._tag, "SshChannelError")
      assert.include(lost.message, "closed before the command exited")
    }).pipe(Effect.provide(NodeContext.layer)))
})
