/**
 * Errors at the SlurmApi boundary. Each carries what a user needs to act; none carries the token.
 */
import { Data } from "effect"

/** slurmrestd could not be reached (connection refused/reset, timeout, DNS). */
export class SlurmUnreachable extends Data.TaggedError("SlurmUnreachable")<{
  readonly url: string
  readonly reason: string
  /** A passing fault (refused, reset, timed out) that outlasted the retries: worth asking again later. */
  readonly passing?: boolean
}> {
  override get message() {
    return `cannot reach slurmrestd at ${this.url}: ${this.reason} (check slurm-api-url or slurm-api-host/slurm-api-port in nsh.conf and that slurmrestd is running)`
  }
}

/**
 * slurmrestd's https:// endpoint could not be trusted (unknown CA, expired certificate, another
 * host's name, no TLS at all) or the CA file could not be read. Never answered by plain HTTP.
 */
export class SlurmTlsError extends Data.TaggedError("SlurmTlsError")<{
  readonly url: string
  readonly reason: string
  /** What to do about it. */
  readonly fix: string
}> {
  override get message() {
    return `cannot trust slurmrestd at ${this.url}: ${this.reason}; ${this.fix} (nsh never falls back to plain HTTP)`
  }
}

/** The token was missing, malformed, expired or rejected. */
export class SlurmAuthError extends Data.TaggedError("SlurmAuthError")<{
  readonly host: string
  readonly reason: string
  /** No token was configured at all (nothing was sent). */
  readonly missing?: boolean
  /** How to renew the token, said for where it came from (once nsh has read that source again). */
  readonly renewal?: string
  /** The token comes from a file that nsh reads again at each request: a new token there helps at once. */
  readonly renewable?: boolean
}> {
  override get message() {
    return this.missing === true
      ? `no Slurm token is configured for ${this.host}: get one with \`scontrol token\` and put it in SLURM_JWT, in the file named by slurm-jwt-token-file, or in slurm-jwt-token in nsh.conf`
      : `the Slurm token was rejected by ${this.host}: ${this.reason} (${
        this.renewal ?? "get a new one with `scontrol token` and put it in SLURM_JWT or slurm-jwt-token-file"
      })`
  }
}

/** The token file could not be read or was empty when a request needed it (maybe being rewritten). */
export class SlurmTokenUnreadable extends Data.TaggedError("SlurmTokenUnreadable")<{
  readonly file: string
  readonly reason: string
}> {
  override get message() {
    return `cannot read the Slurm token file '${this.file}' (${this.reason}); if it is not being rewritten, write a token to it with 'scontrol token > ${this.file}'`
  }
}

/** The server supports none of the API versions nsh speaks, or not the one configured. */
export class SlurmVersionUnsupported extends Data.TaggedError("SlurmVersionUnsupported")<{
  readonly url: string
  readonly wanted: string
  readonly offered: ReadonlyArray<string>
}> {
  override get message() {
    const offered = this.offered.length > 0 ? this.offered.join(", ") : "none that nsh knows"
    return `slurmrestd at ${this.url} does not serve ${this.wanted}; it offers ${offered} (set slurm-api-version in nsh.conf, or auto)`
  }
}

/** slurmrestd answered with errors for an operation (bad request, unknown job, ...). */
export class SlurmRequestError extends Data.TaggedError("SlurmRequestError")<{
  readonly operation: string
  readonly status: number
  readonly errors: ReadonlyArray<string>
  /** A submit that failed but still queued a job (it was cancelled by nsh). */
  readonly jobId?: number
  /** A passing fault (slurmctld busy, a gateway's 502–504) that outlasted the retries: worth asking again later. */
  readonly passing?: boolean
}> {
  override get message() {
    const what = this.errors.length > 0 ? this.errors.join("; ") : `HTTP ${this.status}`
    return `slurmrestd refused ${this.operation}: ${what}`
  }
}

/** The job is unknown to slurmctld (never existed, or purged after MinJobAge). */
export class SlurmJobNotFound extends Data.TaggedError("SlurmJobNotFound")<{
  readonly jobId: number
}> {
  override get message() {
    return `Slurm job ${this.jobId} is unknown to slurmctld (finished and purged, or never existed)`
  }
}

/** A response nsh could not make sense of (not JSON, missing fields it needs). */
export class SlurmProtocolError extends Data.TaggedError("SlurmProtocolError")<{
  readonly operation: string
  readonly detail: string
}> {
  override get message() {
    return `unexpected answer from slurmrestd to ${this.operation}: ${this.detail}`
  }
}

/** nsh refused to send a job whose values cannot be right (checked before any request). */
export class SlurmInvalidSubmission extends Data.TaggedError("SlurmInvalidSubmission")<{
  readonly jobName: string
  readonly problems: ReadonlyArray<string>
}> {
  override get message() {
    return `nsh did not submit the Slurm job ${this.jobName}: ${this.problems.join("; ")}`
  }
}

/**
 * A submit went out but its answer was lost, and the job was not found by its comment: it may still
 * be queued. The submission's watchdog keeps looking for it and cancels it.
 */
export class SlurmSubmitUnanswered extends Data.TaggedError("SlurmSubmitUnanswered")<{
  readonly error: SlurmError
}> {
  override get message(): string {
    return `the job submission got no answer (${this.error.message}); if slurmctld queued it after all, nsh's watchdog cancels it`
  }
}

/** True for an error that a later try may not meet: Nix should ask again rather than build elsewhere. */
export const isPassingFault = (error: { readonly _tag: string }): boolean =>
  error._tag === "SlurmTokenUnreadable" || error._tag === "SlurmSubmitUnanswered" ||
  ((error instanceof SlurmUnreachable || error instanceof SlurmRequestError) && error.passing === true)

export type SlurmError =
  | SlurmUnreachable
  | SlurmTlsError
  | SlurmAuthError
  | SlurmTokenUnreadable
  | SlurmVersionUnsupported
  | SlurmRequestError
  | SlurmJobNotFound
  | SlurmProtocolError
  | SlurmInvalidSubmission
  | SlurmSubmitUnanswered
