/**
 * nsh's command line (everything but hook mode): `nsh --dry-run <drv> [--json]`, `nsh --version`.
 * Loaded lazily by bin.ts so a hook start never pays for @effect/cli.
 */
import { Command, Options, ValidationError } from "@effect/cli"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { Data, Effect, Layer, Option } from "effect"
import packageJson from "../package.json" with { type: "json" }
import { dryRun, dryRunExitCode } from "./cli/DryRun.js"
import { ConfigLive } from "./config/ConfigLive.js"
import { NixLog, Verbosity } from "./hook/NixLog.js"
import { NixStoreLive } from "./store/NixStoreLive.js"

/** A CLI command failed after telling the user why; the process exits with `code`. */
export class CliExit extends Data.TaggedError("CliExit")<{ readonly code: number }> {}

/** Tells the user why (in Nix's style, on stderr) and ends the command with `code`. */
const failWith = (message: string, code: number) =>
  Effect.zipRight(Effect.flatMap(NixLog, (log) => log.log(Verbosity.error, message)), new CliExit({ code }))

const usage = "nsh runs as Nix's build hook (build-hook = /path/to/bin/nsh in nix.conf); see `nsh --help` for its commands."

const nsh = Command.make(
  "nsh",
  {
    dryRun: Options.text("dry-run").pipe(
      Options.withDescription("Show what nsh would do with this .drv (routing, Slurm job, settings) without submitting it."),
      Options.optional
    ),
    json: Options.boolean("json").pipe(Options.withDescription("With --dry-run: print JSON instead of text."))
  },
  ({ dryRun: drvPath, json }) =>
    Option.match(drvPath, {
      onNone: () => failWith(usage, 1),
      onSome: (path) =>
        dryRun(path, { json }).pipe(
          Effect.catchAll((error) => failWith(error.message, dryRunExitCode(error))),
          // Provided here, not to the whole CLI: `nsh --help` must work with a broken nsh.conf.
          Effect.provide(Layer.merge(ConfigLive, NixStoreLive)),
          Effect.catchTag("NshConfError", (error) => failWith(error.message, 1))
        )
    })
).pipe(Command.withDescription("nsh, the Nix Scheduler Hook: runs each Nix build as its own Slurm job."))

/** Runs the CLI on `process.argv`-style arguments. */
export const cli = Command.run(nsh, { name: "nsh", version: packageJson.version })

/** What @effect/cli itself needs. */
export const CliLive = NodeContext.layer

/** Usage errors (already printed by @effect/cli) end the process with exit code 1. */
export const reportFailure = (error: CliExit | ValidationError.ValidationError): Effect.Effect<never, CliExit> =>
  Effect.fail(ValidationError.isValidationError(error) ? new CliExit({ code: 1 }) : error)
