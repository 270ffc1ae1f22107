/**
 * Writes to Nix's pipes (the hook's stderr and fd 4) that never block the event loop. Nix reads
 * them on its one thread, which stops reading while it waits for another hook's answer or while
 * nix-build is stopped (ctrl-z); a blocking write into a full pipe would then freeze nsh: no
 * polling, no lease renewal, and the job would give up on a healthy build.
 *
 * Each pipe gets a non-blocking open file description of its own (through /proc/self/fd), so the
 * descriptions Nix and nsh's children share stay blocking. What the pipe cannot take yet waits in
 * order in memory, at most `pendingLimit` bytes per pipe, and is written as Nix reads; what is
 * still waiting when the process exits is written out then, blocking (the build is over).
 */
import { Effect } from "effect"
import { constants, fstatSync, openSync, writeSync } from "node:fs"

/** Sleeps `ms` without an event loop (the write must finish before anything else happens). */
const sleepSync = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)

/** Writes all of `data` to `fd`, blocking; gives up silently when the reader is gone (EPIPE, EBADF). */
export const writeAllSync = (fd: number, data: string | Uint8Array): void => {
  const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : data
  let offset = 0
  while (offset < bytes.length) {
    try {
      offset += writeSync(fd, bytes, offset, bytes.length - offset)
    } catch (e) {
      // The pipe may be non-blocking (shared with a process that set O_NONBLOCK): wait for room.
      if ((e as NodeJS.ErrnoException).code !== "EAGAIN") return
      sleepSync(1)
    }
  }
}

/**
 * How many bytes may wait for Nix per pipe. With `max-build-log-size` set, nsh never forwards
 * more than that, so the build log's wait is bounded by Nix's own limit too.
 */
export const pendingLimit = 8 * 1024 * 1024

/** A pipe to Nix that is written without blocking. */
export interface PipeWriter {
  /** Queues all of `data` behind what waits (written at once if the pipe has room); false, and nothing queued, when it would pass `pendingLimit`. */
  readonly offer: (data: Uint8Array) => boolean
  /** Completes after the next progress of the pipe (bytes taken by Nix, or Nix gone). */
  readonly progressed: Effect.Effect<void>
  /** Bytes waiting for Nix to read them. */
  readonly pending: () => number
}

/** Opens a non-blocking description of `fd` when it is a pipe; undefined otherwise (a tty or a file never stalls for long). */
const openNonBlocking = (fd: number): number | undefined => {
  try {
    if (!fstatSync(fd).isFIFO()) return undefined
    // A new description of the same pipe: O_NONBLOCK on it does not reach Nix's or a child's.
    return openSync(`/proc/self/fd/${fd}`, constants.O_WRONLY | constants.O_NONBLOCK)
  } catch {
    return undefined
  }
}

const errno = (e: unknown) => (e as NodeJS.ErrnoException).code

const makeWriter = (fd: number): PipeWriter => {
  const target = openNonBlocking(fd)
  // Not a pipe (a manual run on a terminal): blocking writes, as a terminal expects.
  if (target === undefined) {
    return {
      offer: (data) => (writeAllSync(fd, data), true),
      progressed: Effect.void,
      pending: () => 0
    }
  }
  const queue: Array<Uint8Array> = []
  let queued = 0
  let gone = false
  let timer: ReturnType<typeof setTimeout> | undefined
  let delay = 1
  const waiters = new Set<() => void>()
  const wake = () => {
    for (const waiter of waiters) waiter()
    waiters.clear()
  }

  /** Writes from the queue until the pipe is full; returns whether anything was written. */
  const drain = (): boolean => {
    let wrote = false
    while (queue.length > 0 && !gone) {
      const head = queue[0]!
      let n: number
      try {
        n = writeSync(target, head)
      } catch (e) {
        if (errno(e) === "EAGAIN") break
        // Nix is gone (EPIPE): nothing will read what waits.
        gone = true
        break
      }
      wrote = true
      queued -= n
      if (n === head.length) queue.shift()
      else queue[0] = head.subarray(n)
    }
    if (gone) {
      queue.length = 0
      queued = 0
    }
    return wrote || gone
  }

  // No readiness events for a raw fd without a libuv handle: poll, backing off to 50 ms while Nix does not read.
  const schedule = () => {
    if (timer !== undefined || queue.length === 0) return
    timer = setTimeout(() => {
      timer = undefined
      const moved = drain()
      delay = moved ? 1 : Math.min(delay * 2, 50)
      if (moved) wake()
      schedule()
    }, delay)
    // The exit handler below writes what is left; the poll must not keep the process alive.
    timer.unref()
  }

  process.once("exit", () => {
    if (timer !== undefined) clearTimeout(timer)
    for (const chunk of queue) writeAllSync(target, chunk)
  })

  return {
    offer: (data) => {
      if (gone) return true
      if (queued > 0 && queued + data.length > pendingLimit) return false
      queue.push(data)
      queued += data.length
      // In order: only an empty queue may be written to at once.
      if (queue.length === 1) drain()
      schedule()
      return true
    },
    progressed: Effect.async<void>((resume) => {
      if (queue.length === 0) return resume(Effect.void)
      const waiter = () => resume(Effect.void)
      waiters.add(waiter)
      return Effect.sync(() => waiters.delete(waiter))
    }),
    pending: () => queued
  }
}

const writers = new Map<number, PipeWriter>()

/** The process's one writer to `fd` (fds are per process, so every user of one shares its queue and order). */
export const pipeWriter = (fd: number): PipeWriter => {
  let writer = writers.get(fd)
  if (writer === undefined) {
    writer = makeWriter(fd)
    writers.set(fd, writer)
  }
  return writer
}

/** Writes all of `data` to `writer`, waiting (without blocking) while `pendingLimit` bytes wait for Nix. */
export const send = (writer: PipeWriter, data: Uint8Array): Effect.Effect<void> =>
  Effect.suspend(() => writer.offer(data) ? Effect.void : Effect.zipRight(writer.progressed, send(writer, data)))
