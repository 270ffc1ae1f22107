import { Command, FileSystem } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { describe, it } from "@effect/vitest"
import { Chunk, Deferred, Effect, Exit, Fiber, Option, Queue, Scope, Stream } from "effect"
import { createHash } from "node:crypto"
import { assert } from "vitest"
import { fingerprint } from "../../src/ssh/KnownHosts.js"
import { SshSession } from "../../src/ssh/SshSession.js"
import { SshSessionLayer } from "../../src/ssh/SshSessionLive.js"
import {
  extraKey,
  hostBlock,
  makeKeys,
  silentServer,
  startServer,
  type TestKeys,
  writeConfig
} from "./support/TestServer.js"

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes)

/** Connects to `host` through the given ssh config file. */
const connectWith = (configFile: string, host = "testnode", transport: "ssh2" | "openssh" = "ssh2") =>
  SshSession.pipe(
    Effect.flatMap((ssh) => ssh.connect(host)),
    Effect.provide(SshSessionLayer({ configFile, transport }))
  )

const knownHosts = (keys: TestKeys, lines: string) =>
  Effect.flatMap(FileSystem.FileSystem, (fs) => fs.writeFileString(`${keys.dir}/known_hosts`, lines))

/** A server, a config for it and a known_hosts that knows its key. */
const setup = (extra: ReadonlyArray<string> = []) =>
  Effect.gen(function*() {
    const keys = yield* makeKeys
    const server = yield* startServer(keys)
    yield* knownHosts(keys, `[127.0.0.1]:${server.port} ${keys.hostPublic}\n`)
    const config = yield* writeConfig(keys, hostBlock(keys, server.port, extra))
    return { keys, server, config }
  })

/** `effect`, failing with "`what` did not happen within 10 s" instead of hanging. */
const within = <A, E, R>(what: string, effect: Effect.Effect<A, E, R>) =>
  Effect.timeoutFail(effect, {
    duration: "10 seconds",
    onTimeout: () => new Error(`${what} did not happen within 10 s`)
  })

const blobOf = (publicLine: string) => Buffer.from(publicLine.split(" ")[1]!, "base64")

/** A round trip on another channel: everything the server sent before it has been processed here. */
const stats = (conn: { exec: (command: string) => Effect.Effect<{ stdout: Uint8Array }, unknown> }) =>
  conn.exec("stats").pipe(Effect.map((r) => JSON.parse(text(r.stdout)) as { produced: number; consumed: number }))

