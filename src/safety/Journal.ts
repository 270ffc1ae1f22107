/**
 * The job journal: one small file per submission in `<slurm-state-dir>/journal/<tag>.json`, written
 * before the submit (the intent: derivation, tag, which hook process on which machine), updated with
 * the job id right after, removed once the build finished and cleaned up. An entry whose hook is
 * dead points at a job (or files) that may have been left behind: `nsh cancel --orphans` reads them.
 *
 * Several login nodes may share the journal (a shared home). Only the login host that wrote an
 * entry can tell whether its hook still runs, so an entry names that host: its host name, its PID
 * namespace and its boot. Two containers on one kernel share the boot id and may share a host
 * name, never a PID namespace; a pid and start time mean something only inside that namespace.
 */
import { FileSystem } from "@effect/platform"
import { Clock, Context, Data, Effect, Layer, Option, Schema } from "effect"
import * as Os from "node:os"
import { Config } from "../config/Config.js"

/** One submission, as recorded. */
export const JournalEntry = Schema.Struct({
  tag: Schema.String,
  drvPath: Schema.String,
  /** The derivation's output names: each may have a GC root on the node (see allJobFiles). */
  outputs: Schema.optionalWith(Schema.Array(Schema.String), { default: () => [] }),
  /** The machine the hook ran on: a journal in a shared home directory holds several machines' entries. */
  host: Schema.String,
  /** The hook's PID namespace (`/proc/self/ns/pid`, e.g. `pid:[4026531836]`); "" in entries of older nsh. */
  pidNamespace: Schema.optionalWith(Schema.String, { default: () => "" }),
  hookPid: Schema.Int,
  /** The hook's start time (clock ticks since boot, /proc/<pid>/stat): with bootId it tells the hook from a reused pid. */
  hookStartTicks: Schema.Number,
  bootId: Schema.String,
  /** Epoch milliseconds when the intent was recorded. */
  createdAt: Schema.Number,
  jobId: Schema.optional(Schema.Int),
  /** The job's batch host, once known. */
  node: Schema.optional(Schema.String)
})
export type JournalEntry = typeof JournalEntry.Type

const EntryJson = Schema.parseJson(JournalEntry)

/** The journal could not be written or read. */
export class JournalError extends Data.TaggedError("JournalError")<{
  readonly path: string
  readonly reason: string
}> {
  override get message() {
    return `nsh's job journal at ${this.path} is not usable: ${this.reason} (check slurm-state-dir in nsh.conf: it must be a writable directory)`
  }
}

/** Who the current process is, as an entry records it. */
export interface ProcessIdentity {
  readonly pid: number
  readonly startTicks: number
  readonly bootId: string
}

/** Field 22 of /proc/<pid>/stat (after the `(comm)`, which may contain spaces), and field 3, the state. */
const parseStat = (stat: string): Option.Option<{ readonly state: string; readonly startTicks: number }> => {
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  const startTicks = Number(fields[19])
  return fields[0] !== undefined && Number.isFinite(startTicks)
    ? Option.some({ state: fields[0], startTicks })
    : Option.none()
}

const readTrimmed = (fs: FileSystem.FileSystem, path: string) =>
  fs.readFileString(path).pipe(Effect.map((s) => s.trim()), Effect.option)

/** The pid, start time and boot id of a live process; None when it does not exist (or is a zombie). */
export const processIdentity = (
  pid: number
): Effect.Effect<Option.Option<ProcessIdentity>, never, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const stat = Option.flatMap(yield* readTrimmed(fs, `/proc/${pid}/stat`), parseStat)
    const bootId = yield* readTrimmed(fs, "/proc/sys/kernel/random/boot_id")
    if (Option.isNone(stat) || stat.value.state === "Z" || Option.isNone(bootId)) return Option.none()
    return Option.some({ pid, startTicks: stat.value.startTicks, bootId: bootId.value })
  })

/** The login host as entries name it: host name and PID namespace (the boot is the process's). */
export interface LoginHost {
  readonly host: string
  readonly pidNamespace: string
}

/** This process's login host. */
export const thisLoginHost: Effect.Effect<LoginHost, never, FileSystem.FileSystem> = Effect.gen(function*() {
  const fs = yield* FileSystem.FileSystem
  const pidNamespace = yield* fs.readLink("/proc/self/ns/pid").pipe(Effect.orElseSucceed(() => ""))
  return { host: Os.hostname(), pidNamespace }
})

/**
 * Whether `entry` was written on login host `here`. After a reboot it still was (the boot id then
 * tells its hook is dead); an entry of older nsh, without a namespace, goes by the host name.
 */
export const isEntryOf = (here: LoginHost) => (entry: JournalEntry): boolean =>
  entry.host === here.host && (entry.pidNamespace === "" || entry.pidNamespace === here.pidNamespace)

/**
 * True while the entry's hook process still runs. An entry from another login host counts as
 * alive: only that host can tell, and reaping a live build's job would break it.
 */
export const isHookAlive = (entry: JournalEntry): Effect.Effect<boolean, never, FileSystem.FileSystem> =>
  Effect.flatMap(thisLoginHost, (here) =>
    !isEntryOf(here)(entry)
      ? Effect.succeed(true)
      : Effect.map(
        processIdentity(entry.hookPid),
        Option.match({
          onNone: () => false,
          onSome: (now) => now.bootId === entry.bootId && now.startTicks === entry.hookStartTicks
        })
      ))

