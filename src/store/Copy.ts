/**
 * Copying closures between the local store and a node's store, streamed with backpressure:
 * inputs go out as one `nix-store --export | nix-store --import`, outputs come back NAR by NAR
 * and are registered without taking the output locks the parent Nix holds.
 */
import { CommandExecutor } from "@effect/platform"
import { Effect, Either, Option, Ref, Stream } from "effect"
import type { SshError } from "../ssh/SshErrors.js"
import type { SshConnection } from "../ssh/SshSession.js"
import * as Local from "./LocalStore.js"
import type { CopyStats, OnBytes } from "./NixStore.js"
import * as Remote from "./RemoteStore.js"
import { realPathIn, type StoreTarget } from "./StoreCommands.js"
import { StoreCommandError } from "./StoreErrors.js"

/** Counts the bytes of a stream, reporting the running total. */
const counted = <E, R>(stream: Stream.Stream<Uint8Array, E, R>, total: Ref.Ref<number>, onBytes: OnBytes) =>
  Stream.tap(stream, (chunk) => Ref.updateAndGet(total, (n) => n + chunk.length).pipe(Effect.flatMap(onBytes)))

/**
 * Makes the closure of `paths` valid in the node's store, sending only what it lacks. With
 * `substitute`, the node first fetches what it can from its own caches.
 */
export const copyClosureToNode = (
  conn: SshConnection,
  local: StoreTarget,
  remote: StoreTarget,
  paths: ReadonlyArray<string>,
  options: {
    readonly substitute: boolean
    readonly onBytes: OnBytes
    readonly onPlan: (missing: ReadonlyArray<string>) => Effect.Effect<void>
  }
) =>
  Effect.gen(function*() {
    const closure = yield* Local.requisites(local, paths)
    let missing = yield* Remote.invalidPaths(conn, remote, closure)
    if (options.substitute && missing.length > 0) {
      yield* Remote.substitute(conn, remote, missing)
      missing = yield* Remote.invalidPaths(conn, remote, missing)
    }
    // Keep the closure's order (dependencies first): nix-store --import needs it.
    const wanted = new Set(missing)
    const ordered = closure.filter((p) => wanted.has(p))
    yield* options.onPlan(ordered)
    if (ordered.length === 0) return { paths: 0, bytes: 0 } satisfies CopyStats
    const total = yield* Ref.make(0)
    const executor = yield* CommandExecutor.CommandExecutor
    const exported = Local.exportStream(local, ordered).pipe(
      Stream.provideService(CommandExecutor.CommandExecutor, executor)
    )
    yield* Remote.importStream(conn, remote, counted(exported, total, options.onBytes))
    return { paths: ordered.length, bytes: yield* Ref.get(total) } satisfies CopyStats
  })

/** How often one output's NAR is fetched again after the connection was cut under it. */
const maxRefetches = 3

/**
 * Brings outputs built on the node into the local store: each NAR is restored at its store path,
 * then all are registered at once with their deriver and references.
 */
export const copyOutputsFromNode = (
  conn: SshConnection,
  remote: StoreTarget,
  local: StoreTarget,
  outputs: ReadonlyArray<string>,
  deriver: string,
  onBytes: OnBytes
) =>
  Effect.gen(function*() {
    const missing = yield* Local.invalidPaths(local, outputs)
    if (missing.length === 0) return { paths: 0, bytes: 0 } satisfies CopyStats
    const total = yield* Ref.make(0)
    // A store under another root (a user's chroot store): Nix cannot register what is restored
    // there itself (LocalStore.loadDb), so nsh canonicalises it and gives the node's hashes.
    const underRoot = realPathIn(local, "") !== ""
    const entries: Array<Local.ValidityEntry & { readonly narHash: string; readonly narSize: string }> = []
    for (const path of missing) {
      const refs = yield* Remote.references(conn, remote, path)
      const hashes = underRoot ? yield* Remote.narHashAndSize(conn, remote, path) : { narHash: "", narSize: "" }
      const before = yield* Ref.get(total)
      const fetch = Effect.scoped(
        Effect.gen(function*() {
          yield* Ref.set(total, before)
          const proc = yield* Remote.dump(conn, remote, path)
          // A cut connection truncates the NAR: that cut, not --restore's complaint about the
          // truncated input, is the error (the connection reconnects and the NAR is sent again).
          const cut = yield* Ref.make(Option.none<SshError>())
          const nar = Stream.catchAll(proc.stdout, (e) => Stream.execute(Ref.set(cut, Option.some(e))))
          const restored = yield* Effect.either(Local.restore(local, path, counted(nar, total, onBytes)))
          const wasCut = yield* Ref.get(cut)
          if (Option.isSome(wasCut)) return yield* wasCut.value
          if (Either.isLeft(restored)) return yield* restored.left
          const exit = yield* proc.exit
          if (exit.exitCode !== 0) {
            return yield* new StoreCommandError({
              where: conn.host,
              command: "nix-store --dump",
              exitCode: exit.exitCode,
              stderr: path
            })
          }
          if (underRoot) yield* Local.canonicalise(local, path)
        })
      ).pipe(Effect.onError(() => Local.discardPartial(local, path)))
      yield* Effect.retry(fetch, { while: (e) => e._tag === "SshChannelError", times: maxRefetches })
      entries.push({ path, deriver, references: refs, ...hashes })
    }
    yield* underRoot ? Local.loadDb(local, entries) : Local.registerValidity(local, entries)
    const still = yield* Local.invalidPaths(local, missing)
    if (still.length > 0) {
      return yield* new StoreCommandError({
        where: "this machine",
        command: "nix-store --register-validity",
        exitCode: 1,
        stderr: `still invalid: ${still.join(" ")}`
      })
    }
    return { paths: missing.length, bytes: yield* Ref.get(total) } satisfies CopyStats
  })
