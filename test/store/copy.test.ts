/**
 * NixStoreLive's copies and garbage collection, with a fake nix-store on PATH playing both the
 * local store and the node's (test/fixtures/nix-store/fake-nix-store.sh) and SshSessionTest running
 * the node's commands locally.
 */
import { FileSystem } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Layer, Ref, Scope, Stream } from "effect"
import { statSync } from "node:fs"
import { basename } from "node:path"
import { SshChannelError } from "../../src/ssh/SshErrors.js"
import { type SshConnection, SshSession } from "../../src/ssh/SshSession.js"
import { NixStore } from "../../src/store/NixStore.js"
import { NixStoreLive } from "../../src/store/NixStoreLive.js"
import { SshSessionTest } from "../ssh/SshSessionTest.js"
import { type FakeStore, installFakeNixStore, makeFakeStore } from "../support/FakeNixStore.js"
import { eventually, noProcessesLeft } from "../support/Processes.js"
import { TestConfig } from "../support/settings.js"

let uninstall: () => void = () => {}
beforeAll(() => {
  uninstall = installFakeNixStore()
})
afterAll(() => uninstall())

const p = (hash: string, name: string) => `/nix/store/${hash.repeat(32)}-${name}`
const drvPath = p("0", "hello-2.12.drv")
const out = p("a", "hello-2.12")
const glibc = p("c", "glibc-2.37")
const src = p("d", "hello-2.12.tar.gz")

interface World {
  readonly dir: string
  readonly local: FakeStore
  readonly node: FakeStore
}

/** The local store holds the inputs; the node already has the source, not glibc or the .drv. */
const makeWorld = Effect.gen(function*() {
  const fs = yield* FileSystem.FileSystem
  const dir = yield* fs.makeTempDirectoryScoped({ prefix: "nsh-copy-" })
  const local = yield* makeFakeStore(`${dir}/local`)
  const node = yield* makeFakeStore(`${dir}/node`)
  yield* local.markValid(drvPath, glibc, src)
  yield* node.markValid(src)
  return { dir, local, node } satisfies World
}).pipe(Effect.provide(NodeContext.layer))

/** Runs `body` with NixStoreLive (remote-store: the node's fake store) and a connection to node1. */
const withNode = <A, E>(world: World, body: (conn: SshConnection) => Effect.Effect<A, E, NixStore | Scope.Scope>) =>
  Effect.gen(function*() {
    const ssh = yield* SshSession
    const conn = yield* ssh.connect("node1")
    return yield* body(conn)
  }).pipe(
    Effect.provide(
      Layer.mergeAll(
        NixStoreLive.pipe(Layer.provide(Layer.merge(TestConfig({ remoteStore: world.node.dir }), NodeContext.layer))),
        SshSessionTest()
      )
    )
  )

const noProgress = { onBytes: () => Effect.void, onPlan: () => Effect.void }

