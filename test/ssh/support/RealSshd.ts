/**
 * A real OpenSSH sshd on a loopback port, started by a test as the current user, that accepts
 * only OpenSSH user certificates signed by the test's own CA (TrustedUserCAKeys, no
 * authorized_keys): what a site issuing short-lived certificates looks like.
 */
import { Command, FileSystem } from "@effect/platform"
import { Deferred, Effect, Stream } from "effect"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"

export const sshdPath = "/usr/sbin/sshd"

/** Whether this machine can run the real-sshd tests (OpenSSH's server installed). */
export const haveSshd = fs.existsSync(sshdPath)

const run = (...args: Array<string>) => Command.string(Command.make(args[0]!, ...args.slice(1)))

const freePort = Effect.async<number>((resume) => {
  const server = net.createServer()
  server.listen(0, "127.0.0.1", () => {
    const port = (server.address() as net.AddressInfo).port
    server.close(() => resume(Effect.succeed(port)))
  })
})

export interface CertSshd {
  readonly dir: string
  readonly port: number
  /** The client key; `${keyFile}-cert.pub` is its certificate. */
  readonly keyFile: string
  /** ssh config with `Host certnode` (key + certificate beside it) for this sshd. */
  readonly configFile: string
  /** sshd's log so far (for failure messages). */
  readonly log: ReadonlyArray<string>
}

/** Starts sshd (stopped with the scope) and writes a client config for it. */
export const startCertSshd = Effect.gen(function*() {
  const files = yield* FileSystem.FileSystem
  const dir = yield* files.makeTempDirectoryScoped({ prefix: "nsh-sshd-test-" })
  const user = os.userInfo().username
  for (const name of ["host", "ca", "client"]) {
    yield* run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", `${dir}/${name}`)
  }
  yield* run("ssh-keygen", "-q", "-s", `${dir}/ca`, "-I", "nsh-test", "-n", user, "-V", "-5m:+1h", `${dir}/client.pub`)
  const port = yield* freePort
  yield* files.writeFileString(
    `${dir}/sshd_config`,
    [
      `ListenAddress 127.0.0.1:${port}`,
      `HostKey ${dir}/host`,
      `PidFile ${dir}/sshd.pid`,
      `TrustedUserCAKeys ${dir}/ca.pub`,
      "AuthorizedKeysFile none",
      "PubkeyAuthentication yes",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "PermitRootLogin prohibit-password",
      "UsePAM no",
      "StrictModes no",
      "LogLevel VERBOSE",
      ""
    ].join("\n")
  )
  const hostPublic = (yield* files.readFileString(`${dir}/host.pub`)).trim().split(/\s+/).slice(0, 2).join(" ")
  yield* files.writeFileString(`${dir}/known_hosts`, `[127.0.0.1]:${port} ${hostPublic}\n`)
  const configFile = `${dir}/ssh_config`
  yield* files.writeFileString(
    configFile,
    [
      "Host certnode",
      "  HostName 127.0.0.1",
      `  Port ${port}`,
      `  User ${user}`,
      `  IdentityFile ${dir}/client`,
      "  IdentitiesOnly yes",
      "  IdentityAgent none",
      `  UserKnownHostsFile ${dir}/known_hosts`,
      "  GlobalKnownHostsFile none",
      "  StrictHostKeyChecking yes",
      ""
    ].join("\n")
  )
  const sshd = yield* Command.start(Command.make(sshdPath, "-D", "-e", "-f", `${dir}/sshd_config`))
  // -e: its log is on stderr, read to the end (a full pipe would stop sshd); ready once it listens.
  const listening = yield* Deferred.make<void>()
  const log: Array<string> = []
  yield* sshd.stderr.pipe(
    Stream.decodeText(),
    Stream.splitLines,
    Stream.runForEach((line) =>
      Effect.sync(() => log.push(line)).pipe(
        Effect.zipRight(line.includes("Server listening") ? Deferred.succeed(listening, undefined) : Effect.void)
      )
    ),
    Effect.forkScoped
  )
  yield* Deferred.await(listening).pipe(
    Effect.timeoutFail({
      duration: "10 seconds",
      onTimeout: () => new Error(`sshd did not start listening: ${log.join("\n")}`)
    })
  )
  return { dir, port, keyFile: `${dir}/client`, configFile, log } satisfies CertSshd
})
