/**
 * What the hook tells its watchdog over their private socket, one JSON object per line, and what
 * the watchdog makes of it. The hook sends `start` (everything needed to cancel the job and remove
 * its files, the token included: it travels only here, never in argv, environment or files), then
 * `job` / `node` as it learns them, and `finished` once the job needs nothing more. The watchdog
 * answers `ready` after reading `start`. EOF without `finished` means the hook is gone: the
 * watchdog then hands every line it got to `nsh __watchdog` (src/safety/WatchdogMain.ts) on its stdin.
 */
import { Either, Option, Schema } from "effect"

/** How to reach slurmrestd as the hook does. */
export const SlurmAccess = Schema.Struct({
  /** slurm-api-url as the hook had it ("" = host and port). */
  url: Schema.String,
  host: Schema.String,
  port: Schema.Int,
  caFile: Schema.String,
  auth: Schema.Literal("x-slurm", "bearer"),
  /** The API version the hook negotiated (no negotiation in the watchdog). */
  apiVersion: Schema.String,
  userName: Schema.String,
  token: Schema.Redacted(Schema.String),
  /** The file the token came from, read again when slurmctld rejects the token (short-lived tokens). */
  tokenFile: Schema.optional(Schema.String)
})
export type SlurmAccess = typeof SlurmAccess.Type

/** First message: one watchdog watches one submission, identified by its tag. */
export const Start = Schema.TaggedStruct("start", {
  slurm: SlurmAccess,
  /** The submission's tag: the job's comment is `nsh:<tag> <drvPath>`. */
  tag: Schema.String,
  /** The job's files in slurm-state-dir on its node (log, lease, GC root). */
  nodeFiles: Schema.Array(Schema.String),
  /** Files on this machine to remove once the job is dealt with (its journal entry). */
  localFiles: Schema.Array(Schema.String),
  /** Extra `ssh` options for reaching the node (e.g. `-F <config>`). */
  sshArgs: Schema.Array(Schema.String)
})
export type Start = typeof Start.Type

/** The job id, once the submit answered (or the job was found by its comment). */
export const JobSubmitted = Schema.TaggedStruct("job", { jobId: Schema.Int })

/** The job's batch host, once allocated. */
export const NodeKnown = Schema.TaggedStruct("node", { node: Schema.String })

/** The hook dealt with the job itself: the watchdog exits without touching anything. */
export const Finished = Schema.TaggedStruct("finished", {})

/** A message from the hook. */
export const HookMessage = Schema.Union(Start, JobSubmitted, NodeKnown, Finished)
export type HookMessage = typeof HookMessage.Type

/** The watchdog's only message: it has read `start` and now outlives the hook. */
export const Ready = Schema.TaggedStruct("ready", {})

const HookMessageLine = Schema.parseJson(HookMessage)
const ReadyLine = Schema.parseJson(Ready)

/** The line the watchdog writes once it has read `start`. */
export const readyLine = `${Schema.encodeSync(ReadyLine)(Ready.make({}))}\n`

/** True for the watchdog's `ready` line (without its newline). */
export const isReadyLine = (line: string): boolean => Either.isRight(Schema.decodeUnknownEither(ReadyLine)(line))

/** The `finished` message as a line (without its newline), which the idle watchdog looks for. */
export const finishedLine = Schema.encodeSync(HookMessageLine)(Finished.make({}))

/** The line to write for a message, newline included. */
export const encodeHookMessage = (message: HookMessage): string => `${Schema.encodeSync(HookMessageLine)(message)}\n`

/** A received line as a message; None for anything else (a hook bug, not worth dying for). */
export const decodeHookMessage = (line: string): Option.Option<HookMessage> =>
  Either.getRight(Schema.decodeUnknownEither(HookMessageLine)(line))

/** What the watchdog knows after the messages so far. */
export interface WatchState {
  readonly start: Option.Option<Start>
  readonly jobId: Option.Option<number>
  readonly node: Option.Option<string>
  readonly finished: boolean
}

export const initialWatchState: WatchState = {
  start: Option.none(),
  jobId: Option.none(),
  node: Option.none(),
  finished: false
}

/** The state after one more message (later `job`/`node` messages replace earlier ones). */
export const applyMessage = (state: WatchState, message: HookMessage): WatchState => {
  switch (message._tag) {
    case "start":
      return { ...state, start: Option.some(message) }
    case "job":
      return { ...state, jobId: Option.some(message.jobId) }
    case "node":
      return { ...state, node: Option.some(message.node) }
    case "finished":
      return { ...state, finished: true }
  }
}

/** Everything the watchdog must clean up when the hook vanished without `finished`. */
export interface Abandoned {
  readonly start: Start
  readonly jobId: Option.Option<number>
  readonly node: Option.Option<string>
}

/** Some(plan) when the hook is gone (input ended) without `finished` after a `start`. */
export const abandonedOf = (state: WatchState): Option.Option<Abandoned> =>
  state.finished
    ? Option.none()
    : Option.map(state.start, (start) => ({ start, jobId: state.jobId, node: state.node }))