describe("NixStoreLive.copyToNode", () => {
  it.scopedLive("sends only what the node lacks, dependencies first, the .drv included", () =>
    Effect.gen(function*() {
      const world = yield* makeWorld
      yield* world.local.setReferences(drvPath, [glibc])
      const planned = yield* Ref.make<ReadonlyArray<string>>([])
      const stats = yield* withNode(world, (conn) =>
        Effect.flatMap(NixStore, (store) =>
          store.copyToNode(conn, [glibc, src, drvPath], {
            localStore: world.local.dir,
            substitute: false,
            onPlan: (missing) =>
              Ref.set(planned, missing),
            onBytes: () => Effect.void
          })))
      assert.include(yield* world.local.calls, `--export ${glibc} ${drvPath}`)
      assert.includeMembers(yield* world.node.valid, [glibc, drvPath])
      assert.deepStrictEqual(yield* Ref.get(planned), [glibc, drvPath])
      assert.strictEqual(stats.paths, 2)
      assert.isAbove(stats.bytes, 0)
      assert.notInclude((yield* world.node.calls).join("\n"), "--realise")
    }))

  it.scopedLive("with builders-use-substitutes, lets the node substitute first, then sends the rest", () =>
    Effect.gen(function*() {
      const world = yield* makeWorld
      yield* withNode(
        world,
        (conn) =>
          Effect.flatMap(NixStore, (store) =>
            store.copyToNode(conn, [glibc, src, drvPath], {
              localStore: world.local.dir,
              substitute: true,
              ...noProgress
            }))
      )
      const nodeCalls = yield* world.node.calls
      assert.include(nodeCalls, `--realise --ignore-unknown ${glibc} ${drvPath}`)
      assert.isBelow(nodeCalls.indexOf(`--realise --ignore-unknown ${glibc} ${drvPath}`), nodeCalls.indexOf("--import"))
    }))

  it.scopedLive("an import the node refuses fails naming the command and the node", () =>
    Effect.gen(function*() {
      const world = yield* makeWorld
      yield* world.node.failOn("--import")
      const error = yield* withNode(world, (conn) =>
        Effect.flatMap(NixStore, (store) =>
          Effect.flip(
            store.copyToNode(conn, [glibc, src, drvPath], {
              localStore: world.local.dir,
              substitute: false,
              ...noProgress
            })
          )))
      assert.strictEqual(
        error.message,
        "nix-store --import failed on node1 (exit 1): fake nix-store: --import failed as the test asked"
      )
    }))

  it.scopedLive("interrupted: the remote import is killed", () =>
    Effect.gen(function*() {
      const world = yield* makeWorld
      yield* world.node.blockOn("--import")
      const blockedPid = yield* withNode(world, (conn) =>
        Effect.gen(function*() {
          const store = yield* NixStore
          const fiber = yield* Effect.fork(
            store.copyToNode(conn, [glibc, src, drvPath], {
              localStore: world.local.dir,
              substitute: false,
              ...noProgress
            })
          )
          const pid = yield* eventually(world.node.blockedPid("--import"), "the import to block")
          assert.isTrue(Exit.isInterrupted(yield* Fiber.interrupt(fiber)))
          return pid
        }))
      yield* noProcessesLeft(world.dir, blockedPid)
    }))
})

