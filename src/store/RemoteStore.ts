/**
 * Operations on a node's store, over an SSH connection to that node.
 */
import { Effect, type Stream } from "effect"
import type { SshConnection } from "../ssh/SshSession.js"
import { nixStoreCommand, realPathIn, type StoreTarget } from "./StoreCommands.js"
import { StoreCommandError } from "./StoreErrors.js"

const decoder = new TextDecoder()

const lines = (text: string) => text.split("\n").filter((l) => l.length > 0)

/** Runs a nix-store call on the node; a non-zero exit is a StoreCommandError naming the node. */
const run = (
  conn: SshConnection,
  target: StoreTarget,
  args: ReadonlyArray<string>,
  stdin?: Stream.Stream<Uint8Array, unknown>
) => {
  const command = nixStoreCommand(target, args)
  return conn.exec(command, stdin).pipe(
    Effect.flatMap((result) =>
      result.exitCode === 0
        ? Effect.succeed(decoder.decode(result.stdout))
        : Effect.fail(
          new StoreCommandError({
            where: conn.host,
            command: `nix-store ${args[0] ?? ""}`,
            exitCode: result.exitCode,
            stderr: hintFor(result.exitCode, decoder.decode(result.stderr), target)
          })
        )
    )
  )
}

/** Turns "command not found" into the setting a user should look at. */
const hintFor = (exitCode: number, stderr: string, target: StoreTarget) =>
  exitCode === 127
    ? `${stderr.trim()} (nix-store is not on the node's PATH${
      target.binDir === "" ? "" : ` nor in ${target.binDir}`
    }: set remote-nix-bin-dir in nsh.conf)`
    : stderr

/** The subset of `paths` the node's store lacks. */
export const invalidPaths = (conn: SshConnection, target: StoreTarget, paths: ReadonlyArray<string>) =>
  paths.length === 0
    ? Effect.succeed([] as Array<string>)
    : run(conn, target, ["--check-validity", "--print-invalid", ...paths]).pipe(Effect.map(lines))

/** Lets the node fetch what it can from its own substituters (builders-use-substitutes). */
export const substitute = (conn: SshConnection, target: StoreTarget, paths: ReadonlyArray<string>) =>
  paths.length === 0
    ? Effect.void
    : run(conn, target, ["--realise", "--ignore-unknown", ...paths]).pipe(Effect.ignore)

/** Imports a `nix-store --export` stream into the node's store. */
export const importStream = (conn: SshConnection, target: StoreTarget, stream: Stream.Stream<Uint8Array, unknown>) =>
  run(conn, target, ["--import"], stream).pipe(Effect.map(lines))

/** The references of a path in the node's store. */
export const references = (conn: SshConnection, target: StoreTarget, path: string) =>
  run(conn, target, ["--query", "--references", path]).pipe(Effect.map(lines))

/** The NAR hash (`sha256:…`) and size of a path valid in the node's store. */
export const narHashAndSize = (conn: SshConnection, target: StoreTarget, path: string) =>
  Effect.all([
    run(conn, target, ["--query", "--hash", path]),
    run(conn, target, ["--query", "--size", path])
  ]).pipe(Effect.map(([hash, size]) => ({ narHash: hash.trim(), narSize: size.trim() })))

/** The NAR of a path in the node's store, as a stream (closed with the scope). */
export const dump = (conn: SshConnection, target: StoreTarget, path: string) =>
  conn.spawn(nixStoreCommand(target, ["--dump", realPathIn(target, path)]))

/** Garbage-collects the node's store (collect-garbage = true). */
export const collectGarbage = (conn: SshConnection, target: StoreTarget) =>
  run(conn, target, ["--gc"]).pipe(Effect.asVoid)
