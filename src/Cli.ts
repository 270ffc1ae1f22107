/**
 * nsh's command line (everything but hook mode): `nsh --dry-run [--json] DRV…`, `nsh jobs`,
 * `nsh cancel --orphans`, `nsh doctor`, `nsh --help`, `nsh --version`.
 * Loaded lazily by bin.ts so a hook start never pays for @effect/cli.
 */
import { Args, CliConfig, Command, HelpDoc, Options, ValidationError } from "@effect/cli"
import { Array as Arr, Console, Data, Effect, type Layer } from "effect"
import packageJson from "../package.json" with { type: "json" }
import { allPassed, checksJson, renderChecks } from "./cli/doctor/Check.js"
import { doctor as runDoctor } from "./cli/doctor/Doctor.js"
import { dryRun } from "./cli/DryRun.js"
import { ExitCode, ExitCodes } from "./cli/ExitCodes.js"
import { cancelOrphans, showJobs } from "./cli/Jobs.js"
import type { NshConfError } from "./config/ConfigErrors.js"
import { NixLog, Verbosity } from "./dispatch/NixLog.js"
import type { CliLayers } from "./layers/Cli.js"

/** A CLI command failed after telling the user why; the process exits with `code`. */
export class CliExit extends Data.TaggedError("CliExit")<{ readonly code: number }> {}

/** Tells the user why (in Nix's style, on stderr) and ends the command with `code`. */
const failWith = (message: string, code: number) =>
  Effect.zipRight(Effect.flatMap(NixLog, (log) => log.log(Verbosity.error, message)), new CliExit({ code }))

/** Provides a command's layer inside the command, so `--help` works with a broken nsh.conf. */
const withLayer = <A, R, ROut>(program: Effect.Effect<A, CliExit, R>, layer: Layer.Layer<ROut, NshConfError>) =>
  program.pipe(
    Effect.provide(layer),
    Effect.catchTag("NshConfError", (error) => failWith(error.message, ExitCode.failure))
  )

const modes = HelpDoc.blocks([
  HelpDoc.p("nsh, the Nix Scheduler Hook: runs each Nix build as its own Slurm job."),
  HelpDoc.h1("MODES"),
  HelpDoc.descriptionList([
    [
      HelpDoc.getSpan(HelpDoc.p("nsh <verbosity>")),
      HelpDoc.p(
        "How Nix starts the hook (build-hook = /path/to/nsh in nix.conf; Nix passes its verbosity, e.g. `nsh 3`). Not typed by hand."
      )
    ],
    [
      HelpDoc.getSpan(HelpDoc.p("nsh --dry-run [--json] DRV…")),
      HelpDoc.p(
        "What nsh would do with each derivation, touching nothing. DRV is a .drv or a store path Nix knows the deriver of. Example: nsh --dry-run --json $(nix-instantiate '<nixpkgs>' -A hello)"
      )
    ],
    [
      HelpDoc.getSpan(HelpDoc.p("nsh jobs [--all] [--json]")),
      HelpDoc.p("nsh's Slurm jobs, and whether the hook of each is alive. Example: nsh jobs")
    ],
    [
      HelpDoc.getSpan(HelpDoc.p("nsh cancel --orphans")),
      HelpDoc.p("Cancel the jobs whose hook is gone. Example: nsh cancel --orphans")
    ],
    [
      HelpDoc.getSpan(HelpDoc.p("nsh doctor [--job] [--json]")),
      HelpDoc.p(
        "Check nsh.conf, the token, slurmrestd and (with --job, through a tiny real job) SSH, Nix and slurm-state-dir on a node. Example: nsh doctor --job"
      )
    ],
    [HelpDoc.getSpan(HelpDoc.p("nsh COMMAND --help")), HelpDoc.p("Help for one command. Example: nsh doctor --help")],
    [HelpDoc.getSpan(HelpDoc.p("nsh --version")), HelpDoc.p("The version of nsh.")]
  ]),
  HelpDoc.h1("EXIT CODES"),
  HelpDoc.enumeration(
    Arr.map(ExitCodes, ({ code, meaning }) => HelpDoc.p(`${code}  ${meaning}`))
  )
])

