/**
 * Errors from loading nsh.conf. None carries a setting's raw line or a token's text.
 */
import type { PlatformError } from "@effect/platform/Error"
import { Data } from "effect"
import type { SettingSource } from "./Settings.js"

/** A problem in an nsh.conf file (or in a file one of its settings names), located at file:line. */
export class NshConfError extends Data.TaggedError("NshConfError")<{
  readonly file: string
  /** 1-based; 0 = the file as a whole (e.g. NSH_CONF names a missing file). */
  readonly line: number
  readonly key?: string
  /** What is wrong and what is accepted, e.g. "expected an integer between 1 and 65535, got 'http'". */
  readonly reason: string
}> {
  override get message() {
    const where = this.line > 0 ? `${this.file}:${this.line}` : this.file
    const key = this.key === undefined ? "" : `${this.key}: `
    return `${where}: ${key}${this.reason}`
  }

  /** An error about the value of `key`, located where that value was set. */
  static at(source: SettingSource, key: string, reason: string): NshConfError {
    switch (source._tag) {
      case "file":
        return new NshConfError({ file: source.file, line: source.line, key, reason })
      case "env":
        return new NshConfError({ file: `$${source.variable}`, line: 0, key, reason })
      case "default":
        return new NshConfError({ file: "built-in default", line: 0, key, reason })
    }
  }
}

/** "FILE:LINE" for a source, for warnings. */
export const describeSource = (source: SettingSource): string => {
  switch (source._tag) {
    case "file":
      return `${source.file}:${source.line}`
    case "env":
      return `$${source.variable}`
    case "default":
      return "the built-in default"
  }
}

/** A file-system failure in words a user can act on ("permission denied"), without Effect's internals. */
export const describeFsError = (error: PlatformError): string => {
  if (error._tag === "BadArgument") return error.description ?? "invalid argument"
  switch (error.reason) {
    case "NotFound":
      return "no such file"
    case "PermissionDenied":
      return "permission denied"
    case "BadResource":
      return "not a regular file"
    default:
      return error.description ?? error.reason
  }
}
