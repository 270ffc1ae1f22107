/**
 * The hook's side of the job lease: while the hook lives it touches the lease file on the node,
 * so the job script knows someone still waits for it. If the hook dies (even by SIGKILL, even
 * with its watchdog), the touches stop and the job gives up within job-lease-timeout.
 */
import { Duration, Effect, Schedule } from "effect"
import type { SshConnection } from "../ssh/SshSession.js"
import { shellCommand } from "../util/ShellQuote.js"

/** Renews the lease now and then every timeout/4 s; run it in a fiber of the build's scope. */
export const renewLease = (conn: SshConnection, leaseFile: string, leaseTimeoutSeconds: number) => {
  const dir = leaseFile.replace(/\/[^/]*$/, "") || "/"
  // The hook may get here before the job script created the state dir.
  const touch = conn.exec(`${shellCommand(["mkdir", "-p", dir])} && ${shellCommand(["touch", leaseFile])}`).pipe(
    // A missed renewal is not fatal: the next one follows, and the job allows for several.
    Effect.ignore
  )
  const every = Duration.seconds(Math.max(1, Math.floor(leaseTimeoutSeconds / 4)))
  return Effect.repeat(touch, Schedule.spaced(every)).pipe(Effect.asVoid)
}
