/**
 * Scoped resources whose acquisition waits on the network and so must stay interruptible.
 */
import { Effect, type Scope } from "effect"

/**
 * Like `Effect.acquireRelease`, but a hung acquisition (an SSH handshake, a channel the server
 * never answers) can be interrupted; its own cleanup (the `Effect.async` canceller) runs then.
 */
export const acquireInterruptible = <A, E, R, R2>(
  acquire: Effect.Effect<A, E, R>,
  release: (resource: A) => Effect.Effect<void, never, R2>
): Effect.Effect<A, E, R | R2 | Scope.Scope> =>
  Effect.uninterruptibleMask((restore) =>
    Effect.tap(restore(acquire), (resource) => Effect.addFinalizer(() => release(resource)))
  )
