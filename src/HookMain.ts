/**
 * Hook mode (`nsh <verbosity>`): Nix waits for its first answer, so this module imports only what a
 * session needs. Shared by bin.ts and the start-up snapshot (snapshot.ts).
 */
import { runMain } from "@effect/platform-node/NodeRuntime"
import { Cause, Effect, Exit } from "effect"
import { NixLog, Verbosity } from "./dispatch/NixLog.js"
import { runSession } from "./hook/Session.js"
import { hookLayers, hookLog } from "./layers/Hook.js"

/** Exits with the program's code (a number) right away: nothing may linger once Nix's pipes should close. */
export const teardown = (exit: Exit.Exit<unknown, unknown>): void =>
  process.exit(Exit.isSuccess(exit) && typeof exit.value === "number" ? exit.value : 1)

/** Reports a defect to Nix (an interruption stays silent); the program then exits 1. */
export const logDefect = (cause: Cause.Cause<unknown>) =>
  Cause.isInterruptedOnly(cause)
    ? Effect.succeed(1)
    : Effect.flatMap(NixLog, (log) =>
      Effect.as(log.log(Verbosity.error, `nsh: internal error: ${Cause.pretty(cause)}`), 1))

/**
 * Runs a hook session for Nix at the given verbosity, then exits. `replay`: what the front
 * (src/hook/Front.ts) read of stdin before handing over.
 */
export const runHook = (verbosity: number, replay?: Uint8Array) => {
  // runMain interrupts the program on SIGINT and SIGTERM; a hang-up must clean up the same way.
  process.on("SIGHUP", () => process.kill(process.pid, "SIGTERM"))
  const program = runSession({ verbosity, debugLog: process.env["NSH_DEBUG_LOG"] || undefined }).pipe(
    Effect.provide(hookLayers(verbosity, replay)),
    Effect.catchAllCause(logDefect),
    // Outermost, so that even a failure to build the other layers reaches Nix as a message.
    Effect.provide(hookLog(verbosity))
  )
  runMain(program, {
    disableErrorReporting: true,
    disablePrettyLogger: true,
    teardown
  })
}
