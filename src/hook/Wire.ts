/**
 * Nix's wire format (serialise.cc, unchanged from 2.3 to 2.35): u64 little-endian; a string is
 * a u64 length, the bytes, then zero padding to a multiple of 8; a string list is a u64 count
 * followed by that many strings.
 */
import { Data } from "effect"

/** Nix sent bytes nsh cannot decode as the build-hook protocol. */
export class WireError extends Data.TaggedError("WireError")<{
  /** Offset in Nix's stdin where decoding failed. */
  readonly offset: number
  readonly reason: string
}> {
  override get message() {
    return `nsh could not decode what Nix sent on the build hook's stdin (at byte ${this.offset}): ${this.reason}. ` +
      `nsh speaks the classic build-hook protocol of Nix 2.3–2.35 and Lix up to 2.93; check which Nix runs nsh.`
  }
}

/** Longest string nsh accepts; longer means the stream is not what we think it is. */
const maxStringLength = 64 * 1024 * 1024

const padding = (length: number) => (8 - (length % 8)) % 8

/** Thrown inside a Cursor read when the bytes have not all arrived yet. */
export class Incomplete {
  constructor(readonly needed: number) {}
}

/**
 * Reads wire values from a buffer. A read past the end throws `Incomplete` (with the length the
 * buffer must reach) so a caller can retry the whole unit once more bytes arrived; malformed
 * data throws `WireError`. Both are caught by the unit decoder, never by Effect code.
 */
export class Cursor {
  pos = 0
  constructor(
    private readonly buf: Buffer,
    /** Offset of buf[0] in the whole stream, for error messages. */
    private readonly base: number
  ) {}

  private ensure(n: number): void {
    if (this.pos + n > this.buf.length) throw new Incomplete(this.pos + n)
  }

  u64(): number {
    this.ensure(8)
    const lo = this.buf.readUInt32LE(this.pos)
    const hi = this.buf.readUInt32LE(this.pos + 4)
    if (hi >= 2 ** 21) throw new WireError({ offset: this.base + this.pos, reason: "a number larger than 2^53" })
    this.pos += 8
    return hi * 2 ** 32 + lo
  }

  string(): string {
    const start = this.pos
    const length = this.u64()
    if (length > maxStringLength) {
      throw new WireError({ offset: this.base + start, reason: `a string of ${length} bytes` })
    }
    const pad = padding(length)
    this.ensure(length + pad)
    const text = this.buf.toString("utf8", this.pos, this.pos + length)
    for (let i = this.pos + length; i < this.pos + length + pad; i++) {
      if (this.buf[i] !== 0) throw new WireError({ offset: this.base + i, reason: "non-zero string padding" })
    }
    this.pos += length + pad
    return text
  }

  strings(): Array<string> {
    const start = this.pos
    const count = this.u64()
    // Each string takes at least 8 bytes: a larger count cannot be genuine.
    if (count > maxStringLength / 8) {
      throw new WireError({ offset: this.base + start, reason: `a list of ${count} strings` })
    }
    const items: Array<string> = []
    for (let i = 0; i < count; i++) items.push(this.string())
    return items
  }
}

/** A u64 as 8 little-endian bytes. */
export const encodeU64 = (n: number): Buffer => {
  const out = Buffer.alloc(8)
  out.writeUInt32LE(n % 2 ** 32, 0)
  out.writeUInt32LE(Math.floor(n / 2 ** 32), 4)
  return out
}

/** A string as length, UTF-8 bytes and zero padding. */
export const encodeString = (s: string): Buffer => {
  const bytes = Buffer.from(s, "utf8")
  return Buffer.concat([encodeU64(bytes.length), bytes, Buffer.alloc(padding(bytes.length))])
}

/** A string list as count and strings. */
export const encodeStrings = (items: ReadonlyArray<string>): Buffer =>
  Buffer.concat([encodeU64(items.length), ...items.map(encodeString)])
