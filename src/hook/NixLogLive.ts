/**
 * Live NixLog layers. In a hook session Nix drops plain stderr text, so messages and activities
 * go out as `@nix {json}` lines on stderr and the build log as raw bytes on fd 4. CLI commands
 * get plain text on stderr. Both also route Effect's own logger (Effect.log*) through NixLog.
 */
import { Cause, Effect, Layer, Logger, LogLevel } from "effect"
import { type Activity, type LogField, NixLog, type NixLogService, Verbosity } from "../dispatch/NixLog.js"
import { pipeWriter, send, writeAllSync } from "./FdWrite.js"
import { findNixLogFds } from "./NixFds.js"

/** The primitives a NixLogService is built from: synchronous (Effect's logger calls them), but the build log may wait. */
interface Emitter {
  readonly message: (level: Verbosity, text: string) => void
  readonly start: (id: number, type: number, text: string, fields: ReadonlyArray<LogField>, level: Verbosity) => void
  readonly stop: (id: number) => void
  readonly result: (id: number, type: number, fields: ReadonlyArray<LogField>) => void
  readonly buildLog: (chunk: Uint8Array) => Effect.Effect<void>
}

// Activity ids follow build-remote (counter + pid << 32) but stay below 2^53 for JSON readers.
const idBase = (process.pid % 2 ** 21) * 2 ** 32
let lastId = 0
const nextId = () => idBase + ++lastId

const makeService = (emit: Emitter): NixLogService => ({
  log: (level, text) => Effect.sync(() => emit.message(level, text)),
  activity: (type, text, fields = [], level = Verbosity.info) =>
    Effect.acquireRelease(
      Effect.sync((): Activity => {
        const id = nextId()
        emit.start(id, type, text, fields, level)
        return {
          id,
          result: (resultType, resultFields) => Effect.sync(() => emit.result(id, resultType, resultFields))
        }
      }),
      (activity) => Effect.sync(() => emit.stop(activity.id))
    ),
  buildLog: emit.buildLog
})

const nixLevel = (level: LogLevel.LogLevel): Verbosity | undefined => {
  switch (level._tag) {
    case "Fatal":
    case "Error":
      return Verbosity.error
    case "Warning":
      return Verbosity.warn
    case "Info":
      return Verbosity.info
    case "Debug":
      return Verbosity.debug
    case "Trace":
      return Verbosity.vomit
    default:
      return undefined
  }
}

/** Effect.log* → NixLog, so library code that logs the Effect way reaches the user too. */
const effectLoggerVia = (emit: Emitter, verbosity: number) =>
  Layer.merge(
    Logger.replace(
      Logger.defaultLogger,
      Logger.make(({ cause, logLevel, message }) => {
        const level = nixLevel(logLevel)
        if (level === undefined) return
        const parts = (Array.isArray(message) ? message : [message]).map((m) => (typeof m === "string" ? m : String(m)))
        if (!Cause.isEmpty(cause)) parts.push(Cause.pretty(cause))
        emit.message(level, parts.join(" "))
      })
    ),
    Logger.minimumLogLevel(verbosity >= Verbosity.debug ? LogLevel.All : LogLevel.Info)
  )

const layerFrom = (emit: Emitter, verbosity: number): Layer.Layer<NixLog> =>
  Layer.merge(Layer.succeed(NixLog, makeService(emit)), effectLoggerVia(emit, verbosity))

/** Nix accepts only strings and non-negative integers as fields; anything else would fail the build. */
const safeField = (field: LogField): LogField =>
  typeof field === "string" ? field : Number.isSafeInteger(field) && field >= 0 ? field : String(field)

/** Where a hook session's NixLog writes: whole lines to Nix's stderr pipe, raw bytes to its build log. */
export interface HookLogSinks {
  /** Queues a line; false when it cannot be taken now (Nix has not read a backlog of lines). */
  readonly stderr: (line: string) => boolean
  /** Waits while the build log cannot take more (Nix is not reading): the node's log file holds the rest. */
  readonly buildLog: (chunk: Uint8Array) => Effect.Effect<void>
}

/** NixLog for a hook session writing `@nix` lines to `sinks`; messages above `verbosity` are dropped. */
export const nixLogHookWith = (sinks: HookLogSinks, verbosity: number): Layer.Layer<NixLog> => {
  // Lines that found no room are dropped (Effect's logger cannot wait) and counted; the count is
  // reported once Nix reads again, so the user knows the progress display missed some.
  let dropped = 0
  const put = (json: object) => {
    if (!sinks.stderr(`@nix ${JSON.stringify(json)}\n`)) dropped++
  }
  const line = (json: object) => {
    if (dropped > 0) {
      const msg = `nsh: ${dropped} progress lines were dropped while Nix was not reading`
      if (sinks.stderr(`@nix ${JSON.stringify({ action: "msg", level: Verbosity.warn, msg })}\n`)) dropped = 0
    }
    put(json)
  }
  return layerFrom({
    message: (level, msg) => {
      if (level <= verbosity) line({ action: "msg", level, msg })
    },
    // Activities always go out: Nix filters their display by its own verbosity, and results need them.
    start: (id, type, text, fields, level) =>
      line({ action: "start", id, level, type, text, fields: fields.map(safeField), parent: 0 }),
    stop: (id) => line({ action: "stop", id }),
    result: (id, type, fields) => line({ action: "result", id, type, fields: fields.map(safeField) }),
    buildLog: sinks.buildLog
  }, verbosity)
}

/** NixLog for a hook session: `@nix` lines on fd 2, build log on Nix's fd 4, neither ever blocking. */
export const NixLogHook = (verbosity: number): Layer.Layer<NixLog> =>
  Layer.unwrapEffect(Effect.sync(() => {
    // Without Nix's fd 4 (a manual run), the build log goes to stderr rather than nowhere.
    const stderr = pipeWriter(2)
    const buildLog = pipeWriter(findNixLogFds().write ?? 2)
    return nixLogHookWith({
      stderr: (text) => stderr.offer(Buffer.from(text, "utf8")),
      buildLog: (chunk) => send(buildLog, chunk)
    }, verbosity)
  }))

const plainPrefix = (level: Verbosity) =>
  level === Verbosity.error ? "error: " : level === Verbosity.warn ? "warning: " : ""

/** NixLog for CLI commands: plain text on stderr, messages above `verbosity` dropped. */
export const NixLogPlain = (verbosity: number = Verbosity.info): Layer.Layer<NixLog> =>
  layerFrom({
    message: (level, text) => {
      if (level <= verbosity) writeAllSync(2, `${plainPrefix(level)}${text}\n`)
    },
    start: (_id, _type, text, _fields, level) => {
      if (level <= verbosity) writeAllSync(2, `${text}...\n`)
    },
    stop: () => {},
    result: () => {},
    buildLog: (chunk) => Effect.sync(() => writeAllSync(2, chunk))
  }, verbosity)
