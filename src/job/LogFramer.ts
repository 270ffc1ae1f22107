/**
 * Frames the job's log as it streams from the node: passes bytes through for Nix's fd 4 as soon
 * as they arrive, finds the job script's end marker `@nsh-end <nonce> <rc>` (which a build cannot
 * forge: it does not know the nonce), and enforces `max-build-log-size`.
 *
 * Pure state machine: `push` a chunk, get back what to forward and whether the marker was seen.
 */

export interface FramerState {
  /** Bytes already forwarded (counted against max-build-log-size). */
  readonly forwarded: number
  /** A trailing partial line held back because it could still become the end marker. */
  readonly held: Buffer
  /** The job's exit code from the marker, once seen. */
  readonly endCode: number | undefined
  /** Set when the log exceeded max-build-log-size. */
  readonly overLimit: boolean
}

export interface FramerStep {
  readonly state: FramerState
  /** Bytes to write to fd 4 now. */
  readonly forward: Buffer
}

export const initialFramer: FramerState = {
  forwarded: 0,
  held: Buffer.alloc(0),
  endCode: undefined,
  overLimit: false
}

const NEWLINE = 0x0a

/** The marker as the job script prints it: `@nsh-end <nonce> <rc>` at the end of a line. */
const markerPrefix = (nonce: string) => Buffer.from(`@nsh-end ${nonce} `)

/** Whether `tail` (the bytes after the last newline) could still grow into the marker. */
const couldBecomeMarker = (tail: Buffer, prefix: Buffer): boolean => {
  // The marker may follow unterminated build output on the same line, so look for any suffix
  // of `tail` that is a prefix of the marker (or contains the whole prefix).
  if (tail.includes(prefix)) return true
  const start = Math.max(0, tail.length - prefix.length)
  for (let i = start; i < tail.length; i++) {
    if (prefix.subarray(0, tail.length - i).equals(tail.subarray(i))) return true
  }
  return false
}

/**
 * Feeds one chunk. `maxLogSize` is Nix's max-build-log-size in bytes (0 = unlimited).
 * After the marker or the limit, further input is ignored.
 */
export const pushChunk = (state: FramerState, chunk: Uint8Array, nonce: string, maxLogSize: number): FramerStep => {
  if (state.endCode !== undefined || state.overLimit) return { state, forward: Buffer.alloc(0) }
  const prefix = markerPrefix(nonce)
  const data = Buffer.concat([state.held, Buffer.from(chunk)])
  let out: Buffer
  let held: Buffer
  let endCode: number | undefined
  const markerAt = data.indexOf(prefix)
  const lineEnd = markerAt >= 0 ? data.indexOf(NEWLINE, markerAt) : -1
  if (markerAt >= 0 && lineEnd >= 0) {
    const code = Number.parseInt(data.subarray(markerAt + prefix.length, lineEnd).toString("latin1").trim(), 10)
    endCode = Number.isFinite(code) ? code : 1
    // Output the build printed before the marker on the same line still belongs to the log.
    out = data.subarray(0, markerAt)
    if (out.length > 0 && out[out.length - 1] !== NEWLINE) out = Buffer.concat([out, Buffer.from("\n")])
    held = Buffer.alloc(0)
  } else {
    const lastNl = data.lastIndexOf(NEWLINE)
    const tail = data.subarray(lastNl + 1)
    if (couldBecomeMarker(tail, prefix)) {
      out = data.subarray(0, lastNl + 1)
      held = Buffer.from(tail)
    } else {
      out = data
      held = Buffer.alloc(0)
    }
  }
  if (maxLogSize > 0 && state.forwarded + out.length > maxLogSize) {
    const room = maxLogSize - state.forwarded
    return {
      state: { forwarded: maxLogSize, held: Buffer.alloc(0), endCode: undefined, overLimit: true },
      forward: out.subarray(0, Math.max(0, room))
    }
  }
  return {
    state: { forwarded: state.forwarded + out.length, held, endCode, overLimit: false },
    forward: out
  }
}

/** What is left when the stream ends without a marker: the held partial line, if any. */
export const flushFramer = (state: FramerState): FramerStep =>
  state.held.length === 0 || state.endCode !== undefined
    ? { state, forward: Buffer.alloc(0) }
    : {
      state: { ...state, held: Buffer.alloc(0), forwarded: state.forwarded + state.held.length },
      forward: state.held
    }
