/**
 * A SlurmApi that sends nothing: it renders and records submissions (for `nsh --dry-run` and
 * tests) and refuses every call that would need an answer from slurmrestd.
 */
import { Context, Effect, Layer, Ref } from "effect"
import { Config } from "../config/Config.js"
import { slurmEndpoint } from "../config/Endpoint.js"
import type { Settings } from "../config/Settings.js"
import { type ApiVersion, ApiVersions, submitBody } from "./dialects/index.js"
import { SlurmApi } from "./SlurmApi.js"
import { SlurmUnreachable } from "./SlurmErrors.js"

/** The version whose body is shown when slurm-api-version = auto (every version accepts it). */
export const AutoRenderVersion: ApiVersion = "v0.0.38"

/** The API version a dry run renders for, and why. */
export interface RenderVersion {
  readonly version: ApiVersion
  /** Set when the real run would negotiate the version with the server. */
  readonly note: string | undefined
}

/** Picks the version to render for from slurm-api-version. */
export const renderVersion = (setting: string): RenderVersion => {
  const pinned = ApiVersions.find((v) => v === setting)
  return pinned !== undefined
    ? { version: pinned, note: undefined }
    : {
      version: AutoRenderVersion,
      note:
        `slurm-api-version = ${setting}: a real run uses the newest version the server offers; shown in the ${AutoRenderVersion} shape, which every version from v0.0.38 to v0.0.45 accepts`
    }
}

/** One submission the recording API received. */
export interface RecordedSubmission {
  readonly url: string
  readonly body: Record<string, unknown>
}

/** The submissions recorded so far, oldest first. */
export class RecordedSubmissions extends Context.Tag("nsh/RecordedSubmissions")<
  RecordedSubmissions,
  Ref.Ref<ReadonlyArray<RecordedSubmission>>
>() {}

const make = (settings: Settings, recorded: Ref.Ref<ReadonlyArray<RecordedSubmission>>) => {
  const { version } = renderVersion(settings.slurmApiVersion)
  const base = `${slurmEndpoint(settings).url}/slurm/${version}`
  const refuse = (operation: string) =>
    new SlurmUnreachable({ url: base, reason: `${operation} was not sent: a dry run contacts nothing` })
  return SlurmApi.of({
    apiVersion: Effect.succeed(version),
    renderSubmission: (spec) => Effect.succeed(submitBody(version, spec)),
    ping: Effect.fail(refuse("ping")),
    submit: (spec) =>
      Ref.updateAndGet(recorded, (all) => [...all, { url: `${base}/job/submit`, body: submitBody(version, spec) }])
        .pipe(
          // Job ids count from 1 so a test can tell submissions apart.
          Effect.map((all) => ({ jobId: all.length, warnings: ["dry run: nothing was sent to slurmrestd"] }))
        ),
    getJob: (jobId) => Effect.fail(refuse(`GET job ${jobId}`)),
    cancel: (jobId) => Effect.fail(refuse(`cancelling job ${jobId}`)),
    listJobs: Effect.fail(refuse("listing jobs"))
  })
}

/** SlurmApi that records submissions in RecordedSubmissions instead of sending them. */
export const SlurmApiRecording: Layer.Layer<SlurmApi | RecordedSubmissions, never, Config> = Layer.effectContext(
  Effect.gen(function*() {
    const { settings } = yield* Config
    const recorded = yield* Ref.make<ReadonlyArray<RecordedSubmission>>([])
    return Context.make(RecordedSubmissions, recorded).pipe(Context.add(SlurmApi, make(settings, recorded)))
  })
)
