/**
 * An SSH connection to the job's node that survives drops: when a channel fails, it reconnects
 * (bounded, with backoff) and runs the command again. Commands nsh runs are safe to repeat
 * (queries, `touch`, `rm -f`, `nix-store --import` of a re-run export); a stream that broke
 * midway (the log's `tail`) is resumed by its caller from the offset it had reached.
 */
import { Effect, Ref, Schedule, Scope } from "effect"
import type { SshError } from "./SshErrors.js"
import type { RemoteProcess, SshConnection } from "./SshSession.js"

/** How often one operation may reconnect before its error is final. */
const maxReconnects = 3

const reconnectSchedule = Schedule.exponential("500 millis", 2).pipe(Schedule.intersect(Schedule.recurs(4)))

/**
 * Wraps `connect` (opening connections in the caller's scope) as one SshConnection that
 * reconnects on channel failures. `onReconnect` is told why, for the user's log.
 */
export const resilientConnection = (
  connect: Effect.Effect<SshConnection, SshError, Scope.Scope>,
  onReconnect: (reason: string) => Effect.Effect<void>
): Effect.Effect<SshConnection, SshError, Scope.Scope> =>
  Effect.gen(function*() {
    const scope = yield* Effect.scope
    const first = yield* connect
    const current = yield* Ref.make(first)
    const lock = yield* Effect.makeSemaphore(1)

    /** Replaces `failed` with a fresh connection, once, however many fibers saw it fail. */
    const replace = (failed: SshConnection, reason: string) =>
      lock.withPermits(1)(
        Effect.gen(function*() {
          const now = yield* Ref.get(current)
          if (now !== failed) return now
          yield* onReconnect(reason)
          // The new connection belongs to the build's scope, like the first one.
          const fresh = yield* connect.pipe(Effect.retry(reconnectSchedule), Scope.extend(scope))
          yield* Ref.set(current, fresh)
          return fresh
        })
      )

    const withRetry = <A>(op: (conn: SshConnection) => Effect.Effect<A, SshError, Scope.Scope>) => {
      const attempt = (left: number): Effect.Effect<A, SshError, Scope.Scope> =>
        Effect.flatMap(Ref.get(current), (conn) =>
          op(conn).pipe(
            Effect.catchTag("SshChannelError", (error) =>
              left <= 0 ? Effect.fail(error) : Effect.flatMap(replace(conn, error.reason), () => attempt(left - 1)))
          ))
      return attempt(maxReconnects)
    }

    return {
      host: first.host,
      exec: (command, stdin) => Effect.scoped(withRetry((conn) => conn.exec(command, stdin))),
      spawn: (command, stdin): Effect.Effect<RemoteProcess, SshError, Scope.Scope> =>
        withRetry((conn) => conn.spawn(command, stdin))
    } satisfies SshConnection
  })
