/**
 * Polling shared by every hook of this user on this machine: each hook polls its job as before
 * (Lifecycle.ts, same schedule, same decisions), but an observation comes from a shared snapshot
 * in a per-user directory whenever one was taken after this hook's previous look at that job.
 * Otherwise the hook takes the directory's lock and refreshes the snapshot for every job some hook
 * asked about in the last few seconds — with one GET /jobs when there are several, GET /job/{id}
 * when there is one (slurmrestd has no query for a list of ids in any version, v0.0.38–v0.0.45).
 * So slurmrestd sees about one state query per interval, not one per build.
 */
import { Clock, Effect, Layer } from "effect"
import {
  closeSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync
} from "node:fs"
import { join } from "node:path"
import { Config } from "../config/Config.js"
import type { ConfigEnv } from "../config/ConfigFiles.js"
import type { Settings } from "../config/Settings.js"
import type { JobInfo } from "./JobSpec.js"
import { SlurmApi, type SlurmApiService } from "./SlurmApi.js"

/** A want older than this is a hook that stopped asking (it ended, or died). */
const wantLifetime = 10_000
/** How long a poll waits for another hook's refresh before asking slurmrestd itself. */
const lockPatience = 2_000
/** A lock older than this was left by a hook that died while refreshing. */
const lockLifetime = 30_000

interface Snapshot {
  /** When the refresh that took it started (ms): every state in it is at least that recent. */
  readonly takenAt: number
  readonly jobs: Readonly<Record<string, JobInfo>>
}

const readJson = <A>(file: string): A | undefined => {
  try {
    return JSON.parse(readFileSync(file, "utf8")) as A
  } catch {
    return undefined
  }
}

const writeWhole = (file: string, text: string) => {
  writeFileSync(`${file}.${process.pid}`, text, { mode: 0o600 })
  renameSync(`${file}.${process.pid}`, file)
}

/**
 * `inner`'s getJob through the snapshot in `dir`; `owner` names this process's wants (its pid in
 * production). Everything else goes straight to `inner`.
 */
export const sharedPolls = (inner: SlurmApiService, dir: string, owner: string): Effect.Effect<SlurmApiService> =>
  Effect.gen(function*() {
    yield* Effect.sync(() => mkdirSync(dir, { recursive: true, mode: 0o700 }))
    const snapshotFile = join(dir, "states.json")
    const lockFile = join(dir, "lock")
    /** When the observation this process last returned for each job was taken. */
    const lastLook = new Map<number, number>()

    /**
     * The job in a snapshot newer than this process's last look at it. For the first look any
     * snapshot holding the job will do (it was taken after the submit): twenty hooks that have just
     * submitted then share one refresh instead of taking the lock one after another.
     */
    const fresh = (jobId: number): { info: JobInfo; takenAt: number } | undefined => {
      const snapshot = readJson<Snapshot>(snapshotFile)
      const last = lastLook.get(jobId)
      const newEnough = snapshot !== undefined && (last === undefined || snapshot.takenAt > last)
      const info = newEnough ? snapshot.jobs[String(jobId)] : undefined
      return info === undefined ? undefined : { info, takenAt: snapshot!.takenAt }
    }

    const wanted = (now: number): ReadonlyArray<number> =>
      readdirSync(dir).flatMap((name) => {
        const m = /^want-(.+)-(\d+)$/.exec(name)
        if (m === null) return []
        const at = Number(readJson<number>(join(dir, name)) ?? 0)
        if (now - at > wantLifetime) {
          rmSync(join(dir, name), { force: true })
          return []
        }
        return [Number(m[2])]
      })

    const tryLock = (now: number): boolean => {
      try {
        closeSync(openSync(lockFile, "wx", 0o600))
        return true
      } catch {
        // Held: by a live refresher, or by one that died (then it is taken over).
        try {
          if (now - statSync(lockFile).mtimeMs > lockLifetime) rmSync(lockFile, { force: true })
        } catch {
          // Gone meanwhile.
        }
        return false
      }
    }

    /** One refresh for every wanted job; the caller's own job is asked for by id if the list lacks it. */
    const refresh = (jobId: number, takenAt: number) =>
      Effect.gen(function*() {
        const ids = new Set([...wanted(takenAt), jobId])
        const jobs: Record<string, JobInfo> = {}
        if (ids.size > 1) {
          // A list that fails (or holds a record nsh cannot decode) costs only the sharing.
          const listed = yield* inner.listJobs.pipe(Effect.orElseSucceed((): ReadonlyArray<JobInfo> => []))
          for (const job of listed) if (ids.has(job.jobId)) jobs[String(job.jobId)] = job
        }
        // A job the list lacks (purged, or not this user's) keeps getJob's own answer and errors.
        const own = jobs[String(jobId)] ?? (yield* inner.getJob(jobId))
        jobs[String(jobId)] = own
        yield* Effect.sync(() => writeWhole(snapshotFile, JSON.stringify({ takenAt, jobs } satisfies Snapshot)))
        return own
      })

    const getJob = (jobId: number) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        yield* Effect.sync(() => writeWhole(join(dir, `want-${owner}-${jobId}`), String(now)))
        for (;;) {
          const shared = yield* Effect.sync(() => fresh(jobId))
          if (shared !== undefined) {
            lastLook.set(jobId, shared.takenAt)
            return shared.info
          }
          const takenAt = yield* Clock.currentTimeMillis
          if (yield* Effect.sync(() => tryLock(takenAt))) {
            const own = yield* refresh(jobId, takenAt).pipe(
              Effect.ensuring(Effect.sync(() => rmSync(lockFile, { force: true })))
            )
            lastLook.set(jobId, takenAt)
            return own
          }
          // Another hook is refreshing: its snapshot will most likely do for this job too. One
          // that takes too long (slurmrestd slow, or the holder died) must not stall this poll.
          if (takenAt - now > lockPatience) return yield* inner.getJob(jobId)
          yield* Effect.sleep("20 millis")
        }
      }).pipe(
        // A snapshot directory that cannot be used costs only the sharing.
        Effect.catchAllDefect(() => inner.getJob(jobId))
      )

    return { ...inner, getJob }
  })

/**
 * Where this user's hooks share their polls of one slurmrestd: the per-user runtime directory
 * (XDG_RUNTIME_DIR), else bin/nsh's per-user cache directory (NSH_CACHE_DIR); none: no sharing.
 */
export const pollsDirectory = (settings: Settings, env: ConfigEnv): string | undefined => {
  const base = env["XDG_RUNTIME_DIR"] ? join(env["XDG_RUNTIME_DIR"], "nsh") : env["NSH_CACHE_DIR"] || undefined
  return base === undefined ? undefined : join(base, `polls-${settings.slurmApiHost}-${settings.slurmApiPort}`)
}

/**
 * SlurmApi with shared polling; the wants are this process's. Without a directory, or one that
 * cannot be made, polling stays per process, as without this layer.
 */
export const SharedPollsLive: Layer.Layer<SlurmApi, never, SlurmApi | Config> = Layer.effect(
  SlurmApi,
  Effect.gen(function*() {
    const inner = yield* SlurmApi
    const dir = pollsDirectory((yield* Config).settings, process.env)
    if (dir === undefined) return inner
    return yield* sharedPolls(inner, dir, String(process.pid)).pipe(
      Effect.catchAllDefect(() => Effect.succeed(inner))
    )
  })
)
