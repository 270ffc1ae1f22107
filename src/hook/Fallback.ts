/**
 * The fallback to Nix's own build hook (build-remote) for derivations nsh declines while Nix's
 * `builders` is set: one build-remote process per session, fed the raw settings block and then
 * each declined `try` verbatim; its answer is relayed to Nix, and after an accept it takes over
 * the rest of the session (stdin forwarded, stderr relayed, its exit status is ours).
 *
 * node:child_process rather than @effect/platform's Command: build-remote must inherit Nix's
 * fds 4 and 5 (the build-log pipe), which Command cannot pass, and it must stay in our process
 * group (Command spawns detached) so that Nix's kill of the group reaches it too.
 */
import { Context, Data, Deferred, Effect, Either, Layer, Option, Queue, Scope } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import { existsSync, readFileSync, readlinkSync, realpathSync } from "node:fs"
import { basename, delimiter, dirname, join } from "node:path"
import { HookIO } from "./HookIO.js"
import { findNixLogFds } from "./NixFds.js"

/** build-remote's answer to one `try`. */
export type FallbackReply =
  | { readonly _tag: "Accept"; readonly machine: string }
  | { readonly _tag: "Decline" }
  | { readonly _tag: "Postpone" }
  | { readonly _tag: "DeclinePermanently" }

/** build-remote could not be started or stopped talking the protocol. */
export class FallbackError extends Data.TaggedError("FallbackError")<{ readonly reason: string }> {
  override get message() {
    return `nsh cannot hand this derivation to Nix's build-remote (used because Nix's 'builders' is set): ${this.reason}`
  }
}

/** A running build-remote. */
export interface FallbackProcess {
  /** Offers one `try` (its raw bytes as Nix sent them) and returns the answer. */
  readonly offer: (tryRaw: Uint8Array) => Effect.Effect<FallbackReply, FallbackError>
  /** After an accept: passes on bytes of Nix's stdin (the input and output lists). */
  readonly forward: (bytes: Uint8Array) => Effect.Effect<void>
  /** After an accept: Nix closed our stdin, so close build-remote's. */
  readonly endInput: Effect.Effect<void>
  /** After an accept: relays build-remote's stderr to ours until it exits; its exit code. */
  readonly exitCode: Effect.Effect<number>
}

export interface FallbackService {
  /** Starts build-remote and feeds it Nix's settings block; it lives as long as the scope. */
  readonly start: (settingsRaw: Uint8Array) => Effect.Effect<FallbackProcess, FallbackError, Scope.Scope>
}

export class Fallback extends Context.Tag("nsh/Fallback")<Fallback, FallbackService>() {}

/** One way to run build-remote. */
export interface FallbackCommand {
  readonly command: string
  readonly args: ReadonlyArray<string>
}

