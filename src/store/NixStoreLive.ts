/**
 * The NixStore service: derivations are read straight from their files (a `.drv` is plain text,
 * so asking never needs a nix-store process or the daemon); copies and garbage collection run
 * nix-store here and on the node.
 */
import { CommandExecutor, FileSystem } from "@effect/platform"
import { Effect, Layer } from "effect"
import { Config } from "../config/Config.js"
import { describeFsError } from "../config/ConfigErrors.js"
import { copyClosureToNode, copyOutputsFromNode } from "./Copy.js"
import { parseDerivation } from "./DrvParser.js"
import * as Local from "./LocalStore.js"
import { NixStore } from "./NixStore.js"
import * as Remote from "./RemoteStore.js"
import { realPathIn, type StoreTarget } from "./StoreCommands.js"
import { DerivationError } from "./StoreErrors.js"

/**
 * Reads and parses one `.drv` file, where the local store `localStore` keeps it (a user's chroot
 * store keeps /nix/store/x.drv under its root); a missing or unreadable file is a DerivationError.
 */
const readDerivationWith = (fs: FileSystem.FileSystem) => (drvPath: string, localStore = "auto") =>
  drvPath.endsWith(".drv")
    ? fs.readFileString(realPathIn(localTarget(localStore), drvPath)).pipe(
      Effect.mapError(
        (e) =>
          new DerivationError({
            drvPath,
            reason: e._tag === "SystemError" && e.reason === "NotFound"
              ? "no such file (instantiate it first, e.g. with nix-instantiate)"
              : `the file cannot be read (${describeFsError(e)})`
          })
      ),
      Effect.flatMap((text) => parseDerivation(drvPath, text))
    )
    : Effect.fail(new DerivationError({ drvPath, reason: "it is not a derivation (the path must end in .drv)" }))

/** The parent's store, as every local nix-store call opens it. */
const localTarget = (store: string): StoreTarget => ({ store, binDir: "" })

/** NixStore through nix-store on this machine and on the nodes, with nsh.conf's remote store settings. */
export const NixStoreLive: Layer.Layer<
  NixStore,
  never,
  Config | FileSystem.FileSystem | CommandExecutor.CommandExecutor
> = Layer.effect(
  NixStore,
  Effect.gen(function*() {
    const { settings } = yield* Config
    const fs = yield* FileSystem.FileSystem
    const executor = yield* CommandExecutor.CommandExecutor
    const remote: StoreTarget = { store: settings.remoteStore, binDir: settings.remoteNixBinDir }
    const local = <A, E>(effect: Effect.Effect<A, E, FileSystem.FileSystem | CommandExecutor.CommandExecutor>) =>
      effect.pipe(
        Effect.provideService(FileSystem.FileSystem, fs),
        Effect.provideService(CommandExecutor.CommandExecutor, executor)
      )
    return NixStore.of({
      readDerivation: readDerivationWith(fs),
      deriverOf: (path) => local(Local.deriver(localTarget("auto"), path)),
      copyToNode: (conn, paths, { localStore, ...options }) =>
        local(copyClosureToNode(conn, localTarget(localStore), remote, paths, options)),
      copyFromNode: (conn, outputs, { deriver, localStore, onBytes }) =>
        local(copyOutputsFromNode(conn, remote, localTarget(localStore), outputs, deriver, onBytes)),
      collectGarbage: (conn) => Remote.collectGarbage(conn, remote)
    })
  })
)