const makeCommand = (layers: CliLayers) => {
  const nsh = Command.make(
    "nsh",
    {
      dryRun: Options.boolean("dry-run").pipe(
        Options.withDescription(
          "Show what nsh would do with each DRV (routing, settings and their sources, the Slurm job) without submitting anything."
        )
      ),
      json: Options.boolean("json").pipe(
        Options.withDescription("With --dry-run: print JSON (one document; an array for several DRVs).")
      ),
      drvs: Args.path({ name: "DRV" }).pipe(
        Args.withDescription("A derivation (/nix/store/…drv), or a store path whose deriver Nix recorded."),
        Args.repeated
      )
    },
    ({ drvs, dryRun: isDryRun, json }) => {
      // @effect/cli hands an unknown option on as a DRV.
      const unknown = drvs.find((d) => d.startsWith("-"))
      return unknown !== undefined
        ? failWith(`nsh: unknown option '${unknown}'; see \`nsh --help\``, ExitCode.usage)
        : !isDryRun
        ? failWith(
          drvs.length > 0
            ? `nsh: unknown command '${drvs[0]}'; did you mean \`nsh --dry-run ${drvs.join(" ")}\`? See \`nsh --help\`.`
            : "nsh runs as Nix's build hook (build-hook = /path/to/bin/nsh in nix.conf); see `nsh --help` for its commands.",
          ExitCode.usage
        )
        : drvs.length === 0
        ? failWith(
          "nsh --dry-run: name at least one derivation, e.g. nsh --dry-run /nix/store/…-hello.drv",
          ExitCode.usage
        )
        : withLayer(
          dryRun(drvs, { json }).pipe(Effect.flatMap((code) => code === 0 ? Effect.void : new CliExit({ code }))),
          layers.dryRun
        )
    }
  ).pipe(Command.withDescription(modes))

  const jobs = Command.make(
    "jobs",
    {
      all: Options.boolean("all").pipe(Options.withDescription("Also list finished jobs Slurm still remembers.")),
      json: Options.boolean("json").pipe(Options.withDescription("Print one JSON array instead of a table."))
    },
    ({ all, json }) =>
      withLayer(
        showJobs({ all, json }).pipe(Effect.catchAll((error) => failWith(`nsh: ${error.message}`, ExitCode.failure))),
        layers.slurm
      )
  ).pipe(
    Command.withDescription(
      "List nsh's Slurm jobs: id, state, reason, node, age, derivation, and whether the hook that submitted each is alive. Example: nsh jobs --all"
    )
  )

  const cancel = Command.make(
    "cancel",
    { orphans: Options.boolean("orphans").pipe(Options.withDescription("Cancel the jobs whose hook is gone.")) },
    ({ orphans }) =>
      orphans
        ? withLayer(
          cancelOrphans.pipe(Effect.catchAll((error) => failWith(`nsh: ${error.message}`, ExitCode.failure))),
          layers.slurm
        )
        : failWith("nsh cancel: say what to cancel: --orphans", ExitCode.usage)
  ).pipe(
    Command.withDescription(
      "Cancel nsh's jobs whose hook died (and remove their files and records). Example: nsh cancel --orphans"
    )
  )

  const doctor = Command.make(
    "doctor",
    {
      job: Options.boolean("job").pipe(
        Options.withDescription(
          "Also submit a tiny real job (cancelled afterwards) and check SSH, Nix and slurm-state-dir on its node."
        )
      ),
      json: Options.boolean("json").pipe(Options.withDescription("Print one JSON document instead of text."))
    },
    ({ job, json }) =>
      Effect.scoped(runDoctor(process.env, { job })).pipe(
        Effect.tap((results) =>
          Console.log(json ? JSON.stringify(checksJson(results), null, 2) : renderChecks(results))
        ),
        Effect.flatMap((results) => (allPassed(results) ? Effect.void : new CliExit({ code: ExitCode.failure }))),
        Effect.provide(layers.doctor)
      )
  ).pipe(
    Command.withDescription(
      "Check, in order, everything a build needs: nsh.conf, the token, slurmrestd (versions offered and chosen), and with --job a tiny real job, SSH to its node by name, Nix and slurm-state-dir there. Each check says ✓ or ✗ and the fix; exit 0 only if all pass. Example: nsh doctor --job"
    )
  )

  return nsh.pipe(Command.withSubcommands([jobs, cancel, doctor]))
}

const cliOf = (layers: CliLayers) => Command.run(makeCommand(layers), { name: "nsh", version: packageJson.version })

// Select Graphic Rendition sequences, the only escapes @effect/cli's help and errors contain.
const sgr = /\x1b\[[0-9;]*m/g

const plain = (args: ReadonlyArray<unknown>) => args.map((a) => (typeof a === "string" ? a.replace(sgr, "") : a))

/**
 * Drops colour from everything printed (for a pipe, a file, or NO_COLOR): @effect/cli colours
 * its help and messages unconditionally.
 */
export const withoutColour = <A, E, R>(program: Effect.Effect<A, E, R>) =>
  Effect.flatMap(Effect.console, (console) =>
    Effect.withConsole(program, {
      ...console,
      log: (...args) => console.log(...plain(args)),
      error: (...args) => console.error(...plain(args))
    }))

/** Whether to colour: stdout is a terminal and NO_COLOR (https://no-color.org) is unset or empty. */
export const wantsColour = (isTty: boolean, env: Record<string, string | undefined>): boolean =>
  isTty && (env["NO_COLOR"] ?? "") === ""

/**
 * Runs the CLI on `process.argv`-style arguments with the given layers, in colour or not, and
 * returns the exit code: usage errors (already printed by @effect/cli) give ExitCode.usage.
 */
export const runCli = (layers: CliLayers, argv: ReadonlyArray<string>, options: { readonly colour: boolean }) => {
  const run = cliOf(layers)(argv).pipe(
    Effect.as(ExitCode.ok as number),
    Effect.catchAll((error) => Effect.succeed(ValidationError.isValidationError(error) ? ExitCode.usage : error.code)),
    // The generic "A true or false value." lines and the built-in options only bury nsh's own text.
    Effect.provide(CliConfig.layer({ showTypes: false, showBuiltIns: false }))
  )
  return options.colour ? run : withoutColour(run)
}
