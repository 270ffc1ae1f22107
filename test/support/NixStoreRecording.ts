/**
 * A NixStore double: knows some derivations, records every copy and collection it is asked for
 * (and on which node), and answers each with what the test scripts (default: success, one path
 * copied; `onBytes` is called once so the copy's progress shows).
 */
import { Context, Effect, Layer, Option, Ref } from "effect"
import type { SshError } from "../../src/ssh/SshErrors.js"
import type { SshConnection } from "../../src/ssh/SshSession.js"
import type { Derivation } from "../../src/store/Derivation.js"
import { type CopyStats, NixStore } from "../../src/store/NixStore.js"
import { DerivationError, type StoreError } from "../../src/store/StoreErrors.js"

/** One thing the code under test asked of the store. */
export type StoreCall =
  | {
    readonly _tag: "CopyToNode"
    readonly host: string
    readonly paths: ReadonlyArray<string>
    readonly localStore: string
    readonly substitute: boolean
  }
  | {
    readonly _tag: "CopyFromNode"
    readonly host: string
    readonly outputs: ReadonlyArray<string>
    readonly localStore: string
    readonly deriver: string
  }
  | { readonly _tag: "CollectGarbage"; readonly host: string }

type Answer<A> = (conn: SshConnection) => Effect.Effect<A, StoreError | SshError>

export interface NixStoreScript {
  readonly derivations?: ReadonlyArray<Derivation>
  /** Output path → the .drv the store records as its deriver. */
  readonly derivers?: Readonly<Record<string, string>>
  readonly copyToNode?: Answer<CopyStats>
  readonly copyFromNode?: Answer<CopyStats>
  readonly collectGarbage?: Answer<void>
}

/** The calls recorded by NixStoreRecording, oldest first. */
export class StoreCalls extends Context.Tag("test/StoreCalls")<StoreCalls, Ref.Ref<ReadonlyArray<StoreCall>>>() {}

const copied: Answer<CopyStats> = () => Effect.succeed({ paths: 1, bytes: 1024 })

/** The double and its StoreCalls. */
export const NixStoreRecording = (script: NixStoreScript = {}): Layer.Layer<NixStore | StoreCalls> =>
  Layer.effectContext(
    Effect.gen(function*() {
      const calls = yield* Ref.make<ReadonlyArray<StoreCall>>([])
      const record = (call: StoreCall) => Ref.update(calls, (all) => [...all, call])
      const store = NixStore.of({
        readDerivation: (path) => {
          const found = script.derivations?.find((d) => d.drvPath === path)
          return found
            ? Effect.succeed(found)
            : Effect.fail(new DerivationError({ drvPath: path, reason: "no such file" }))
        },
        deriverOf: (path) => Effect.succeed(Option.fromNullable(script.derivers?.[path])),
        copyToNode: (conn, paths, options) =>
          record({
            _tag: "CopyToNode",
            host: conn.host,
            paths,
            localStore: options.localStore,
            substitute: options.substitute
          }).pipe(
            Effect.zipRight(options.onPlan(paths)),
            Effect.zipRight(options.onBytes(1024)),
            Effect.zipRight((script.copyToNode ?? copied)(conn))
          ),
        copyFromNode: (conn, outputs, options) =>
          record({
            _tag: "CopyFromNode",
            host: conn.host,
            outputs,
            localStore: options.localStore,
            deriver: options.deriver
          }).pipe(
            Effect.zipRight(options.onBytes(1024)),
            Effect.zipRight((script.copyFromNode ?? copied)(conn))
          ),
        collectGarbage: (conn) =>
          record({ _tag: "CollectGarbage", host: conn.host }).pipe(
            Effect.zipRight((script.collectGarbage ?? (() => Effect.void))(conn))
          )
      })
      return Context.make(NixStore, store).pipe(Context.add(StoreCalls, calls))
    })
  )

/** A NixStore that only knows derivations (for code that only reads them). */
export const NixStoreWith = (...derivations: ReadonlyArray<Derivation>): Layer.Layer<NixStore> =>
  NixStoreKnowing({ derivations })

/** A NixStore that only knows derivations and the derivers of some outputs. */
export const NixStoreKnowing = (script: Pick<NixStoreScript, "derivations" | "derivers">): Layer.Layer<NixStore> =>
  Layer.project(NixStoreRecording(script), NixStore, NixStore, (store) => store)
