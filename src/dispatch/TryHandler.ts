/**
 * The seam between Nix's hook protocol (src/hook/) and nsh's build logic: given one request
 * from Nix, decide and, when accepting, hand back the build to run. Nothing here knows about
 * the wire format, so another front end (e.g. a future "builder store") can reuse it.
 */
import { Context, type Effect } from "effect"
import type { BuildOptions } from "./BuildOptions.js"

export interface BuildRequest {
  /** Nix has a free local build slot right now. */
  readonly amWilling: boolean
  readonly neededSystem: string
  readonly drvPath: string
  readonly requiredFeatures: ReadonlyArray<string>
}

/** Exit code for Nix: 0 success, 100 build failure, 101 timeout, 1 anything else. */
export type BuildExit = 0 | 1 | 100 | 101

export interface AcceptedBuild {
  /** Shown by Nix as `building '<drv>' on '<machine>'`. */
  readonly machine: string
  /** Runs the build once Nix has sent the input paths and wanted outputs. */
  readonly run: (inputs: ReadonlyArray<string>, wantedOutputs: ReadonlyArray<string>) => Effect.Effect<BuildExit>
}

export type TryAnswer =
  | { readonly _tag: "Accept"; readonly build: AcceptedBuild }
  | { readonly _tag: "Decline"; readonly reason: string }
  | { readonly _tag: "Postpone"; readonly reason: string }
  /** Only when nsh cannot work at all this session (e.g. an invalid nsh.conf). */
  | { readonly _tag: "DeclinePermanently"; readonly reason: string }

export interface TryHandlerService {
  readonly answer: (request: BuildRequest, options: BuildOptions) => Effect.Effect<TryAnswer>
}

export class TryHandler extends Context.Tag("nsh/TryHandler")<TryHandler, TryHandlerService>() {}
