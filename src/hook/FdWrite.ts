/**
 * Synchronous, complete writes to a file descriptor. Nix reads the hook's stderr line by line
 * while it waits for a reply, so every line (replies, `@nix` JSON, relayed lines) goes out in
 * one blocking write and can never be interleaved with another.
 */
import { writeSync } from "node:fs"

/** Sleeps `ms` without an event loop (the write must finish before anything else happens). */
const sleepSync = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)

/** Writes all of `data` to `fd`; gives up silently when the reader is gone (EPIPE, EBADF). */
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
