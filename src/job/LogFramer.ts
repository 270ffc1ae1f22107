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
  /**
   * The last bytes received, held back because they could be the start of the end marker: at
   * most the marker's length, so a line without newlines is forwarded as it comes.
   */
  readonly held: Buffer
  /** The last byte forwarded ended a line (or nothing was forwarded yet). */
  readonly atLineStart: boolean
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

const empty = Buffer.alloc(0)

export const initialFramer: FramerState = {
  forwarded: 0,
  held: empty,
  atLineStart: true,
  endCode: undefined,
  overLimit: false
}

const NEWLINE = 0x0a
const AT = 0x40

/** How many bytes may follow the marker's prefix before its newline (the exit code is at most 3 digits). */
const maxCodeLength = 16

/** The marker as the job script prints it: `@nsh-end <nonce> <rc>` at the end of a line. */
const markerPrefix = (nonce: string) => Buffer.from(`@nsh-end ${nonce} `)

/** The length of the longest end of `data` that is a proper start of `prefix` (0 if none). */
const partialMarker = (data: Buffer, prefix: Buffer): number => {
  // The marker may follow unterminated build output on the same line: look at every '@' near the end.
  let at = data.lastIndexOf(AT)
  const earliest = data.length - prefix.length + 1
  let longest = 0
  while (at >= 0 && at >= earliest) {
    if (data.subarray(at).equals(prefix.subarray(0, data.length - at))) longest = data.length - at
    at = at > 0 ? data.lastIndexOf(AT, at - 1) : -1
  }
  return longest
}

/**
 * Feeds one chunk. `maxLogSize` is Nix's max-build-log-size in bytes (0 = unlimited).
 * After the marker or the limit, further input is ignored.
 */
export const pushChunk = (state: FramerState, chunk: Uint8Array, nonce: string, maxLogSize: number): FramerStep => {
  if (state.endCode !== undefined || state.overLimit) return { state, forward: empty }
  const prefix = markerPrefix(nonce)
  const input = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
  // Only the held bytes (a marker's length at most) are copied: a long line costs linear time.
  const data = state.held.length === 0 ? input : Buffer.concat([state.held, input])
  let out: Buffer
  let held = empty
  let endCode: number | undefined
  const markerAt = data.indexOf(prefix)
  if (markerAt >= 0) {
    out = data.subarray(0, markerAt)
    const codeAt = markerAt + prefix.length
    const lineEnd = data.indexOf(NEWLINE, codeAt)
    // The job script prints the marker whole; past its length without a newline it is taken as it is.
    if (lineEnd >= 0 || data.length - codeAt > maxCodeLength) {
      const code = Number.parseInt(data.subarray(codeAt, lineEnd >= 0 ? lineEnd : data.length).toString("latin1"), 10)
      endCode = code >= 0 && code <= 255 ? code : 1
      // Output the build printed before the marker on the same line still ends as a line.
      const endsLine = out.length > 0 ? out[out.length - 1] === NEWLINE : state.atLineStart
      if (!endsLine) out = Buffer.concat([out, Buffer.from("\n")])
    } else {
      held = Buffer.from(data.subarray(markerAt))
    }
  } else {
    const keep = partialMarker(data, prefix)
    out = data.subarray(0, data.length - keep)
    if (keep > 0) held = Buffer.from(data.subarray(data.length - keep))
  }
  // Held bytes are counted once they turn out to be log: the marker itself is not the build's output.
  if (maxLogSize > 0 && state.forwarded + out.length > maxLogSize) {
    const room = maxLogSize - state.forwarded
    return {
      state: { ...state, forwarded: maxLogSize, held: empty, overLimit: true },
      forward: out.subarray(0, Math.max(0, room))
    }
  }
  return {
    state: {
      forwarded: state.forwarded + out.length,
      held,
      atLineStart: out.length > 0 ? out[out.length - 1] === NEWLINE : state.atLineStart,
      endCode,
      overLimit: false
    },
    forward: out
  }
}

/** What is left when the stream ends without a marker: the held bytes, if any. */
export const flushFramer = (state: FramerState): FramerStep =>
  state.held.length === 0 || state.endCode !== undefined
    ? { state, forward: empty }
    : {
      state: { ...state, held: empty, forwarded: state.forwarded + state.held.length, atLineStart: false },
      forward: state.held
    }
