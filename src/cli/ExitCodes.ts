/**
 * The exit codes of nsh's commands, written once for the code and for `nsh --help`. Hook mode
 * exits with Nix's own codes (0, 1, 100 failed build, 101 timeout), which Nix reads.
 */
import type { NonEmptyReadonlyArray } from "effect/Array"

/** Exit codes of the commands (not of hook mode). */
export const ExitCode = {
  ok: 0,
  /** Something to fix outside the command line: nsh.conf, the token, slurmrestd, a failed check. */
  failure: 1,
  /** The command line itself: an unknown option or command, a path that is not a derivation. */
  usage: 2
} as const

/** What `nsh --help` lists. */
export const ExitCodes: NonEmptyReadonlyArray<{ readonly code: number; readonly meaning: string }> = [
  { code: ExitCode.ok, meaning: "success (nsh doctor: every check passed)" },
  {
    code: ExitCode.failure,
    meaning: "a problem to fix: nsh.conf, the token, slurmrestd, a bad extraSlurmParams, a failed doctor check"
  },
  {
    code: ExitCode.usage,
    meaning: "a usage error: an unknown option or command, a path that is neither a derivation nor built by one"
  },
  { code: 100, meaning: "hook mode (nsh <verbosity>): the build failed, as Nix's own exit code" },
  { code: 101, meaning: "hook mode: the build timed out" }
]
