/**
 * The composition root: builds the layers and runs them; nothing else runs effects. Nix starts
 * the hook as `nsh <verbosity>`: a single integer argument means hook mode, which must answer
 * Nix's first `try` fast, so the CLI (and @effect/cli) is imported only when needed.
 */
import { runMain } from "@effect/platform-node/NodeRuntime"
import { Effect } from "effect"
import { NixLogPlain } from "./hook/NixLogLive.js"
import { logDefect, runHook, teardown } from "./HookMain.js"

const startCli = async () => {
  const [{ runCli, wantsColour }, { CliLayersLive, CliLive }] = await Promise.all([
    import("./Cli.js"),
    import("./layers/Cli.js")
  ])
  const program = runCli(CliLayersLive, process.argv, {
    colour: wantsColour(process.stdout.isTTY === true, process.env)
  })
    .pipe(
      Effect.provide(CliLive),
      Effect.catchAllCause(logDefect),
      Effect.provide(NixLogPlain())
    )
  // Without disablePrettyLogger runMain adds its pretty logger, which NixLogPlain's replacement of
  // the default logger would not remove: every Effect.log would also land on stdout (`--json`).
  runMain(program, { disableErrorReporting: true, disablePrettyLogger: true, teardown })
}

const args = process.argv.slice(2)
if (args.length === 1 && /^\d+$/.test(args[0]!)) runHook(Number(args[0]))
else if (args[0] === "__watchdog") {
  // Loaded on demand: only a watchdog whose hook vanished runs this.
  void import("./layers/Watchdog.js").then(({ watchdogProgram }) =>
    runMain(watchdogProgram, { disableErrorReporting: true, disablePrettyLogger: true, teardown })
  )
} else void startCli()
