/**
 * The composition root: builds the layers and runs them; nothing else runs effects. Nix starts
 * the hook as `nsh <verbosity>`: a single integer argument means hook mode, which must answer
 * Nix's first `try` fast, so the CLI (and @effect/cli) is imported only when needed.
 */
import { runMain } from "@effect/platform-node/NodeRuntime"
import { Cause, Effect, Exit, Layer } from "effect"
import { TryHandlerLive, TryHandlerWithoutConfig } from "./build/TryHandlerLive.js"
import { ConfigLive } from "./config/ConfigLive.js"
import { FallbackLive } from "./hook/Fallback.js"
import { HookIOLive } from "./hook/HookIO.js"
import { NixLog, Verbosity } from "./hook/NixLog.js"
import { NixLogHook, NixLogPlain } from "./hook/NixLogLive.js"
import { runSession } from "./hook/Session.js"

/** Exits with the program's code (a number) right away: nothing may linger once Nix's pipes should close. */
const teardown = (exit: Exit.Exit<unknown, unknown>): void =>
  process.exit(Exit.isSuccess(exit) && typeof exit.value === "number" ? exit.value : 1)

const logDefect = (cause: Cause.Cause<unknown>) =>
  Cause.isInterruptedOnly(cause)
    ? Effect.succeed(1)
    : Effect.flatMap(NixLog, (log) => Effect.as(log.log(Verbosity.error, `nsh: internal error: ${Cause.pretty(cause)}`), 1))

const runHook = (verbosity: number) => {
  // runMain interrupts the program on SIGINT and SIGTERM; a hang-up must clean up the same way.
  process.on("SIGHUP", () => process.kill(process.pid, "SIGTERM"))
  const layers = Layer.mergeAll(
    // An invalid nsh.conf must not stop the session: nsh then declines everything.
    TryHandlerLive.pipe(Layer.provide(ConfigLive), Layer.catchAll(TryHandlerWithoutConfig)),
    FallbackLive(verbosity)
  ).pipe(Layer.provideMerge(HookIOLive))
  const program = runSession({ verbosity, debugLog: process.env["NSH_DEBUG_LOG"] || undefined }).pipe(
    Effect.provide(layers),
    Effect.catchAllCause(logDefect),
    // Outermost, so that even a failure to build the other layers reaches Nix as a message.
    Effect.provide(NixLogHook(verbosity))
  )
  runMain(program, {
    disableErrorReporting: true,
    disablePrettyLogger: true,
    teardown
  })
}

const runCli = async () => {
  const { cli, CliLive, reportFailure } = await import("./Cli.js")
  const program = cli(process.argv).pipe(
    Effect.provide(CliLive),
    Effect.catchAll(reportFailure),
    Effect.as(0),
    Effect.catchAllCause((cause) => {
      const failure = Cause.failureOption(cause)
      return failure._tag === "Some" ? Effect.succeed(failure.value.code) : logDefect(cause)
    }),
    Effect.provide(NixLogPlain())
  )
  runMain(program, { disableErrorReporting: true, teardown })
}

const args = process.argv.slice(2)
if (args.length === 1 && /^\d+$/.test(args[0]!)) runHook(Number(args[0]))
else if (args[0] === "__watchdog") {
  // Loaded on demand: only a watchdog whose hook vanished runs this.
  void import("./watchdog/Main.js").then(({ watchdogMain }) =>
    runMain(watchdogMain, { disableErrorReporting: true, disablePrettyLogger: true, teardown })
  )
}
else void runCli()
