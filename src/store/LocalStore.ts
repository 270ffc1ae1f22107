/**
 * Operations on the local store (the one the parent Nix builds into), through nix-store.
 */
import { Command, type CommandExecutor, FileSystem } from "@effect/platform"
import { Effect, Option, Stream } from "effect"
import { nixStoreArgv, realPathIn, type StoreTarget } from "./StoreCommands.js"
import { StoreCommandError } from "./StoreErrors.js"

const where = "this machine"

const decoder = new TextDecoder()

/** Runs a local nix-store call to completion, returning stdout; a non-zero exit is an error. */
const run = (target: StoreTarget, args: ReadonlyArray<string>, stdin?: Stream.Stream<Uint8Array>) => {
  const argv = nixStoreArgv(target, args)
  const label = argv.slice(0, 3).join(" ")
  const base = Command.make(argv[0]!, ...argv.slice(1))
  const command = stdin === undefined ? base : Command.stdin(base, stdin)
  return Effect.scoped(
    Effect.gen(function*() {
      const proc = yield* Command.start(command)
      const [stdout, stderr, exitCode] = yield* Effect.all(
        [collect(proc.stdout), collect(proc.stderr), proc.exitCode],
        { concurrency: "unbounded" }
      )
      if (exitCode !== 0) {
        return yield* new StoreCommandError({ where, command: label, exitCode, stderr })
      }
      return stdout
    })
  ).pipe(
    Effect.catchTag(
      "SystemError",
      "BadArgument",
      (e) => new StoreCommandError({ where, command: label, exitCode: -1, stderr: e.message })
    )
  )
}

const collect = <E>(stream: Stream.Stream<Uint8Array, E>) =>
  Stream.runFold(stream, "", (acc, chunk) => acc + decoder.decode(chunk, { stream: true }))

const lines = (text: string) => text.split("\n").filter((l) => l.length > 0)

/** The closure of `paths`, dependencies before dependents (nix-store -qR order). */
export const requisites = (target: StoreTarget, paths: ReadonlyArray<string>) =>
  paths.length === 0 ? Effect.succeed([] as Array<string>) : run(target, ["-qR", ...paths]).pipe(Effect.map(lines))

/** The derivation that built `path`, if the store records one (`nix-store --query --deriver`). */
export const deriver = (target: StoreTarget, path: string) =>
  run(target, ["--query", "--deriver", path]).pipe(
    Effect.map((out) => Option.liftPredicate(out.trim(), (d) => d.endsWith(".drv")))
  )

/** The subset of `paths` that is not valid in the store. */
export const invalidPaths = (target: StoreTarget, paths: ReadonlyArray<string>) =>
  paths.length === 0
    ? Effect.succeed([] as Array<string>)
    : run(target, ["--check-validity", "--print-invalid", ...paths]).pipe(Effect.map(lines))

/** `nix-store --export` of `paths` as a byte stream (for `nix-store --import` on a node). */
export const exportStream = (
  target: StoreTarget,
  paths: ReadonlyArray<string>
): Stream.Stream<Uint8Array, StoreCommandError, CommandExecutor.CommandExecutor> => {
  const argv = nixStoreArgv(target, ["--export", ...paths])
  return Command.stream(Command.make(argv[0]!, ...argv.slice(1))).pipe(
    Stream.mapError((e) =>
      new StoreCommandError({ where, command: "nix-store --export", exitCode: -1, stderr: e.message })
    )
  )
}

/**
 * Unpacks a NAR at `path` without taking the output lock the parent Nix holds on it
 * (nix-hook-protocol §4.4: the portable lock-free way to deliver hook outputs). `--restore`
 * writes the file system, ignoring `--store`: in a store under another root (a user's chroot
 * store) the path goes where that store keeps it.
 */
export const restore = (target: StoreTarget, path: string, nar: Stream.Stream<Uint8Array>) =>
  run(target, ["--restore", realPathIn(target, path)], nar).pipe(Effect.asVoid)

/**
 * Removes what an interrupted or failed `restore` left at `path`, if the path is still invalid:
 * nothing refers to it, and a later build would have to delete it first anyway.
 */
export const discardPartial = (target: StoreTarget, path: string) =>
  invalidPaths(target, [path]).pipe(
    Effect.flatMap((invalid) =>
      invalid.includes(path)
        ? Effect.flatMap(
          FileSystem.FileSystem,
          (fs) => fs.remove(realPathIn(target, path), { recursive: true, force: true })
        )
        : Effect.void
    ),
    Effect.interruptible,
    Effect.timeoutOption("10 seconds"),
    Effect.ignore
  )

/** One path to register: its deriver and references (which must be valid or in the same batch). */
export interface ValidityEntry {
  readonly path: string
  readonly deriver: string
  readonly references: ReadonlyArray<string>
}

/**
 * Gives a restored path the metadata of a store path (read-only, mtime 1), as Nix's
 * `--register-validity` would, for a store under another root, where Nix cannot do it (below).
 */
export const canonicalise = (target: StoreTarget, path: string) =>
  Effect.gen(function*() {
    const real = realPathIn(target, path)
    const steps = [
      ["find", real, "!", "-type", "l", "-perm", "-u+x", "-exec", "chmod", "0555", "{}", "+"],
      ["find", real, "!", "-type", "l", "!", "-perm", "-u+x", "-exec", "chmod", "0444", "{}", "+"],
      ["find", real, "-exec", "touch", "-h", "-d", "@1", "{}", "+"]
    ]
    for (const [command, ...args] of steps) {
      const exitCode = yield* Command.exitCode(Command.make(command!, ...args))
      if (exitCode !== 0) {
        return yield* new StoreCommandError({ where, command: `${command} ${real}`, exitCode, stderr: "" })
      }
    }
  }).pipe(
    Effect.catchTag(
      "SystemError",
      "BadArgument",
      (e) => new StoreCommandError({ where, command: "find", exitCode: -1, stderr: e.message })
    )
  )

/**
 * Registers paths whose NAR hash and size are known (the node's), with `nix-store --load-db`.
 * `--register-validity` hashes and canonicalises each path at its logical name (`/nix/store/…`)
 * whatever `--store` says (nix-store.cc, registerValidity), so it fails for a store under another
 * root, such as a user's chroot store; `--load-db` takes the hashes as given and touches no file.
 */
export const loadDb = (
  target: StoreTarget,
  entries: ReadonlyArray<ValidityEntry & { readonly narHash: string; readonly narSize: string }>
) => {
  const text = entries
    .map((e) =>
      [e.path, e.narHash, e.narSize, e.deriver, String(e.references.length), ...e.references].join("\n") + "\n"
    )
    .join("")
  return run(target, ["--load-db"], Stream.make(new TextEncoder().encode(text))).pipe(Effect.asVoid)
}

/** `nix-store --register-validity` without `--hash-given`: Nix hashes and canonicalises the paths. */
export const registerValidity = (target: StoreTarget, entries: ReadonlyArray<ValidityEntry>) => {
  const text = entries
    .map((e) => [e.path, e.deriver, String(e.references.length), ...e.references].join("\n") + "\n")
    .join("")
  return run(target, ["--register-validity"], Stream.make(new TextEncoder().encode(text))).pipe(Effect.asVoid)
}
