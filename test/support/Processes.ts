/**
 * Waiting on real processes in unit tests: bounded, so a regression fails the test instead of
 * hanging it.
 */
import { Effect } from "effect"
import { readdirSync, readFileSync } from "node:fs"

/** Bounded wait for a real process to reach a state. */
export const eventually = <A>(check: Effect.Effect<A | undefined>, what: string) =>
  Effect.sleep("10 millis").pipe(
    Effect.zipRight(check),
    Effect.repeat({ until: (a): a is A => a !== undefined }),
    Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new Error(`timed out waiting for ${what}`) })
  )

/** The command line of a live (not zombie) process; undefined once it has ended. */
const liveCommandLine = (pid: number | string): string | undefined => {
  try {
    return /^\d+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, "utf8"))
      ? undefined
      : readFileSync(`/proc/${pid}/cmdline`, "utf8")
  } catch {
    return undefined // it ended while we looked
  }
}

/** Waits until no process mentioning `dir` is left, nor `blockedPid` (the scope under test killed them all). */
export const noProcessesLeft = (dir: string, blockedPid?: number) =>
  eventually(
    Effect.sync(() => {
      const left = readdirSync("/proc").filter((pid) => /^\d+$/.test(pid) && liveCommandLine(pid)?.includes(dir))
      const blocked = blockedPid !== undefined && liveCommandLine(blockedPid) !== undefined
      return left.length === 0 && !blocked ? true : undefined
    }),
    "the processes to end"
  )
