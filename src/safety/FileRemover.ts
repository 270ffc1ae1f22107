/**
 * How the watchdog deletes what an abandoned job left behind: the job's files on its node (over
 * the OpenSSH client, which reads the user's ~/.ssh/config like the hook's `ssh -G` does) and the
 * hook's journal entry on this machine.
 */
import { Command, type CommandExecutor, FileSystem } from "@effect/platform"
import { Context, Data, Effect, Layer, Stream } from "effect"
import { shellCommand } from "../util/ShellQuote.js"

/** A removal that did not happen; the journal entry stays for `nsh cancel --orphans`. */
export class RemovalError extends Data.TaggedError("RemovalError")<{
  readonly where: string
  readonly reason: string
}> {
  override get message() {
    return `could not remove an abandoned job's files on ${this.where}: ${this.reason}`
  }
}

export interface FileRemoverService {
  /** `rm -f` of `paths` on `node` through `ssh [sshArgs] node`. */
  readonly removeOnNode: (
    node: string,
    paths: ReadonlyArray<string>,
    sshArgs: ReadonlyArray<string>
  ) => Effect.Effect<void, RemovalError>
  /** Removes local files; missing ones are fine. */
  readonly removeLocal: (paths: ReadonlyArray<string>) => Effect.Effect<void, RemovalError>
}

export class FileRemover extends Context.Tag("nsh/FileRemover")<FileRemover, FileRemoverService>() {}

const decoder = new TextDecoder()

const removeOnNode = (node: string, paths: ReadonlyArray<string>, sshArgs: ReadonlyArray<string>) => {
  // BatchMode: nobody is there to answer a prompt; the watchdog's stdin is /dev/null.
  const command = Command.make(
    "ssh",
    ...sshArgs,
    "-o",
    "BatchMode=yes",
    "-o",
    "ConnectTimeout=10",
    "--",
    node,
    shellCommand(["rm", "-f", "--", ...paths])
  )
  return Effect.scoped(
    Effect.gen(function*() {
      const proc = yield* Command.start(command)
      const [stderr, exitCode] = yield* Effect.all(
        [Stream.runFold(proc.stderr, "", (acc, chunk) => acc + decoder.decode(chunk, { stream: true })), proc.exitCode],
        { concurrency: "unbounded" }
      )
      if (exitCode !== 0) {
        return yield* new RemovalError({ where: node, reason: `ssh exited with ${exitCode}: ${stderr.trim()}` })
      }
    })
  ).pipe(Effect.catchTag("SystemError", "BadArgument", (e) => new RemovalError({ where: node, reason: e.message })))
}

/** The live remover: OpenSSH for the node, the local file system for this machine. */
export const FileRemoverLive: Layer.Layer<FileRemover, never, CommandExecutor.CommandExecutor | FileSystem.FileSystem> =
  Layer.effect(
    FileRemover,
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const executor = yield* Effect.context<CommandExecutor.CommandExecutor>()
      return FileRemover.of({
        removeOnNode: (node, paths, sshArgs) =>
          paths.length === 0 ? Effect.void : Effect.provide(removeOnNode(node, paths, sshArgs), executor),
        removeLocal: (paths) =>
          Effect.forEach(paths, (path) => fs.remove(path, { force: true }), { discard: true }).pipe(
            Effect.mapError((e) => new RemovalError({ where: "this machine", reason: e.message }))
          )
      })
    })
  )
