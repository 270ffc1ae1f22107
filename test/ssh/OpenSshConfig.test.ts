import { FileSystem } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { describe, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { readFileSync } from "node:fs"
import { assert } from "vitest"
import { decodeSshG, expandIdentityPath, resolveHost } from "../../src/ssh/OpenSshConfig.js"
import { parseJump } from "../../src/ssh/SshSessionLive.js"

// Real `ssh -G` output: root's lab config for node1, and a config setting every field we read.
const fixture = (name: string) => readFileSync(new URL(`../fixtures/ssh/${name}`, import.meta.url), "utf8")

describe("ssh -G decoding", () => {
  it.effect("node1 from the lab config", () =>
    Effect.gen(function*() {
      const host = yield* decodeSshG("node1", fixture("ssh-G-node1.txt"))
      assert.strictEqual(host.hostname, "node1")
      assert.strictEqual(host.user, "root")
      assert.strictEqual(host.port, 22)
      assert.deepStrictEqual(host.identityFiles, ["/root/.ssh/nshlab_ed25519"])
      assert.isTrue(host.identitiesOnly)
      assert.isTrue(host.batchMode)
      assert.strictEqual(host.strictHostKeyChecking, "yes")
      assert.deepStrictEqual(host.userKnownHostsFiles, ["/root/.ssh/known_hosts", "/root/.ssh/known_hosts2"])
      assert.deepStrictEqual(host.globalKnownHostsFiles, ["/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"])
      assert.isTrue(Option.isNone(host.proxyJump))
      assert.isTrue(Option.isNone(host.connectTimeout))
      assert.isTrue(Option.isNone(host.identityAgent))
      // BatchMode makes ssh default ServerAliveInterval to 300.
      assert.strictEqual(host.serverAliveInterval, 300)
    }))

  it.effect("every field, with OpenSSH's spellings (false, none, repeated identityfile)", () =>
    Effect.gen(function*() {
      const host = yield* decodeSshG("build7", fixture("ssh-G-variants.txt"))
      assert.strictEqual(host.host, "build7")
      assert.strictEqual(host.hostname, "build7.cluster.example")
      assert.strictEqual(host.port, 2222)
      assert.deepStrictEqual(host.identityFiles, ["%d/.ssh/cluster_%r@%h", "~/.ssh/id_ed25519"])
      assert.strictEqual(host.strictHostKeyChecking, "no")
      assert.isTrue(host.hashKnownHosts)
      assert.deepStrictEqual(host.connectTimeout, Option.some(7))
      assert.strictEqual(host.serverAliveInterval, 15)
      assert.strictEqual(host.serverAliveCountMax, 4)
      assert.deepStrictEqual(host.hostKeyAlias, Option.some("build7-key"))
      assert.deepStrictEqual(host.identityAgent, Option.none())
      assert.deepStrictEqual(host.globalKnownHostsFiles, [])
      assert.deepStrictEqual(host.userKnownHostsFiles, ["/root/.ssh/known_hosts", "/root/.ssh/cluster_hosts"])
      assert.deepStrictEqual(host.proxyJump, Option.some("alice@bastion.example:2200,gw"))
    }))

  it.effect("an unknown StrictHostKeyChecking value is an error naming the field", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(
        decodeSshG("x", "host x\nhostname x\nuser u\nport 22\nstricthostkeychecking maybe\n")
      )
      assert.include(error.message, "stricthostkeychecking")
    }))

  it.effect("IdentityFile tokens expand like ssh; unknown ones drop the file", () =>
    Effect.gen(function*() {
      const host = yield* decodeSshG("build7", fixture("ssh-G-variants.txt"))
      const local = { home: "/home/me", user: "me", uid: 1000, hostname: "laptop.example" }
      assert.deepStrictEqual(
        expandIdentityPath("%d/.ssh/cluster_%r@%h", host, local, {}),
        Option.some("/home/me/.ssh/cluster_alice@build7.cluster.example")
      )
      assert.deepStrictEqual(
        expandIdentityPath("~/k_%u_%L_%p_%%", host, local, {}),
        Option.some("/home/me/k_me_laptop_2222_%")
      )
      assert.deepStrictEqual(expandIdentityPath("${KEYS}/id", host, local, { KEYS: "/keys" }), Option.some("/keys/id"))
      assert.deepStrictEqual(expandIdentityPath("~/.ssh/%C", host, local, {}), Option.none())
    }))

  it("ProxyJump hops", () => {
    assert.deepStrictEqual(parseJump("alice@bastion.example:2200"), {
      user: "alice",
      host: "bastion.example",
      port: "2200"
    })
    assert.deepStrictEqual(parseJump("gw"), { user: undefined, host: "gw", port: undefined })
    assert.deepStrictEqual(parseJump("ssh://bob@[::1]:22"), { user: "bob", host: "::1", port: "22" })
    assert.isUndefined(parseJump("a b"))
  })
})

describe("resolveHost runs ssh -G", () => {
  it.scopedLive("with a config file given by -F", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* fs.makeTempDirectoryScoped()
      yield* fs.writeFileString(
        `${dir}/config`,
        "Host n*\n  User builder\n  Port 2022\n  IdentityFile /keys/%h\nHost node7\n  HostName 10.1.2.7\n"
      )
      const host = yield* resolveHost("node7", { configFile: `${dir}/config` })
      assert.deepStrictEqual([host.user, host.hostname, host.port], ["builder", "10.1.2.7", 2022])
      assert.deepStrictEqual(host.identityFiles, ["/keys/%h"])
      const jump = yield* resolveHost("node7", { configFile: `${dir}/config` }, ["-l", "other", "-J", "a,b"])
      assert.strictEqual(jump.user, "other")
      assert.deepStrictEqual(jump.proxyJump, Option.some("a,b"))
    }).pipe(Effect.provide(NodeContext.layer)))

  it.live("a missing config file is an error with ssh's own message", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(resolveHost("node7", { configFile: "/nonexistent/ssh_config" }))
      assert.strictEqual(error._tag, "SshConnectError")
      assert.include(error.message, "Can't open user config file /nonexistent/ssh_config")
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scopedLive("without ssh on PATH the error says to install it", () =>
    Effect.gen(function*() {
      yield* Effect.acquireRelease(
        Effect.sync(() => {
          const path = process.env.PATH
          process.env.PATH = "/nonexistent"
          return path
        }),
        (path) => Effect.sync(() => void (process.env.PATH = path))
      )
      const error = yield* Effect.flip(resolveHost("node7", {}))
      assert.include(error.message, "`ssh` is not installed or not on PATH")
    }).pipe(Effect.provide(NodeContext.layer)))
})
