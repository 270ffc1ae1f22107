/**
 * Errors at the NixStore boundary.
 */
import { Data } from "effect"

/** The file is missing, unreadable, or not a derivation. */
export class DerivationError extends Data.TaggedError("DerivationError")<{
  readonly drvPath: string
  readonly reason: string
}> {
  override get message() {
    return `cannot read derivation ${this.drvPath}: ${this.reason}`
  }
}

/** A nix-store command (local or on a node) failed. */
export class StoreCommandError extends Data.TaggedError("StoreCommandError")<{
  readonly where: string
  readonly command: string
  readonly exitCode: number
  readonly stderr: string
}> {
  override get message() {
    return `${this.command} failed on ${this.where} (exit ${this.exitCode}): ${this.stderr.trim()}`
  }
}

export type StoreError = DerivationError | StoreCommandError
