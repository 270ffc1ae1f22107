/**
 * NixStore: the Nix stores nsh works with — the local one (where Nix wants the outputs) and the
 * node's (reached over an SshConnection). Local operations run nix-store with the parent's
 * `store` setting; remote ones honour remote-store, remote-nix-bin-dir and store-dir.
 */
import { Context, type Effect } from "effect"
import type { Derivation } from "./Derivation.js"
import type { StoreError } from "./StoreErrors.js"

export interface NixStoreService {
  /** Reads and parses a .drv from the local store (or any path, for --dry-run). */
  readonly readDerivation: (drvPath: string) => Effect.Effect<Derivation, StoreError>
}

export class NixStore extends Context.Tag("nsh/NixStore")<NixStore, NixStoreService>() {}
