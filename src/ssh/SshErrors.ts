/**
 * Errors at the SshSession boundary.
 */
import { Data } from "effect"

/** Could not connect or authenticate to a node. */
export class SshConnectError extends Data.TaggedError("SshConnectError")<{
  readonly host: string
  readonly reason: string
}> {
  override get message() {
    return `cannot connect to ${this.host} over SSH: ${this.reason}`
  }
}

/** The node's host key is unknown or changed: never accepted silently. */
export class SshHostKeyError extends Data.TaggedError("SshHostKeyError")<{
  readonly host: string
  readonly fingerprint: string
  readonly reason: string
}> {
  override get message() {
    return `host key of ${this.host} (${this.fingerprint}) ${this.reason}; check it and add it to your known_hosts (e.g. \`ssh ${this.host} true\`)`
  }
}

/** The connection broke while a command ran. */
export class SshChannelError extends Data.TaggedError("SshChannelError")<{
  readonly host: string
  readonly command: string
  readonly reason: string
}> {
  override get message() {
    return `SSH command on ${this.host} failed: ${this.reason} (${this.command})`
  }
}

export type SshError = SshConnectError | SshHostKeyError | SshChannelError