describe("NixStoreLive.copyFromNode", () => {
  /** The node built `out` (referring to glibc). */
  const built = (world: World) =>
    Effect.zipRight(world.node.writeContents(out, "hello's NAR"), world.node.setReferences(out, [glibc]))

  it.scopedLive("restores each output at its path and registers it with its deriver and references", () =>
    Effect.gen(function*() {
      const world = yield* makeWorld
      yield* built(world)
      const stats = yield* withNode(
        world,
        (conn) =>
          Effect.flatMap(NixStore, (store) =>
            store.copyFromNode(conn, [out], {
              localStore: world.local.dir,
              deriver: drvPath,
              onBytes: () => Effect.void
            }))
      )
      // The local store is one under another root too (a user's chroot store): --restore writes
      // the file system, so the output goes where that store keeps it, not at /nix/store.
      assert.include(yield* world.local.calls, `--restore ${world.local.dir}${out}`)
      // remote-store is a store under another root: nix-store --dump reads the file system, so
      // it gets the output where that store keeps it.
      assert.include(yield* world.node.calls, `--dump ${world.node.dir}${out}`)
      assert.strictEqual(yield* world.local.contents(out), "hello's NAR")
      // Nix's --register-validity would hash and canonicalise /nix/store/… itself, ignoring the
      // root: nsh makes the restored path read-only with mtime 1 and registers it with the
      // node's NAR hash and size (--load-db).
      const restored = statSync(`${world.local.dir}${out}`)
      assert.strictEqual(restored.mode & 0o777, 0o444)
      assert.strictEqual(restored.mtimeMs, 1000)
      assert.strictEqual(
        yield* world.local.registered,
        `${out}\nsha256:fake-${basename(out)}\n${"hello's NAR".length}\n${drvPath}\n1\n${glibc}\n`
      )
      assert.include(yield* world.local.valid, out)
      assert.deepStrictEqual(stats, { paths: 1, bytes: "hello's NAR".length })
    }))

  it.scopedLive("the connection cut mid-NAR: the output is fetched again and arrives whole", () =>
    Effect.gen(function*() {
      const world = yield* makeWorld
      yield* built(world)
      const stats = yield* withNode(world, (conn) => {
        let dumps = 0
        // The first dump's connection drops after 5 bytes, as SshChannel reports a cut stdout.
        const cutOnce: SshConnection = {
          ...conn,
          spawn: (command, stdin) =>
            Effect.map(conn.spawn(command, stdin), (proc) =>
              !command.includes("--dump") || dumps++ > 0 ? proc : {
                ...proc,
                stdout: proc.stdout.pipe(
                  Stream.take(1),
                  Stream.map((chunk) => chunk.slice(0, 5)),
                  Stream.concat(
                    Stream.fail(new SshChannelError({ host: "node1", command, reason: "its stdout was cut off" }))
                  )
                )
              })
        }
        return Effect.flatMap(
          NixStore,
          (store) =>
            store.copyFromNode(cutOnce, [out], {
              localStore: world.local.dir,
              deriver: drvPath,
              onBytes: () => Effect.void
            })
        )
      })
      assert.lengthOf((yield* world.node.calls).filter((c) => c.includes("--dump")), 2)
      assert.strictEqual(yield* world.local.contents(out), "hello's NAR")
      assert.include(yield* world.local.valid, out)
      assert.deepStrictEqual(stats, { paths: 1, bytes: "hello's NAR".length })
    }))

  it.scopedLive("an output already valid here is not copied again", () =>
    Effect.gen(function*() {
      const world = yield* makeWorld
      yield* built(world)
      yield* world.local.markValid(out)
      const stats = yield* withNode(world, (conn) =>
        Effect.flatMap(NixStore, (store) =>
          store.copyFromNode(conn, [out], {
            localStore: world.local.dir,
            deriver: drvPath,
            onBytes: () => Effect.void
          })))
      assert.deepStrictEqual(stats, { paths: 0, bytes: 0 })
      assert.notInclude((yield* world.local.calls).join("\n"), "--restore")
    }))

  it.scopedLive("a restore that fails names the command; nothing is registered", () =>
    Effect.gen(function*() {
      const world = yield* makeWorld
      yield* built(world)
      yield* world.local.failOn("--restore")
      const error = yield* withNode(world, (conn) =>
        Effect.flatMap(NixStore, (store) =>
          Effect.flip(store.copyFromNode(conn, [out], {
            localStore: world.local.dir,
            deriver: drvPath,
            onBytes: () =>
              Effect.void
          }))))
      assert.strictEqual(
        error.message,
        `nix-store --store ${world.local.dir} failed on this machine (exit 1): fake nix-store: --restore failed as the test asked`
      )
      assert.strictEqual(yield* world.local.registered, "")
    }))

  it.scopedLive("interrupted: the transfer is killed, nothing is registered", () =>
    Effect.gen(function*() {
      const world = yield* makeWorld
      yield* built(world)
      yield* world.node.blockOn("--dump")
      const blockedPid = yield* withNode(world, (conn) =>
        Effect.gen(function*() {
          const store = yield* NixStore
          const fiber = yield* Effect.fork(
            store.copyFromNode(conn, [out], {
              localStore: world.local.dir,
              deriver: drvPath,
              onBytes: () => Effect.void
            })
          )
          const pid = yield* eventually(world.node.blockedPid("--dump"), "the dump to block")
          assert.isTrue(Exit.isInterrupted(yield* Fiber.interrupt(fiber)))
          return pid
        }))
      assert.strictEqual(yield* world.local.registered, "")
      yield* noProcessesLeft(world.dir, blockedPid)
    }))
})

describe("NixStoreLive.collectGarbage", () => {
  it.scopedLive("runs nix-store --gc on the node, against remote-store", () =>
    Effect.gen(function*() {
      const world = yield* makeWorld
      yield* withNode(world, (conn) => Effect.flatMap(NixStore, (store) => store.collectGarbage(conn)))
      // The fake answers only with --store given: the call reached the node's store.
      assert.include(yield* world.node.calls, "--gc")
      assert.notInclude(yield* world.local.calls, "--gc")
    }))
})
