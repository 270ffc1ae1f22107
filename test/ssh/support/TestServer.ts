/**
 * An in-process ssh2 server on 127.0.0.1 with keys made by ssh-keygen, and the ssh config that
 * points a host name at it: what `SshSessionLayer({ configFile })` connects to in unit tests.
 */
import { Command, FileSystem } from "@effect/platform"
import { Deferred, Effect, Queue } from "effect"
import { createHash } from "node:crypto"
import * as net from "node:net"
import ssh2 from "ssh2"
import { hangupGuard } from "../../../src/ssh/SshChannel.js"

/** Keys of one test: two host keys (the server's and an impostor's) and two client keys. */
export interface TestKeys {
  readonly dir: string
  readonly hostKey: Buffer
  /** `ssh-ed25519 AAAA…` of the server's host key. */
  readonly hostPublic: string
  readonly otherHostPublic: string
  /** The client key the server accepts (a file for IdentityFile). */
  readonly clientKeyFile: string
  /** A key the server does not accept. */
  readonly strangerKeyFile: string
}

const keygen = (file: string, passphrase = "") =>
  Command.string(Command.make("ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-C", "", "-f", file))

const publicPart = (text: string) => text.trim().split(/\s+/).slice(0, 2).join(" ")

/** A temp dir (removed with the scope) holding fresh keys. */
export const makeKeys = Effect.gen(function*() {
  const fs = yield* FileSystem.FileSystem
  const dir = yield* fs.makeTempDirectoryScoped({ prefix: "nsh-ssh-test-" })
  for (const name of ["host", "other-host", "client", "stranger"]) yield* keygen(`${dir}/${name}`)
  return {
    dir,
    hostKey: Buffer.from(yield* fs.readFile(`${dir}/host`)),
    hostPublic: publicPart(yield* fs.readFileString(`${dir}/host.pub`)),
    otherHostPublic: publicPart(yield* fs.readFileString(`${dir}/other-host.pub`)),
    clientKeyFile: `${dir}/client`,
    strangerKeyFile: `${dir}/stranger`
  } satisfies TestKeys
})

/** Generates an extra ed25519 key (optionally encrypted) in the test dir. */
export const extraKey = (keys: TestKeys, name: string, passphrase = "") =>
  Effect.as(keygen(`${keys.dir}/${name}`, passphrase), `${keys.dir}/${name}`)

/** What the server saw, for assertions. */
export interface ServerState {
  /** Public keys (base64) offered with a signature or a query, in order. */
  readonly offeredKeys: Array<string>
  readonly signals: Queue.Queue<string>
  /** Forwarded connections (ProxyJump) it opened. */
  forwards: number
  /** Bytes `produce` handed to the channel so far. */
  produced: number
  /** Bytes `count-gated` has read so far. */
  consumed: number
  /** Opens the gate of `count-gated` (until then it reads nothing). */
  readonly gate: Deferred.Deferred<void>
}

/**
 * Commands the server understands (no shell): `echo WORD`, `fail N` (stderr + exit N), `kill`
 * (dies of SIGKILL), `count` (bytes + sha256 of stdin), `count-gated` (same, reads only once
 * the gate opens), `produce N` (N bytes of output, respecting backpressure), `stats`, `sleep`
 * (forever; signals sent to it are recorded), `drop` (some output, then the whole connection
 * is cut).
 */
/** Undoes the login-shell wrapping by its shape on the wire, not by nsh's own helper. */
const unwrapLoginShell = (command: string): string => {
  const match = /^exec \/bin\/sh -c 'eval "\$\(echo ([A-Za-z0-9+/=]+) \| base64 -d\)"'$/.exec(command)
  if (match === null) throw new Error(`a command not wrapped for the login shell: ${command}`)
  return Buffer.from(match[1], "base64").toString("utf8")
}

const runCommand = (command: string, channel: ssh2.ServerChannel, state: ServerState, drop: () => void) => {
  // No shell here: every command arrives wrapped for any login shell, and those without input
  // behind the hangup guard.
  const [verb, arg = ""] = unwrapLoginShell(command).replace(hangupGuard, "").split(" ")
  const finish = (code: number) => {
    channel.exit(code)
    channel.end()
  }
  const count = () => {
    const hash = createHash("sha256")
    channel.on("data", (data: Buffer) => {
      state.consumed += data.length
      hash.update(data)
    })
    channel.on("end", () => {
      channel.write(`${state.consumed} ${hash.digest("hex")}\n`)
      finish(0)
    })
  }
  switch (verb) {
    case "echo":
      channel.write(`${arg}\n`)
      return finish(0)
    case "fail":
      channel.stderr.write("boom\n")
      return finish(Number(arg))
    case "kill":
      channel.exit("KILL")
      return channel.end()
    case "count":
      return count()
    case "count-gated":
      return void Deferred.await(state.gate).pipe(Effect.runPromise).then(count)
    case "produce": {
      const total = Number(arg)
      const chunk = Buffer.alloc(64 * 1024, 0x61)
      const pump = () => {
        while (state.produced < total) {
          state.produced += chunk.length
          if (!channel.write(chunk)) return void channel.once("drain", pump)
        }
        finish(0)
      }
      return pump()
    }
    case "stats":
      channel.write(JSON.stringify({ produced: state.produced, consumed: state.consumed }))
      return finish(0)
    case "sleep":
      return
    case "drop":
      channel.write("partial")
      return drop()
    default:
      channel.stderr.write(`unknown test command: ${command}\n`)
      return finish(127)
  }
}

