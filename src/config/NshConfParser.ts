/**
 * nix.conf syntax, as Nix's `parseConfigFiles` (libutil/configuration.cc) reads it: one
 * `name = value` per line, `#` starts a comment anywhere, a value is its whitespace-separated
 * tokens re-joined with single spaces, `include PATH` / `!include PATH` splice another file in
 * at that point (relative to the including file; `!include` skips a missing file).
 *
 * Deliberately not copied from Nix: its multi-line continuation heuristic (newer Nix only, and it
 * joins lines unpredictably), and its silent recursion on include cycles (an error here).
 */
import { FileSystem } from "@effect/platform"
import type { PlatformError } from "@effect/platform/Error"
import { Effect, Either } from "effect"
import * as path from "node:path"
import { describeFsError, NshConfError } from "./ConfigErrors.js"

/** One `name = value` line, where it was written. */
export interface ConfEntry {
  readonly key: string
  readonly value: string
  readonly file: string
  readonly line: number
}

/** One meaningful line of a file, before includes are followed. */
export type ConfDirective =
  | { readonly _tag: "Set"; readonly key: string; readonly value: string; readonly line: number }
  | { readonly _tag: "Include"; readonly path: string; readonly optional: boolean; readonly line: number }

/** The assignments of a set of files, includes spliced in, in the order they apply. */
export interface ParsedConf {
  readonly entries: ReadonlyArray<ConfEntry>
  /** Every file read, includes too, in reading order. */
  readonly files: ReadonlyArray<string>
  /** Files looked for and skipped as absent (optional top-level files, `!include`s): creating one changes the settings. */
  readonly absent: ReadonlyArray<string>
  readonly warnings: ReadonlyArray<string>
}

/** A top-level file. One named by a variable (NSH_CONF) must be readable; others are skipped when absent. */
export interface ConfFile {
  readonly path: string
  /** The environment variable that named this file, making it required. */
  readonly requiredBy?: string
}

// Nix's tokenizeString default separators.
const separators = /[ \t\r\n]+/

// The line is never quoted: it may be a token pasted without " = ".
const syntaxReason = (tokens: ReadonlyArray<string>, text: string): string => {
  if (tokens[0] === "include" || tokens[0] === "!include") {
    return `syntax error: expected '${tokens[0]} PATH' (exactly one path, without spaces)`
  }
  return text.includes("=")
    ? "syntax error: expected 'name = value', with spaces around '='"
    : "syntax error: expected 'name = value'"
}

/** Parses one file's text into its directives; the first malformed line is an error naming file:line. */
export const parseNshConfText = (
  text: string,
  file: string
): Either.Either<ReadonlyArray<ConfDirective>, NshConfError> => {
  const directives: Array<ConfDirective> = []
  const lines = text.split("\n")
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i] ?? ""
    const hash = raw.indexOf("#")
    const content = hash === -1 ? raw : raw.slice(0, hash)
    const tokens = content.split(separators).filter((t) => t !== "")
    if (tokens.length === 0) continue
    const line = i + 1
    const [first = "", second = ""] = tokens
    const isInclude = first === "include" || first === "!include"
    const wellFormed = isInclude ? tokens.length === 2 : tokens.length >= 2 && second === "="
    if (!wellFormed) {
      return Either.left(new NshConfError({ file, line, reason: syntaxReason(tokens, content) }))
    }
    directives.push(
      isInclude
        ? { _tag: "Include", path: second, optional: first === "!include", line }
        : { _tag: "Set", key: first, value: tokens.slice(2).join(" "), line }
    )
  }
  return Either.right(directives)
}

/**
 * Reads `files` in order, following includes depth-first, into one list of assignments.
 * A missing non-required top-level file or `!include` is skipped; an existing but unreadable one
 * is skipped with a warning (Nix skips it silently); a missing `include` or an include cycle fails.
 */
export const readNshConfFiles = (
  files: ReadonlyArray<ConfFile>
): Effect.Effect<ParsedConf, NshConfError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const entries: Array<ConfEntry> = []
    const read: Array<string> = []
    const absent: Array<string> = []
    const warnings: Array<string> = []

    // `stack`: real paths of the files including this one. A PlatformError escaping this effect is
    // always about `file` itself: each include's own failures are handled at the include.
    const readInto = (
      file: string,
      stack: ReadonlyArray<string>,
      includedAt?: { readonly file: string; readonly line: number }
    ): Effect.Effect<void, NshConfError | PlatformError> =>
      Effect.gen(function*() {
        const real = yield* fs.realPath(file)
        if (includedAt !== undefined && stack.includes(real)) {
          return yield* new NshConfError({
            ...includedAt,
            reason: `include cycle: '${file}' is already being read (remove one of the includes)`
          })
        }
        const text = yield* fs.readFileString(file)
        read.push(file)
        const directives = yield* parseNshConfText(text, file)
        for (const d of directives) {
          if (d._tag === "Set") {
            entries.push({ key: d.key, value: d.value, file, line: d.line })
            continue
          }
          const target = path.resolve(path.dirname(file), d.path)
          const skip = (e: PlatformError) =>
            Effect.sync(() => {
              warnings.push(skipped(target, e, `${file}:${d.line}`))
            })
          yield* readInto(target, [...stack, real], { file, line: d.line }).pipe(
            Effect.catchTags({
              BadArgument: skip,
              SystemError: (e) => {
                if (e.reason !== "NotFound") return skip(e)
                if (d.optional) return Effect.sync(() => absent.push(target))
                return new NshConfError({
                  file,
                  line: d.line,
                  reason: `included file '${target}' does not exist (use '!include' for a file that may be absent)`
                })
              }
            })
          )
        }
      })

    for (const top of files) {
      yield* readInto(top.path, []).pipe(
        Effect.catchTags({
          BadArgument: (e) => unreadableTop(top, e, warnings),
          SystemError: (e) =>
            e.reason === "NotFound" && top.requiredBy === undefined
              ? Effect.sync(() => absent.push(top.path))
              : unreadableTop(top, e, warnings)
        })
      )
    }
    return { entries, files: read, absent, warnings }
  })

const skipped = (file: string, error: PlatformError, includedAt?: string): string =>
  `cannot read '${file}'${includedAt === undefined ? "" : ` included from ${includedAt}`} (${
    describeFsError(error)
  }); skipping it`

const unreadableTop = (top: ConfFile, error: PlatformError, warnings: Array<string>) =>
  top.requiredBy !== undefined
    ? Effect.fail(
      new NshConfError({
        file: top.path,
        line: 0,
        reason: `cannot read this file, which ${top.requiredBy} names (${
          describeFsError(error)
        }); fix or unset ${top.requiredBy}`
      })
    )
    : Effect.sync(() => {
      warnings.push(skipped(top.path, error))
    })