/** The entries `max-jobs` counts: this login host's, whose hook still runs (another host's never block). */
export const liveEntriesHere = (
  entries: ReadonlyArray<JournalEntry>
): Effect.Effect<ReadonlyArray<JournalEntry>, never, FileSystem.FileSystem> =>
  Effect.flatMap(thisLoginHost, (here) => Effect.filter(entries.filter(isEntryOf(here)), isHookAlive))

const entryFile = /^nsh-[0-9a-f]+\.json$/

/** The entries in a journal directory (none if it does not exist); unreadable files are skipped. */
export const listJournal = (
  dir: string
): Effect.Effect<ReadonlyArray<JournalEntry>, JournalError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    if (!(yield* fs.exists(dir).pipe(Effect.orElseSucceed(() => false)))) return []
    const names = yield* fs.readDirectory(dir).pipe(
      Effect.mapError((e) => new JournalError({ path: dir, reason: e.message }))
    )
    // A file may vanish between listing and reading: its build just finished.
    const entries = yield* Effect.forEach(names.filter((name) => entryFile.test(name)).sort(), (name) =>
      fs.readFileString(`${dir}/${name}`).pipe(
        Effect.flatMap(Schema.decodeUnknown(EntryJson)),
        Effect.option
      ))
    return entries.flatMap(Option.toArray)
  })

export interface JournalService {
  /** `<slurm-state-dir>/journal`. */
  readonly dir: string
  /** The file of a submission's entry (the watchdog removes it after cleaning up for a dead hook). */
  readonly fileOf: (tag: string) => string
  /** Records the intent to submit, before submitting, as this process on this machine. */
  readonly begin: (
    intent: { readonly tag: string; readonly drvPath: string; readonly outputs: ReadonlyArray<string> }
  ) => Effect.Effect<JournalEntry, JournalError>
  /** Adds what became known (the job id right after the submit, later the node). */
  readonly update: (
    tag: string,
    known: { readonly jobId?: number; readonly node?: string }
  ) => Effect.Effect<JournalEntry, JournalError>
  /** Removes the entry once the build finished and its job and files are dealt with. */
  readonly remove: (tag: string) => Effect.Effect<void, JournalError>
  readonly list: Effect.Effect<ReadonlyArray<JournalEntry>, JournalError>
}

export class Journal extends Context.Tag("nsh/Journal")<Journal, JournalService>() {}

/** A journal in `dir`, writing each entry atomically (a temp file renamed over it). */
export const makeJournal = (dir: string): Effect.Effect<JournalService, never, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const fileOf = (tag: string) => `${dir}/${tag}.json`
    const failed = (path: string) => (e: { readonly message: string }) => new JournalError({ path, reason: e.message })

    const write = (entry: JournalEntry) => {
      const file = fileOf(entry.tag)
      // Hidden and pid-suffixed: list() never reads it, and two writers never share it.
      const temp = `${dir}/.${entry.tag}.json.${process.pid}.tmp`
      return fs.makeDirectory(dir, { recursive: true }).pipe(
        Effect.zipRight(fs.writeFileString(temp, Schema.encodeSync(EntryJson)(entry))),
        Effect.zipRight(fs.rename(temp, file)),
        Effect.tapError(() => fs.remove(temp, { force: true }).pipe(Effect.ignore)),
        Effect.mapError(failed(file)),
        Effect.as(entry)
      )
    }

    const read = (tag: string) =>
      fs.readFileString(fileOf(tag)).pipe(
        Effect.flatMap(Schema.decodeUnknown(EntryJson)),
        Effect.mapError(failed(fileOf(tag)))
      )

    const begin: JournalService["begin"] = ({ drvPath, outputs, tag }) =>
      Effect.gen(function*() {
        const me = yield* Effect.provideService(processIdentity(process.pid), FileSystem.FileSystem, fs)
        if (Option.isNone(me)) return yield* new JournalError({ path: dir, reason: "cannot read /proc/self/stat" })
        const here = yield* Effect.provideService(thisLoginHost, FileSystem.FileSystem, fs)
        return yield* write({
          tag,
          drvPath,
          outputs,
          host: here.host,
          pidNamespace: here.pidNamespace,
          hookPid: me.value.pid,
          hookStartTicks: me.value.startTicks,
          bootId: me.value.bootId,
          createdAt: yield* Clock.currentTimeMillis
        })
      })

    return {
      dir,
      fileOf,
      begin,
      update: (tag, known) => Effect.flatMap(read(tag), (entry) => write({ ...entry, ...known })),
      remove: (tag) => fs.remove(fileOf(tag), { force: true }).pipe(Effect.mapError(failed(fileOf(tag)))),
      list: Effect.provideService(listJournal(dir), FileSystem.FileSystem, fs)
    }
  })

/** The journal in `<slurm-state-dir>/journal` of the loaded settings. */
export const JournalLive: Layer.Layer<Journal, never, Config | FileSystem.FileSystem> = Layer.effect(
  Journal,
  Effect.flatMap(Config, ({ settings }) => makeJournal(`${settings.slurmStateDir.replace(/\/+$/, "")}/journal`))
)
