/**
 * nsh's command line (everything but hook mode): `nsh --dry-run <drv> [--json]`, `nsh jobs`,
 * `nsh cancel --orphans`, `nsh --version`.
 * Loaded lazily by bin.ts so a hook start never pays for @effect/cli.
 */
import { Command, Options, ValidationError } from "@effect/cli"
import type { FileSystem } from "@effect/platform"
import { Data, Effect, Option } from "effect"
import packageJson from "../package.json" with { type: "json" }
import { dryRun, dryRunExitCode } from "./cli/DryRun.js"
import { cancelOrphans, showJobs } from "./cli/Jobs.js"
import type { Config } from "./config/Config.js"
import { NixLog, Verbosity } from "./dispatch/NixLog.js"
import { DryRunLayer, SlurmCommandsLayer } from "./layers/Cli.js"
import type { Journal } from "./safety/Journal.js"
import type { SlurmApi } from "./slurm/SlurmApi.js"

/** A CLI command failed after telling the user why; the process exits with `code`. */
export class CliExit extends Data.TaggedError("CliExit")<{ readonly code: number }> {}

/** Tells the user why (in Nix's style, on stderr) and ends the command with `code`. */
const failWith = (message: string, code: number) =>
  Effect.zipRight(Effect.flatMap(NixLog, (log) => log.log(Verbosity.error, message)), new CliExit({ code }))

const usage =
  "nsh runs as Nix's build hook (build-hook = /path/to/bin/nsh in nix.conf); see `nsh --help` for its commands."

const nsh = Command.make(
  "nsh",
  {
    dryRun: Options.text("dry-run").pipe(
      Options.withDescription(
        "Show what nsh would do with this .drv (routing, Slurm job, settings) without submitting it."
      ),
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
          Effect.provide(DryRunLayer),
          Effect.catchTag("NshConfError", (error) => failWith(error.message, 1))
        )
    })
).pipe(Command.withDescription("nsh, the Nix Scheduler Hook: runs each Nix build as its own Slurm job."))

/** Runs a command that talks to slurmrestd and reads the journal, reporting failures Nix-style. */
const withSlurm = <E extends { readonly message: string }>(
  program: Effect.Effect<void, E, SlurmApi | Journal | FileSystem.FileSystem | Config>
) =>
  program.pipe(
    Effect.catchAll((error) => failWith(`nsh: ${error.message}`, 1)),
    Effect.provide(SlurmCommandsLayer),
    Effect.catchTag("NshConfError", (error) => failWith(error.message, 1))
  )

const jobs = Command.make(
  "jobs",
  { all: Options.boolean("all").pipe(Options.withDescription("Also list finished jobs Slurm still remembers.")) },
  ({ all }) => withSlurm(showJobs(all))
).pipe(
  Command.withDescription(
    "List nsh's Slurm jobs: state, node, derivation, and whether the hook that submitted each is alive."
  )
)

const cancel = Command.make(
  "cancel",
  { orphans: Options.boolean("orphans").pipe(Options.withDescription("Cancel the jobs whose hook is gone.")) },
  ({ orphans }) => (orphans ? withSlurm(cancelOrphans) : failWith("nsh cancel: say what to cancel: --orphans", 1))
).pipe(Command.withDescription("Cancel nsh's jobs whose hook died (and remove their files and records)."))

const nshWithCommands = nsh.pipe(Command.withSubcommands([jobs, cancel]))

/** Runs the CLI on `process.argv`-style arguments. */
export const cli = Command.run(nshWithCommands, { name: "nsh", version: packageJson.version })

/** Usage errors (already printed by @effect/cli) end the process with exit code 1. */
export const reportFailure = (error: CliExit | ValidationError.ValidationError): Effect.Effect<never, CliExit> =>
  Effect.fail(ValidationError.isValidationError(error) ? new CliExit({ code: 1 }) : error)
