/**
 * The NixStore service on this machine: derivations are read straight from their files (a
 * `.drv` is plain text), so asking never needs a nix-store process or the daemon.
 */
import { FileSystem } from "@effect/platform"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { Effect, Layer } from "effect"
import { describeFsError } from "../config/ConfigErrors.js"
import { parseDerivation } from "./DrvParser.js"
import { NixStore } from "./NixStore.js"
import { DerivationError } from "./StoreErrors.js"

/** Reads and parses one `.drv` file; a missing or unreadable file is a DerivationError. */
const readDerivationWith = (fs: FileSystem.FileSystem) => (drvPath: string) =>
  drvPath.endsWith(".drv")
    ? fs.readFileString(drvPath).pipe(
        Effect.mapError(
          (e) =>
            new DerivationError({
              drvPath,
              reason:
                e._tag === "SystemError" && e.reason === "NotFound"
                  ? "no such file (instantiate it first, e.g. with nix-instantiate)"
                  : `the file cannot be read (${describeFsError(e)})`
            })
        ),
        Effect.flatMap((text) => parseDerivation(drvPath, text))
      )
    : Effect.fail(new DerivationError({ drvPath, reason: "it is not a derivation (the path must end in .drv)" }))

/** NixStore on the local file system. */
export const NixStoreLive: Layer.Layer<NixStore> = Layer.effect(
  NixStore,
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    return NixStore.of({ readDerivation: readDerivationWith(fs) })
  })
).pipe(Layer.provide(NodeFileSystem.layer))
