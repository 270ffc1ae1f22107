/**
 * NixLog: how nsh talks to the user through Nix, the other half of the seam. The build side logs
 * through this interface; the front end implements it (src/hook/NixLogLive.ts): during a hook
 * session plain stderr text is dropped by Nix, so everything goes out as `@nix {json}` lines on
 * stderr and raw build log bytes go to fd 4; outside a hook (CLI commands) it writes plain text.
 */
import { Context, type Effect, type Scope } from "effect"

/** Nix's verbosity levels (2.4+ numbering). */
export const Verbosity = {
  error: 0,
  warn: 1,
  notice: 2,
  info: 3,
  talkative: 4,
  chatty: 5,
  debug: 6,
  vomit: 7
} as const
export type Verbosity = (typeof Verbosity)[keyof typeof Verbosity]

/** Nix's activity types (logging.hh). */
export const ActivityType = {
  unknown: 0,
  copyPath: 100,
  fileTransfer: 101,
  realise: 102,
  copyPaths: 103,
  builds: 104,
  build: 105,
  buildWaiting: 111
} as const

/** Nix's result types (logging.hh). */
export const ResultType = {
  buildLogLine: 101,
  setPhase: 104,
  progress: 105,
  setExpected: 106
} as const

export type LogField = string | number

export interface Activity {
  readonly id: number
  /** A `result` on this activity, e.g. progress `[done, expected, running, failed]`. */
  readonly result: (type: number, fields: ReadonlyArray<LogField>) => Effect.Effect<void>
}

export interface NixLogService {
  /** A message at a Nix verbosity level; Nix shows it if its own verbosity allows. */
  readonly log: (level: Verbosity, text: string) => Effect.Effect<void>
  /** Starts an activity that stops when the scope closes. */
  readonly activity: (
    type: number,
    text: string,
    fields?: ReadonlyArray<LogField>,
    level?: Verbosity
  ) => Effect.Effect<Activity, never, Scope.Scope>
  /** Raw build-log bytes (fd 4 under Nix). */
  readonly buildLog: (chunk: Uint8Array) => Effect.Effect<void>
}

export class NixLog extends Context.Tag("nsh/NixLog")<NixLog, NixLogService>() {}
