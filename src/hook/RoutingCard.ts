/**
 * The routing card: what the hook's front (Front.ts) needs to decline a derivation without loading
 * nsh.conf's decoder — the routing settings, and the files they came from with their stat, so
 * that any change to them (or a file appearing where none was) sends the front to the full path,
 * which writes a new card. Plain node:fs, no Effect: the front must start in a few milliseconds.
 */
import { createHash } from "node:crypto"
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { type ConfigEnv, configFiles } from "../config/ConfigFiles.js"
import type { LoadedSettings } from "../config/Settings.js"
import type { RoutingSettings } from "../dispatch/Routing.js"

/** A file the settings were read from, as it was when they were read. */
interface Watched {
  readonly path: string
  readonly ino: number
  readonly size: number
  readonly mtimeMs: number
  readonly ctimeMs: number
  readonly mode: number
}

export interface RoutingCard {
  readonly version: 1
  /** configFiles(env) when written: another environment looks for other files. */
  readonly candidates: ReadonlyArray<string>
  readonly watched: ReadonlyArray<Watched>
  readonly absent: ReadonlyArray<string>
  readonly routing: RoutingSettings
}

const candidatesOf = (env: ConfigEnv) => configFiles(env).map((f) => `${f.requiredBy ?? ""}:${f.path}`)

/** One card per set of files looked for: hooks started with another NSH_CONF keep their own. */
const cardFile = (dir: string, candidates: ReadonlyArray<string>) =>
  join(dir, `hook-routing-${createHash("sha256").update(candidates.join("\n")).digest("hex").slice(0, 16)}.json`)

const watch = (path: string): Watched => {
  const s = statSync(path)
  return { path, ino: s.ino, size: s.size, mtimeMs: s.mtimeMs, ctimeMs: s.ctimeMs, mode: s.mode }
}

/**
 * The card for settings loaded at `now`; none when they carry warnings (the full path reports them
 * with the first answer) or a file changed in the last 2 s (it may have changed after it was read,
 * and a time stamp's granularity could hide the next change).
 */
export const cardFor = (loaded: LoadedSettings, env: ConfigEnv, now: number): RoutingCard | undefined => {
  if (loaded.warnings.length > 0) return undefined
  const token = loaded.settings.slurmJwtTokenFile
  const watched = [...loaded.files, ...(token === "" ? [] : [token])].map(watch)
  if (watched.some((w) => w.ctimeMs > now - 2000 || w.mtimeMs > now - 2000)) return undefined
  const { mandatorySystemFeatures, system, systemFeatures } = loaded.settings
  return {
    version: 1,
    candidates: candidatesOf(env),
    watched,
    absent: loaded.absent,
    routing: { system, systemFeatures, mandatorySystemFeatures }
  }
}

/** Writes the card whole (rename), in a directory only this user can enter. */
export const writeCard = (dir: string, card: RoutingCard): void => {
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  const file = cardFile(dir, card.candidates)
  writeFileSync(`${file}.${process.pid}`, JSON.stringify(card), { mode: 0o600 })
  renameSync(`${file}.${process.pid}`, file)
}

const unchanged = (w: Watched) => {
  try {
    const now = watch(w.path)
    return now.ino === w.ino && now.size === w.size && now.mtimeMs === w.mtimeMs && now.ctimeMs === w.ctimeMs &&
      now.mode === w.mode
  } catch {
    return false
  }
}

const stillAbsent = (path: string) => {
  try {
    statSync(path)
    return false
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "ENOENT"
  }
}

const strings = (x: unknown): x is ReadonlyArray<string> => Array.isArray(x) && x.every((s) => typeof s === "string")

/** Our own file, but checked field by field: a card from another nsh version is simply not used. */
const isCard = (x: unknown): x is RoutingCard => {
  const c = x as Partial<RoutingCard> | null
  return typeof c === "object" && c !== null && c.version === 1 && strings(c.candidates) && strings(c.absent) &&
    Array.isArray(c.watched) && c.watched.every((w) => typeof w?.path === "string") &&
    typeof c.routing?.system === "string" && strings(c.routing.systemFeatures) &&
    strings(c.routing.mandatorySystemFeatures)
}

/** The card's routing settings if nothing they depend on changed since it was written; else undefined. */
export const readFreshCard = (dir: string, env: ConfigEnv): RoutingSettings | undefined => {
  const candidates = candidatesOf(env)
  let card: unknown
  try {
    card = JSON.parse(readFileSync(cardFile(dir, candidates), "utf8"))
  } catch {
    return undefined
  }
  if (!isCard(card)) return undefined
  const sameCandidates = candidates.length === card.candidates.length &&
    candidates.every((c, i) => c === card.candidates[i])
  return sameCandidates && card.watched.every(unchanged) && card.absent.every(stillAbsent) ? card.routing : undefined
}