const machineEntries = (text: string) =>
  text.split(/[\n;]/).map((line) => line.replace(/#.*$/, "").trim()).filter((line) => line.length > 0)

/** Whether Nix's `builders` names a machine; `@file` counts only if the file has a non-comment line. */
export const buildersConfigured = (builders: string, readFile: (path: string) => string | undefined): boolean =>
  machineEntries(builders).some((entry) => {
    if (!entry.startsWith("@")) return true
    const content = readFile(entry.slice(1))
    return content !== undefined && machineEntries(content).length > 0
  })

/** A file's text, undefined when it cannot be read. */
export const readTextFile = (path: string): string | undefined => {
  try {
    return readFileSync(path, "utf8")
  } catch {
    return undefined
  }
}

const realPath = (path: string) => {
  try {
    return realpathSync(path)
  } catch {
    return path
  }
}

/** The Nix that started us (our parent) if it is a `nix` binary, else `nix` on PATH. */
const findNix = (): string | undefined => {
  try {
    const parent = readlinkSync(`/proc/${process.ppid}/exe`)
    if (basename(parent) === "nix") return parent
  } catch {
    // Not Linux, or the parent is gone: look on PATH.
  }
  return (process.env["PATH"] ?? "").split(delimiter)
    .map((dir) => join(dir, "nix"))
    .find((candidate) => existsSync(candidate))
}

/**
 * How to run build-remote, in order: `nix __build-remote` (Nix ≥ 2.13), then
 * `libexec/nix/build-remote` beside the nix binary (older Nix, e.g. Debian's 2.8). A candidate
 * that exits without answering its first `try` is taken as unsupported and the next one is tried.
 */
export const buildRemoteCommands = (verbosity: number): ReadonlyArray<FallbackCommand> => {
  const nix = findNix()
  if (nix === undefined) return []
  const libexec = join(dirname(realPath(nix)), "..", "libexec", "nix", "build-remote")
  return [
    { command: nix, args: ["__build-remote", String(verbosity)] },
    ...(existsSync(libexec) ? [{ command: libexec, args: [String(verbosity)] }] : [])
  ]
}

/** A spawned candidate: its stderr as lines (None = EOF) and its exit code. */
interface Child {
  readonly name: string
  readonly process: ChildProcess
  readonly lines: Queue.Queue<Option.Option<string>>
  readonly exited: Deferred.Deferred<number>
  /** It answered a `try` once, so it speaks the protocol. */
  confirmed: boolean
  /** Its stderr reached EOF. */
  ended: boolean
}

const spawnChild = (candidate: FallbackCommand, settingsRaw: Uint8Array) =>
  Effect.acquireRelease(
    Effect.gen(function*() {
      const lines = yield* Queue.unbounded<Option.Option<string>>()
      const exited = yield* Deferred.make<number>()
      const fds = findNixLogFds()
      // stdout goes straight to Nix like under Nix itself (build-remote writes nothing there);
      // fd 3 is closed; fds 4 and 5 are Nix's build-log pipe when we have it.
      const child = yield* Effect.try({
        try: () =>
          spawn(candidate.command, candidate.args, {
            stdio: ["pipe", 2, "pipe", "ignore", fds.write ?? "ignore", fds.read ?? "ignore"]
          }),
        catch: (error) => new FallbackError({ reason: `cannot run ${candidate.command}: ${String(error)}` })
      })
      let partial = ""
      const onEnd = () => {
        if (partial.length > 0) Queue.unsafeOffer(lines, Option.some(partial))
        partial = ""
        Queue.unsafeOffer(lines, Option.none())
      }
      child.stderr?.setEncoding("utf8")
      child.stderr?.on("data", (text: string) => {
        const parts = (partial + text).split("\n")
        partial = parts.pop() ?? ""
        for (const line of parts) Queue.unsafeOffer(lines, Option.some(line))
      })
      child.stderr?.on("end", onEnd)
      // EPIPE when it exited before reading everything: its exit is reported through `close`.
      child.stdin?.on("error", () => {})
      child.on("error", (error) => {
        Queue.unsafeOffer(lines, Option.some(`nsh: cannot run ${candidate.command}: ${error.message}`))
        onEnd()
        Deferred.unsafeDone(exited, Effect.succeed(127))
      })
      child.on("close", (code) => Deferred.unsafeDone(exited, Effect.succeed(code ?? 1)))
      child.stdin?.write(settingsRaw)
      const it: Child = {
        name: [candidate.command, ...candidate.args].join(" "),
        process: child,
        lines,
        exited,
        confirmed: false,
        ended: false
      }
      return it
    }),
    // Idle build-remote exits on EOF; if it does not within a second, kill it.
    (child) =>
      Effect.sync(() => child.process.stdin?.end()).pipe(
        Effect.zipRight(Deferred.await(child.exited).pipe(Effect.timeoutOption("1 second"))),
        Effect.tap((exit) => Effect.sync(() => Option.isNone(exit) && child.process.kill("SIGKILL")))
      )
  )

const nextLine = (child: Child): Effect.Effect<Option.Option<string>> =>
  child.ended
    ? Effect.succeed(Option.none())
    : Queue.take(child.lines).pipe(Effect.tap((line) => {
      child.ended = Option.isNone(line)
    }))

const replies: Record<string, FallbackReply | undefined> = {
  "decline": { _tag: "Decline" },
  "postpone": { _tag: "Postpone" },
  "decline-permanently": { _tag: "DeclinePermanently" }
}

/** A Fallback running the first working command of `commands` (computed when first needed). */
export const makeFallback = (commands: () => ReadonlyArray<FallbackCommand>): Layer.Layer<Fallback, never, HookIO> =>
  Layer.effect(
    Fallback,
    Effect.gen(function*() {
      const io = yield* HookIO
      return Fallback.of({
        start: (settingsRaw) =>
          Effect.gen(function*() {
            const scope = yield* Effect.scope
            const remaining = [...commands()]
            const failures: Array<string> = []
            let current: Child | undefined

            const candidate = Effect.gen(function*() {
              while (current === undefined) {
                const next = remaining.shift()
                if (next === undefined) {
                  return yield* new FallbackError({
                    reason: failures.length === 0 ? "no `nix` binary found on PATH" : failures.join("; ")
                  })
                }
                const spawned = yield* spawnChild(next, settingsRaw).pipe(Scope.extend(scope), Effect.either)
                if (Either.isLeft(spawned)) failures.push(spawned.left.reason)
                else current = spawned.right
              }
              return current
            })

            // Reads lines up to the `# ` reply; lines before it go to Nix (held back until a new
            // candidate proved it speaks the protocol, so "unknown command" noise is not shown).
            const awaitReply = (child: Child) =>
              Effect.gen(function*() {
                const held: Array<string> = []
                for (;;) {
                  const line = yield* nextLine(child)
                  if (Option.isNone(line)) return { reply: Option.none<string>(), held }
                  if (line.value.startsWith("# ")) {
                    if (!child.confirmed) yield* Effect.forEach(held, (l) => io.write(`${l}\n`), { discard: true })
                    child.confirmed = true
                    return { reply: Option.some(line.value.slice(2)), held }
                  }
                  if (child.confirmed) yield* io.write(`${line.value}\n`)
                  else held.push(line.value)
                }
              })

            const offer = (tryRaw: Uint8Array): Effect.Effect<FallbackReply, FallbackError> =>
              Effect.gen(function*() {
                for (;;) {
                  const child = yield* candidate
                  child.process.stdin?.write(tryRaw)
                  const { held, reply } = yield* awaitReply(child)
                  if (Option.isNone(reply)) {
                    const code = yield* Deferred.await(child.exited)
                    current = undefined
                    const said = held.length === 0 ? "" : ` (${held.slice(-3).join(" / ")})`
                    if (child.confirmed) {
                      return yield* new FallbackError({ reason: `${child.name} exited with code ${code}${said}` })
                    }
                    failures.push(`${child.name} exited with code ${code} without answering${said}`)
                    continue
                  }
                  if (reply.value === "accept") {
                    const machine = yield* nextLine(child)
                    if (Option.isNone(machine)) {
                      return yield* new FallbackError({ reason: `${child.name} accepted but named no machine` })
                    }
                    return { _tag: "Accept", machine: machine.value } as const
                  }
                  const known = replies[reply.value]
                  if (known === undefined) {
                    return yield* new FallbackError({ reason: `${child.name} replied '${reply.value}'` })
                  }
                  return known
                }
              })

            const accepted = Effect.suspend(() =>
              current === undefined ? Effect.dieMessage("Fallback used before an accept") : Effect.succeed(current)
            )
            return {
              offer,
              forward: (bytes) => Effect.map(accepted, (child) => void child.process.stdin?.write(bytes)),
              endInput: Effect.map(accepted, (child) => void child.process.stdin?.end()),
              exitCode: Effect.gen(function*() {
                const child = yield* accepted
                for (;;) {
                  const line = yield* nextLine(child)
                  if (Option.isNone(line)) break
                  yield* io.write(`${line.value}\n`)
                }
                return yield* Deferred.await(child.exited)
              })
            } satisfies FallbackProcess
          })
      })
    })
  )

/** build-remote of the Nix that runs us. */
export const FallbackLive = (verbosity: number): Layer.Layer<Fallback, never, HookIO> =>
  makeFallback(() => buildRemoteCommands(verbosity))