/** Starts the server; it accepts only `clientKeyFile`'s key and stops with the scope. */
export const startServer = (keys: TestKeys, hostKey: Buffer = keys.hostKey) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const allowed = ssh2.utils.parseKey(Buffer.from(yield* fs.readFile(`${keys.clientKeyFile}.pub`)))
    if (allowed instanceof Error) return yield* Effect.die(allowed)
    const state: ServerState = {
      offeredKeys: [],
      signals: yield* Queue.unbounded<string>(),
      forwards: 0,
      produced: 0,
      consumed: 0,
      gate: yield* Deferred.make<void>()
    }
    // ssh2's server ignores signal requests once a command runs: read them from its protocol trace.
    const debug = (line: string) => {
      const signal = /CHANNEL_REQUEST \(r:\d+, signal: (\w+)\)/.exec(line)
      if (signal !== null) Queue.unsafeOffer(state.signals, signal[1]!)
    }
    const server = new ssh2.Server({ hostKeys: [hostKey], debug }, (client) => {
      client.on("error", () => {})
      client.on("authentication", (ctx) => {
        if (ctx.method !== "publickey") return ctx.reject(["publickey"])
        state.offeredKeys.push(ctx.key.data.toString("base64"))
        if (ctx.key.algo !== allowed.type || !ctx.key.data.equals(allowed.getPublicSSH())) {
          return ctx.reject(["publickey"])
        }
        if (ctx.signature === undefined) return ctx.accept()
        return allowed.verify(ctx.blob!, ctx.signature, ctx.hashAlgo) ? ctx.accept() : ctx.reject(["publickey"])
      })
      client.on("ready", () => {
        client.on("session", (accept) => {
          accept().on("exec", (accept, _reject, info) => runCommand(info.command, accept(), state, () => client.end()))
        })
        client.on("tcpip", (accept, _reject, info) => {
          state.forwards++
          const channel = accept()
          const socket = net.connect(info.destPort, info.destIP)
          socket.on("error", () => channel.close())
          channel.pipe(socket).pipe(channel)
        })
      })
    })
    const port = yield* Effect.acquireRelease(
      Effect.async<number>((resume) => {
        server.listen(0, "127.0.0.1", () => resume(Effect.succeed((server.address() as net.AddressInfo).port)))
      }),
      () => Effect.sync(() => server.close())
    )
    return { port, state }
  })

/** A TCP server that accepts connections and never says anything: a hung sshd. */
export const silentServer = Effect.gen(function*() {
  const connected = yield* Deferred.make<void>()
  const closed = yield* Deferred.make<void>()
  const server = net.createServer((socket) => {
    Deferred.unsafeDone(connected, Effect.void)
    socket.on("close", () => Deferred.unsafeDone(closed, Effect.void))
    socket.on("error", () => {})
    socket.resume()
  })
  const port = yield* Effect.acquireRelease(
    Effect.async<number>((resume) => {
      server.listen(0, "127.0.0.1", () => resume(Effect.succeed((server.address() as net.AddressInfo).port)))
    }),
    () => Effect.sync(() => server.close())
  )
  return { port, connected, closed }
})

/** Writes an ssh config file into the test dir and returns its path. */
export const writeConfig = (keys: TestKeys, text: string) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const file = `${keys.dir}/ssh_config`
    yield* fs.writeFileString(file, text)
    return file
  })

/** A `Host testnode` block for the server, strict by default; `extra` lines are added first (they win). */
export const hostBlock = (keys: TestKeys, port: number, extra: ReadonlyArray<string> = [], name = "testnode") =>
  [
    `Host ${name}`,
    ...extra.map((line) => `  ${line}`),
    "  HostName 127.0.0.1",
    `  Port ${port}`,
    "  User tester",
    `  IdentityFile ${keys.clientKeyFile}`,
    "  IdentitiesOnly yes",
    "  IdentityAgent none",
    `  UserKnownHostsFile ${keys.dir}/known_hosts`,
    "  GlobalKnownHostsFile none",
    "  StrictHostKeyChecking yes",
    "  BatchMode yes",
    ""
  ].join("\n")
