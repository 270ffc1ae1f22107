/**
 * How nsh recognises its jobs: every submission has a fresh tag (`nsh-<16 hex>`), public in the
 * job's comment (`nsh:<tag> <drvPath>`, then the user's own comment if any) and its file names, and a nonce that only the job script
 * and the hook know (so a build cannot forge the end marker).
 */
import { Effect, Option } from "effect"
import { randomBytes } from "node:crypto"
import type { JobInfo } from "../slurm/JobSpec.js"

/** Identifies one submission: the tag is public (job comment, file names), the nonce secret. */
export interface JobIds {
  readonly tag: string
  readonly nonce: string
}

/** A fresh tag (`nsh-<16 hex>`) and nonce (32 hex) for one submission. */
export const newJobIds: Effect.Effect<JobIds> = Effect.sync(() => ({
  tag: `nsh-${randomBytes(8).toString("hex")}`,
  nonce: randomBytes(16).toString("hex")
}))

/**
 * The comment nsh gives a submission's job: its tag first (which finds the job), then the comment
 * the derivation or nsh.conf asked for, so that users keep the field.
 */
export const jobComment = (tag: string, drvPath: string, own = ""): string =>
  own === "" ? `nsh:${tag} ${drvPath}` : `nsh:${tag} ${drvPath} ${own}`

/** An nsh job's tag and derivation, read back from its comment. */
export const nshTagOf = (info: JobInfo): Option.Option<{ readonly tag: string; readonly drvPath: string }> => {
  // A store path holds no white space; whatever follows it is the user's comment.
  const match = /^nsh:(nsh-[0-9a-f]+) (\S+)/.exec(info.comment)
  return match === null ? Option.none() : Option.some({ tag: match[1]!, drvPath: match[2]! })
}

/** Whether a job belongs to the submission `tag` (a comment without the derivation counts too). */
export const hasTag = (tag: string) => (job: JobInfo): boolean =>
  job.comment === `nsh:${tag}` || job.comment.startsWith(`nsh:${tag} `)

/** The jobs among `jobs` that nsh submitted. */
export const nshJobsOf = (jobs: ReadonlyArray<JobInfo>): ReadonlyArray<JobInfo> =>
  jobs.filter((j) => Option.isSome(nshTagOf(j)))
