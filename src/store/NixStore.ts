/**
 * NixStore: what a build needs of the Nix stores — the local one (where Nix wants the outputs) and
 * the job's node's (reached over an SshConnection). Local operations run nix-store against the
 * store the parent Nix uses (the build's `store` option); remote ones honour remote-store,
 * remote-nix-bin-dir and store-dir from nsh.conf.
 */
import { Context, type Effect, type Option } from "effect"
import type { SshError } from "../ssh/SshErrors.js"
import type { SshConnection } from "../ssh/SshSession.js"
import type { Derivation } from "./Derivation.js"
import type { StoreError } from "./StoreErrors.js"

export interface CopyStats {
  readonly paths: number
  readonly bytes: number
}

/** Called as bytes flow, with the running total. */
export type OnBytes = (bytes: number) => Effect.Effect<void>

export interface CopyToNodeOptions {
  /** The parent Nix's store (`auto`, or e.g. a chroot store). */
  readonly localStore: string
  /** builders-use-substitutes: the node first fetches what it can from its own caches. */
  readonly substitute: boolean
  /** Told which paths will be sent, dependencies first, before any byte flows. */
  readonly onPlan: (missing: ReadonlyArray<string>) => Effect.Effect<void>
  readonly onBytes: OnBytes
}

export interface CopyFromNodeOptions {
  readonly localStore: string
  /** The derivation the outputs are registered with. */
  readonly deriver: string
  readonly onBytes: OnBytes
}

export interface NixStoreService {
  /** Reads and parses a .drv from the local store `localStore` (default `auto`; or any path, for --dry-run). */
  readonly readDerivation: (drvPath: string, localStore?: string) => Effect.Effect<Derivation, StoreError>
  /** The `.drv` a store path was built from, where the local store knows it (`--dry-run` of an output). */
  readonly deriverOf: (path: string) => Effect.Effect<Option.Option<string>, StoreError>
  /** Makes the closure of `paths` valid in the node's store, sending only what it lacks. */
  readonly copyToNode: (
    conn: SshConnection,
    paths: ReadonlyArray<string>,
    options: CopyToNodeOptions
  ) => Effect.Effect<CopyStats, StoreError | SshError>
  /** Brings outputs built on the node into the local store; a partly copied path is removed again. */
  readonly copyFromNode: (
    conn: SshConnection,
    outputs: ReadonlyArray<string>,
    options: CopyFromNodeOptions
  ) => Effect.Effect<CopyStats, StoreError | SshError>
  /** Garbage-collects the node's store (collect-garbage = true). */
  readonly collectGarbage: (conn: SshConnection) => Effect.Effect<void, StoreError | SshError>
}

export class NixStore extends Context.Tag("nsh/NixStore")<NixStore, NixStoreService>() {}
