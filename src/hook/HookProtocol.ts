/**
 * The messages Nix writes to a build hook's stdin, decoded incrementally: the settings block
 * (`1 name value … 0`), then `try` requests, then (after `# accept`) the input paths and wanted
 * outputs. Chunks may be split anywhere; raw bytes of the settings and of each `try` are kept so
 * they can be replayed verbatim to Nix's own build-remote.
 */
import { Either } from "effect"
import type { BuildRequest } from "../dispatch/TryHandler.js"
import { Cursor, encodeString, encodeStrings, encodeU64, Incomplete, WireError } from "./Wire.js"

/** One decoded message from Nix. */
export type HookMessage =
  | {
    readonly _tag: "Settings"
    readonly entries: ReadonlyArray<readonly [name: string, value: string]>
    readonly raw: Buffer
  }
  | { readonly _tag: "Try"; readonly request: BuildRequest; readonly raw: Buffer }
  /** A command other than `try`: like build-remote, the hook is done. */
  | { readonly _tag: "OtherCommand"; readonly command: string }
  | {
    readonly _tag: "AcceptLists"
    readonly inputs: ReadonlyArray<string>
    readonly wantedOutputs: ReadonlyArray<string>
  }
  /** EOF at a message boundary: Nix has no more work for this hook. */
  | { readonly _tag: "End" }

type Unit = { readonly message: HookMessage | undefined; readonly next: State }
type State = "settings" | "commands" | "lists" | "done"

/** Incremental decoder: `push` chunks, `end` at EOF, pull messages with `next`. */
export class HookDecoder {
  private pending: Buffer = Buffer.alloc(0)
  /** Stream offset of pending[0]. */
  private offset = 0
  /** pending must be at least this long before a unit is worth decoding again. */
  private need = 0
  private ended = false
  private state: State = "settings"
  private readonly settings: Array<readonly [string, string]> = []
  private readonly settingsRaw: Array<Buffer> = []

  push(chunk: Uint8Array): void {
    const bytes = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
    this.pending = this.pending.length === 0 ? bytes : Buffer.concat([this.pending, bytes])
  }

  end(): void {
    this.ended = true
  }

  /** From now on the next message is the two lists Nix sends after `# accept`. */
  expectAcceptLists(): void {
    this.state = "lists"
    this.need = 0
  }

  /** Hands over the bytes received but not decoded (for the fallback); the decoder is done. */
  takeBuffered(): Buffer {
    const rest = this.pending
    this.pending = Buffer.alloc(0)
    this.state = "done"
    return rest
  }

  /** The next complete message, `undefined` when more bytes are needed. */
  next(): Either.Either<HookMessage | undefined, WireError> {
    for (;;) {
      if (this.pending.length === 0 || this.pending.length < this.need) {
        if (!this.ended) return Either.right(undefined)
        return this.atBoundary()
          ? Either.right({ _tag: "End" })
          : Either.left(new WireError({ offset: this.offset + this.pending.length, reason: "unexpected end of input" }))
      }
      const cursor = new Cursor(this.pending, this.offset)
      const unit = this.decodeUnit(cursor)
      if (unit instanceof Incomplete) {
        this.need = unit.needed
        if (!this.ended) return Either.right(undefined)
        continue
      }
      if (unit instanceof WireError) return Either.left(unit)
      const raw = Buffer.from(this.pending.subarray(0, cursor.pos))
      this.pending = this.pending.subarray(cursor.pos)
      this.offset += cursor.pos
      this.need = 0
      this.state = unit.next
      if (unit.message === undefined) {
        this.settingsRaw.push(raw)
        continue
      }
      if (unit.message._tag === "Settings") {
        this.settingsRaw.push(raw)
        return Either.right({ ...unit.message, raw: Buffer.concat(this.settingsRaw) })
      }
      return Either.right(unit.message._tag === "Try" ? { ...unit.message, raw } : unit.message)
    }
  }

  private atBoundary(): boolean {
    return this.pending.length === 0 &&
      (this.state === "commands" || this.state === "done" || (this.state === "settings" && this.offset === 0))
  }

  // Exceptions stay inside this method: Cursor signals "not yet" and "malformed" by throwing.
  private decodeUnit(c: Cursor): Unit | Incomplete | WireError {
    try {
      switch (this.state) {
        case "settings": {
          const more = c.u64()
          if (more === 0) {
            return { message: { _tag: "Settings", entries: this.settings, raw: Buffer.alloc(0) }, next: "commands" }
          }
          if (more !== 1) {
            throw new WireError({ offset: this.offset, reason: `setting marker ${more} (expected 0 or 1)` })
          }
          const name = c.string()
          const value = c.string()
          // Recorded only once the whole entry arrived: an Incomplete unit is decoded again.
          this.settings.push([name, value])
          return { message: undefined, next: "settings" }
        }
        case "commands": {
          const command = c.string()
          if (command !== "try") return { message: { _tag: "OtherCommand", command }, next: "done" }
          const amWilling = c.u64() !== 0
          const neededSystem = c.string()
          const drvPath = c.string()
          const requiredFeatures = c.strings()
          const request: BuildRequest = { amWilling, neededSystem, drvPath, requiredFeatures }
          return { message: { _tag: "Try", request, raw: Buffer.alloc(0) }, next: "commands" }
        }
        case "lists": {
          const inputs = c.strings()
          const wantedOutputs = c.strings()
          return { message: { _tag: "AcceptLists", inputs, wantedOutputs }, next: "done" }
        }
        case "done":
          throw new WireError({ offset: this.offset, reason: "data after the end of the conversation" })
      }
    } catch (e) {
      if (e instanceof Incomplete || e instanceof WireError) return e
      throw e
    }
  }
}

/** The settings block as Nix writes it. */
export const encodeSettings = (entries: ReadonlyArray<readonly [string, string]>): Buffer =>
  Buffer.concat([
    ...entries.flatMap(([name, value]) => [encodeU64(1), encodeString(name), encodeString(value)]),
    encodeU64(0)
  ])

/** One `try` request as Nix writes it. */
export const encodeTry = (request: BuildRequest): Buffer =>
  Buffer.concat([
    encodeString("try"),
    encodeU64(request.amWilling ? 1 : 0),
    encodeString(request.neededSystem),
    encodeString(request.drvPath),
    encodeStrings(request.requiredFeatures)
  ])

/** The two lists Nix writes after `# accept`. */
export const encodeAcceptLists = (inputs: ReadonlyArray<string>, wantedOutputs: ReadonlyArray<string>): Buffer =>
  Buffer.concat([encodeStrings(inputs), encodeStrings(wantedOutputs)])
