/**
 * SshSessionLive against the lab's node1: its real sshd, reached by host name through root's
 * ~/.ssh/config and known_hosts, like `ssh node1`.
 */
import { Command, FileSystem } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { describe, it } from "@effect/vitest"
import { Effect, Exit, Scope, Stream } from "effect"
import { createHash } from "node:crypto"
import { assert } from "vitest"
import { SshSession } from "../../src/ssh/SshSession.js"
import { SshSessionLayer } from "../../src/ssh/SshSessionLive.js"

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes).trim()

const node1 = SshSession.pipe(Effect.flatMap((ssh) => ssh.connect("node1")))

describe("SshSessionLive on node1", () => {
  it.scopedLive("connects by host name and runs commands in node1's namespace", () =>
    Effect.gen(function*() {
      const conn = yield* node1
      assert.strictEqual(text((yield* conn.exec("hostname")).stdout), "node1")
      const nix = yield* conn.exec("nix-store --version")
      assert.strictEqual(nix.exitCode, 0)
      assert.match(text(nix.stdout), /^nix-store \(Nix\) 2\./)
      const failed = yield* conn.exec("echo out; echo err >&2; exit 7")
      assert.deepStrictEqual([failed.exitCode, text(failed.stdout), text(failed.stderr)], [7, "out", "err"])
    }).pipe(Effect.provide(SshSessionLayer({}))))

  it.scopedLive("runs several channels at once on one connection", () =>
    Effect.gen(function*() {
      const conn = yield* node1
      const results = yield* Effect.forEach(
        Array.from({ length: 16 }, (_, i) => i),
        (i) => conn.exec(`sleep 0.2; echo ${i} $(hostname)`),
        { concurrency: "unbounded" }
      )
      assert.deepStrictEqual(
        results.map((r) => text(r.stdout)),
        results.map((_, i) => `${i} node1`)
      )
    }).pipe(Effect.provide(SshSessionLayer({}))))

  it.scopedLive("streams 20 MB of stdin into a file on the node", () =>
    Effect.gen(function*() {
      const conn = yield* node1
      const size = 20 * 1024 * 1024
      const chunk = 256 * 1024
      const hash = createHash("sha256")
      const input = Stream.range(0, size / chunk - 1, 1).pipe(
        Stream.map((i) => {
          const data = Buffer.alloc(chunk, i % 251)
          hash.update(data)
          return new Uint8Array(data)
        })
      )
      // Per run: another run's file must not be mistaken for this one's.
      const file = `/tmp/nsh-ssh-e2e-${process.pid}-${Date.now()}`
      const started = performance.now()
      const result = yield* conn.exec(`cat > ${file} && wc -c < ${file}`, input)
      const seconds = (performance.now() - started) / 1000
      assert.strictEqual(text(result.stdout), String(size))
      const remote = yield* conn.exec(`sha256sum ${file}; rm -f ${file}`)
      assert.strictEqual(text(remote.stdout).split(" ")[0], hash.digest("hex"))
      console.log(
        `ssh stdin throughput to node1: ${(size / 1024 / 1024 / seconds).toFixed(1)} MB/s (20 MB in ${
          seconds.toFixed(2)
        } s)`
      )
    }).pipe(Effect.provide(SshSessionLayer({}))))

  it.scopedLive("closing a spawn's scope stops the remote command (root login: no signals, the hangup guard)", () =>
    Effect.gen(function*() {
      const conn = yield* node1
      const marker = `${process.pid}${Date.now() % 100000}`
      const scope = yield* Scope.make()
      yield* conn.spawn(`exec sleep ${marker}`).pipe(Scope.extend(scope))
      // Anchored: the checking shell's own command line contains the marker too.
      const running = () =>
        conn.exec(`pgrep -f '^sleep ${marker}$' >/dev/null`).pipe(
          Effect.map((r) => {
            assert.include([0, 1], r.exitCode, "pgrep failed")
            return r.exitCode === 0
          })
        )
      assert.isTrue(yield* running().pipe(Effect.repeat({ until: (up) => up, times: 50 })))
      yield* Scope.close(scope, Exit.void)
      const gone = yield* running().pipe(
        Effect.map((up) => !up),
        Effect.tap((done) => (done ? Effect.void : Effect.sleep("100 millis"))),
        Effect.repeat({ until: (done) => done, times: 50 })
      )
      assert.isTrue(gone, "the remote sleep survived its channel")
    }).pipe(Effect.provide(SshSessionLayer({}))))

  it.scopedLive("a wrong key for node1 in known_hosts is a host key error, not a connection", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* fs.makeTempDirectoryScoped({ prefix: "nsh-ssh-e2e-" })
      yield* Command.string(Command.make("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", `${dir}/impostor`))
      const impostor = (yield* fs.readFileString(`${dir}/impostor.pub`)).split(" ").slice(0, 2).join(" ")
      // The key and known_hosts `ssh node1` uses, as OpenSSH itself resolves them: with the real
      // known_hosts this config connects, so the refusals below are the host key's alone.
      const resolved = (yield* Command.string(Command.make("ssh", "-G", "node1"))).split("\n")
      const option = (name: string) => resolved.find((l) => l.startsWith(`${name} `))?.slice(name.length + 1) ?? ""
      const identityFile = option("identityfile").replace(/^~/, process.env["HOME"] ?? "/root")
      const realKnownHosts = option("userknownhostsfile").split(" ")[0]!
      assert.isTrue(yield* fs.exists(identityFile), `ssh -G node1 names no existing identity file: ${identityFile}`)
      const config = (knownHosts: string) =>
        [
          "Host node1",
          "  User root",
          `  IdentityFile ${identityFile}`,
          "  IdentitiesOnly yes",
          "  BatchMode yes",
          "  StrictHostKeyChecking yes",
          `  UserKnownHostsFile ${knownHosts}`,
          "  GlobalKnownHostsFile none",
          ""
        ].join("\n")
      yield* fs.writeFileString(`${dir}/known_hosts`, `node1 ${impostor}\n`)
      yield* fs.writeFileString(`${dir}/config`, config(`${dir}/known_hosts`))
      yield* fs.writeFileString(`${dir}/config-empty`, config(`${dir}/nothing`))
      yield* fs.writeFileString(`${dir}/config-real`, config(realKnownHosts))
      const real = yield* Effect.provide(node1, SshSessionLayer({ configFile: `${dir}/config-real` }))
      assert.strictEqual(text((yield* real.exec("hostname")).stdout), "node1")
      const connectWith = (configFile: string) => Effect.flip(Effect.provide(node1, SshSessionLayer({ configFile })))
      const changed = yield* connectWith(`${dir}/config`)
      assert.strictEqual(changed._tag, "SshHostKeyError")
      assert.include(changed.message, "CHANGED")
      const unknown = yield* connectWith(`${dir}/config-empty`)
      assert.strictEqual(unknown._tag, "SshHostKeyError")
      assert.include(unknown.message, "is not known")
    }).pipe(Effect.provide(NodeContext.layer)))
})
