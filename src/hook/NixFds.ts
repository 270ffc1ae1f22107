/**
 * Finds the build-log pipe Nix gives a hook: fd 4 (write end) and fd 5 (read end of the same
 * pipe). Without Nix these numbers are often libuv's own internal pipe (read end first), so
 * the fds are taken only when they look like Nix's: one pipe, fd 4 its write end, fd 5 its read
 * end. (Close-on-exec tells nothing: Node sets it on every inherited fd.)
 */
import { fstatSync, readFileSync } from "node:fs"

export interface NixLogFds {
  /** Where raw build-log bytes go (fd 4), when Nix provided it. */
  readonly write: number | undefined
  /** The read end (fd 5): Nix passes it so build-remote can read ssh's errors. */
  readonly read: number | undefined
}

const O_ACCMODE = 0o3
const O_WRONLY = 0o1
const O_RDONLY = 0o0

interface FdInfo {
  readonly ino: number
  /** Open flags from /proc, undefined when /proc is unavailable. */
  readonly flags: number | undefined
}

const inspect = (fd: number): FdInfo | undefined => {
  try {
    const stat = fstatSync(fd)
    if (!stat.isFIFO()) return undefined
    let flags: number | undefined
    try {
      const match = /^flags:\s*([0-7]+)/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, "utf8"))
      flags = match?.[1] === undefined ? undefined : parseInt(match[1], 8)
    } catch {
      flags = undefined
    }
    return { ino: stat.ino, flags }
  } catch {
    return undefined
  }
}

const opened = (info: FdInfo, mode: number) => info.flags === undefined || (info.flags & O_ACCMODE) === mode

/** Nix's fds 4 and 5 in this process, if they are there (Nix always passes both). */
export const findNixLogFds = (): NixLogFds => {
  const write = inspect(4)
  const read = inspect(5)
  const fromNix = write !== undefined && read !== undefined && write.ino === read.ino &&
    opened(write, O_WRONLY) && opened(read, O_RDONLY)
  return fromNix ? { write: 4, read: 5 } : { write: undefined, read: undefined }
}
