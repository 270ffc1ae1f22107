/**
 * A Clock whose time runs faster than real time, for tests that involve real processes (so the
 * TestClock cannot drive them) and code with multi-second timeouts (grace periods, silence).
 */
import { Clock, Duration, Effect } from "effect"

/** Real time sped up `factor` times: sleeps are `factor` times shorter, the time moves that much faster. */
export const fastClock = (factor: number): Clock.Clock => {
  const real = Clock.make()
  const origin = real.unsafeCurrentTimeMillis()
  const now = () => origin + (real.unsafeCurrentTimeMillis() - origin) * factor
  return {
    [Clock.ClockTypeId]: Clock.ClockTypeId,
    unsafeCurrentTimeMillis: now,
    currentTimeMillis: Effect.sync(now),
    unsafeCurrentTimeNanos: () => BigInt(Math.round(now() * 1e6)),
    currentTimeNanos: Effect.sync(() => BigInt(Math.round(now() * 1e6))),
    sleep: (duration) => real.sleep(Duration.millis(Duration.toMillis(duration) / factor))
  }
}