describe("SshSessionLive against an in-process ssh2 server", () => {
  it.scopedLive("exec returns stdout, stderr, exit code and signal", () =>
    Effect.gen(function*() {
      const { config } = yield* setup()
      const conn = yield* connectWith(config)
      const ok = yield* conn.exec("echo hello")
      assert.deepStrictEqual([ok.exitCode, ok.signal, text(ok.stdout)], [0, undefined, "hello\n"])
      const failed = yield* conn.exec("fail 3")
      assert.deepStrictEqual([failed.exitCode, failed.signal, text(failed.stderr)], [3, undefined, "boom\n"])
      const killed = yield* conn.exec("kill")
      assert.deepStrictEqual([killed.exitCode, killed.signal], [137, "KILL"])
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scopedLive("runs many channels at once on one connection", () =>
    Effect.gen(function*() {
      const { config } = yield* setup()
      const conn = yield* connectWith(config)
      const words = Array.from({ length: 12 }, (_, i) => `w${i}`)
      const results = yield* Effect.forEach(words, (w) => conn.exec(`echo ${w}`), { concurrency: "unbounded" })
      assert.deepStrictEqual(results.map((r) => text(r.stdout).trim()), words)
    }).pipe(Effect.provide(NodeContext.layer)))

  // The system's OpenSSH client holds back the same way (ssh-transport = openssh).
  for (const transport of ["ssh2", "openssh"] as const) {
    it.scopedLive(`${transport}: streams 50 MB of stdin without running ahead of a reader that is not reading`, () =>
      Effect.gen(function*() {
        const { config, server } = yield* setup()
        const conn = yield* connectWith(config, "testnode", transport)
        const chunkSize = 256 * 1024
        const chunks = 200
        let produced = 0
        const expected = createHash("sha256")
        const chunk = (i: number) => {
          const data = Buffer.alloc(chunkSize, i % 251)
          expected.update(data)
          produced += data.length
          return new Uint8Array(data)
        }
        // One element per pull (Stream.range would build its elements in batches of 4096).
        const input = Stream.range(0, chunks - 1, 1).pipe(Stream.map(chunk))
        const fiber = yield* Effect.fork(conn.exec("count-gated", input))
        // The server reads nothing yet: after a few round trips the producer must still be blocked.
        for (let i = 0; i < 5; i++) yield* stats(conn)
        assert.isAtLeast(produced, chunkSize)
        assert.isAtMost(produced, 10 * 1024 * 1024, "stdin ran ahead of the SSH window")
        yield* Deferred.succeed(server.state.gate, undefined)
        const result = yield* within("the gated command's end", Fiber.join(fiber))
        assert.strictEqual(text(result.stdout), `${chunks * chunkSize} ${expected.digest("hex")}\n`)
      }).pipe(Effect.provide(NodeContext.layer)))

    it.scopedLive(`${transport}: stdout pauses the remote command while the consumer does not read`, () =>
      Effect.gen(function*() {
        const { config, server } = yield* setup()
        const conn = yield* connectWith(config, "testnode", transport)
        const total = 32 * 1024 * 1024
        const proc = yield* conn.spawn(`produce ${total}`)
        const pull = yield* Stream.toPull(proc.stdout)
        const first = yield* pull
        assert.isAbove(Chunk.size(first), 0)
        for (let i = 0; i < 5; i++) yield* stats(conn)
        assert.isAtMost(server.state.produced, 10 * 1024 * 1024, "the remote side was not held back")
        let received = Chunk.reduce(first, 0, (n, c) => n + c.length)
        while (true) {
          const next = yield* Effect.option(pull)
          if (Option.isNone(next)) break
          received += Chunk.reduce(next.value, 0, (n, c) => n + c.length)
        }
        assert.strictEqual(received, total)
        assert.deepStrictEqual(yield* proc.exit, { exitCode: 0, signal: undefined })
      }).pipe(Effect.provide(NodeContext.layer)))
  }

  it.scopedLive("closing a spawn's scope signals the running command", () =>
    Effect.gen(function*() {
      const { config, server } = yield* setup()
      const conn = yield* connectWith(config)
      const scope = yield* Scope.make()
      yield* conn.spawn("sleep").pipe(Scope.extend(scope))
      yield* Scope.close(scope, Exit.void)
      assert.strictEqual(yield* within("a signal to the command", Queue.take(server.state.signals)), "TERM")
      // The connection stays usable for other channels.
      assert.strictEqual(text((yield* conn.exec("echo still")).stdout), "still\n")
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scopedLive("an unknown host key is refused, not accepted", () =>
    Effect.gen(function*() {
      const { config, keys } = yield* setup()
      yield* knownHosts(keys, "")
      const error = yield* Effect.flip(connectWith(config))
      assert.strictEqual(error._tag, "SshHostKeyError")
      assert.include(error.message, "is not known")
      assert.include(error.message, fingerprint(blobOf(keys.hostPublic)))
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scopedLive("a changed host key is refused, whatever StrictHostKeyChecking says short of no", () =>
    Effect.gen(function*() {
      const { config, keys, server } = yield* setup(["StrictHostKeyChecking accept-new"])
      yield* knownHosts(keys, `[127.0.0.1]:${server.port} ${keys.otherHostPublic}\n`)
      const error = yield* Effect.flip(connectWith(config))
      assert.strictEqual(error._tag, "SshHostKeyError")
      assert.include(error.message, "CHANGED")
      assert.include(error.message, "known_hosts:1")
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scopedLive("a revoked key is refused even when also listed as known", () =>
    Effect.gen(function*() {
      const { config, keys, server } = yield* setup()
      yield* knownHosts(keys, `[127.0.0.1]:${server.port} ${keys.hostPublic}\n@revoked * ${keys.hostPublic}\n`)
      const error = yield* Effect.flip(connectWith(config))
      assert.include(error.message, "REVOKED")
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scopedLive("accept-new adds the key (hashed with HashKnownHosts) where ssh-keygen -F finds it", () =>
    Effect.gen(function*() {
      const { config, keys, server } = yield* setup(["StrictHostKeyChecking accept-new", "HashKnownHosts yes"])
      const fs = yield* FileSystem.FileSystem
      yield* fs.remove(`${keys.dir}/known_hosts`)
      yield* Effect.scoped(Effect.flatMap(connectWith(config), (conn) => conn.exec("echo hi")))
      const file = yield* fs.readFileString(`${keys.dir}/known_hosts`)
      assert.match(file, /^\|1\|[^ ]+ ssh-ed25519 [A-Za-z0-9+/=]+\n$/)
      const found = yield* Command.string(
        Command.make("ssh-keygen", "-F", `[127.0.0.1]:${server.port}`, "-f", `${keys.dir}/known_hosts`)
      )
      assert.include(found, keys.hostPublic)
      // Now known: a strict connection succeeds.
      const strict = yield* writeConfig(keys, hostBlock(keys, server.port))
      assert.strictEqual(text((yield* Effect.flatMap(connectWith(strict), (c) => c.exec("echo ok"))).stdout), "ok\n")
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scopedLive("matches entries hashed by ssh-keygen -H, and HostKeyAlias", () =>
    Effect.gen(function*() {
      const { config, keys, server } = yield* setup()
      yield* Command.string(Command.make("ssh-keygen", "-H", "-f", `${keys.dir}/known_hosts`))
      const fs = yield* FileSystem.FileSystem
      assert.match(yield* fs.readFileString(`${keys.dir}/known_hosts`), /^\|1\|/)
      yield* connectWith(config)
      yield* knownHosts(keys, `other,!nope,my-alias ${keys.hostPublic}\n`)
      const aliased = yield* writeConfig(keys, hostBlock(keys, server.port, ["HostKeyAlias my-alias"]))
      yield* connectWith(aliased)
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scopedLive("a key the server refuses gives Permission denied naming what was tried", () =>
    Effect.gen(function*() {
      const { keys, server } = yield* setup()
      const encrypted = yield* extraKey(keys, "encrypted", "secret")
      const config = yield* writeConfig(
        keys,
        hostBlock(keys, server.port, [`IdentityFile ${encrypted}`, `IdentityFile ${keys.strangerKeyFile}`]).replace(
          `  IdentityFile ${keys.clientKeyFile}\n`,
          ""
        )
      )
      const error = yield* Effect.flip(connectWith(config))
      assert.strictEqual(error._tag, "SshConnectError")
      assert.include(error.message, "Permission denied (publickey)")
      assert.include(error.message, `tried ${keys.strangerKeyFile}`)
      assert.include(error.message, `skipped ${encrypted} (encrypted`)
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scopedLive("authenticates with the agent, offering only IdentityFile keys with IdentitiesOnly", () =>
    Effect.gen(function*() {
      const { keys, server } = yield* setup()
      const socket = `${keys.dir}/agent.sock`
      yield* Command.start(Command.make("ssh-agent", "-D", "-a", socket))
      const fs = yield* FileSystem.FileSystem
      while (!(yield* fs.exists(socket))) yield* Effect.yieldNow()
      const add = (file: string) =>
        Command.exitCode(Command.make("ssh-add", "-q", file).pipe(Command.env({ SSH_AUTH_SOCK: socket })))
      yield* add(keys.strangerKeyFile)
      yield* add(keys.clientKeyFile)
      // The client key only as an encrypted file + .pub: usable through the agent alone.
      const encrypted = yield* extraKey(keys, "enc", "secret")
      yield* fs.copyFile(`${keys.clientKeyFile}.pub`, `${encrypted}.pub`)
      const config = yield* writeConfig(
        keys,
        hostBlock(keys, server.port, [`IdentityAgent ${socket}`, `IdentityFile ${encrypted}`])
          .replace(`  IdentityFile ${keys.clientKeyFile}\n`, "")
          .replace("  IdentityAgent none\n", "")
      )
      assert.strictEqual(
        text((yield* Effect.flatMap(connectWith(config), (c) => c.exec("echo agent"))).stdout),
        "agent\n"
      )
      const client = blobOf(yield* fs.readFileString(`${keys.clientKeyFile}.pub`)).toString("base64")
      assert.isTrue(
        server.state.offeredKeys.every((key) => key === client),
        "IdentitiesOnly: the stranger key was offered"
      )
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scopedLive("reaches a host through a ProxyJump host", () =>
    Effect.gen(function*() {
      const { keys, server: target } = yield* setup()
      const jump = yield* startServer(keys)
      yield* knownHosts(
        keys,
        `[127.0.0.1]:${target.port} ${keys.hostPublic}\n[127.0.0.1]:${jump.port} ${keys.hostPublic}\n`
      )
      const config = yield* writeConfig(
        keys,
        hostBlock(keys, target.port, ["ProxyJump jumphost"]) + hostBlock(keys, jump.port, [], "jumphost")
      )
      const conn = yield* connectWith(config)
      assert.strictEqual(text((yield* conn.exec("echo through")).stdout), "through\n")
      assert.strictEqual(jump.state.forwards, 1)
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scopedLive("a connection cut mid-command fails the command and its truncated output", () =>
    Effect.gen(function*() {
      const { config } = yield* setup()
      const conn = yield* connectWith(config)
      const error = yield* Effect.flip(conn.exec("drop"))
      assert.strictEqual(error._tag, "SshChannelError")
      assert.include(error.message, "closed before the command exited")
      const next = yield* Effect.flip(conn.exec("echo again"))
      assert.include(next.message, "the connection is closed")
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scopedLive("connecting to a host that never answers can be interrupted", () =>
    Effect.gen(function*() {
      const keys = yield* makeKeys
      const silent = yield* silentServer
      const config = yield* writeConfig(keys, hostBlock(keys, silent.port))
      const fiber = yield* Effect.fork(Effect.scoped(connectWith(config)))
      yield* within("the connection to the silent server", Deferred.await(silent.connected))
      const exit = yield* within("the interrupted connect's end", Fiber.interrupt(fiber))
      assert.isTrue(Exit.isInterrupted(exit), `the connect ended otherwise: ${String(exit)}`)
      yield* within("the TCP connection's close", Deferred.await(silent.closed))
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scopedLive("a closed port is a connect error that says so", () =>
    Effect.gen(function*() {
      const keys = yield* makeKeys
      // Port 1 (tcpmux, privileged): nothing listens there, unlike a just-freed port another process may take.
      const config = yield* writeConfig(keys, hostBlock(keys, 1))
      const error = yield* Effect.flip(connectWith(config))
      assert.strictEqual(error._tag, "SshConnectError")
      assert.include(error.message, "127.0.0.1:1 refused the connection")
    }).pipe(Effect.provide(NodeContext.layer)))
})
