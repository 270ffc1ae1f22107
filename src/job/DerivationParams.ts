/**
 * What a derivation may ask of its job. Under a Nix daemon every local user's derivation chooses
 * fields of a job submitted with the service account's token, so by default a derivation chooses
 * resources and placement only (never identity: user_id, current_working_directory, the script's
 * environment); nsh.conf's `slurm-derivation-params` widens or narrows the list. nsh.conf's own
 * params (slurm-feature-params, slurm-extra-submission-params) are not restricted.
 */
import type { ApiVersion } from "../slurm/dialects/index.js"
import type { JsonObject } from "../util/Json.js"

// `comment` is combined with nsh's tag and `environment` merged into nsh's (see Submission.ts).
const everywhere = [
  "account",
  "comment",
  "constraints",
  "cpus_per_task",
  "environment",
  "memory_per_cpu",
  "memory_per_node",
  "nodes",
  "partition",
  "qos",
  "time_limit",
  "time_minimum"
]

// From v0.0.39 GPUs and other TRES are asked for with tres_per_* (gres and gpus* are gone).
const tres = [
  "cpus_per_tres",
  "maximum_nodes",
  "memory_per_tres",
  "minimum_nodes",
  "shared",
  "tres_per_job",
  "tres_per_node",
  "tres_per_socket",
  "tres_per_task"
]

/** The keys a derivation's extraSlurmParams may set when slurm-derivation-params is `default`. */
export const DefaultDerivationParams: Readonly<Record<ApiVersion, ReadonlyArray<string>>> = {
  "v0.0.38": [...everywhere, "exclusive", "gpus", "gpus_per_node", "gpus_per_task", "gres"].sort(),
  "v0.0.39": [...everywhere, ...tres, "exclusive"].sort(),
  "v0.0.40": [...everywhere, ...tres, "exclusive"].sort(),
  "v0.0.41": [...everywhere, ...tres, "exclusive"].sort(),
  // `exclusive` is gone from v0.0.42 on: `shared` (e.g. ["none"]) says it.
  "v0.0.42": [...everywhere, ...tres].sort(),
  "v0.0.43": [...everywhere, ...tres].sort(),
  "v0.0.44": [...everywhere, ...tres].sort(),
  "v0.0.45": [...everywhere, ...tres].sort()
}

/**
 * The keys derivations may set under `version`: slurm-derivation-params read in order, `default`
 * adding the version's defaults, `-key` removing a key, any other word adding it.
 */
export const allowedDerivationParams = (
  version: ApiVersion,
  setting: ReadonlyArray<string>
): ReadonlySet<string> => {
  const allowed = new Set<string>()
  for (const word of setting) {
    if (word === "default") DefaultDerivationParams[version].forEach((key) => allowed.add(key))
    else if (word.startsWith("-")) allowed.delete(word.slice(1))
    else allowed.add(word)
  }
  return allowed
}

// Variables that change what the job runs or how (the loader, the shell, Nix, Slurm, nsh itself);
// the exact names are glibc's list of variables it drops for set-uid programs, plus the shell's.
const protectedNames = new Set([
  "BASH_ENV",
  "CDPATH",
  "ENV",
  "GCONV_PATH",
  "GETCONF_DIR",
  "GLIBC_TUNABLES",
  "HOME",
  "HOSTALIASES",
  "IFS",
  "LOCALDOMAIN",
  "LOCPATH",
  "MALLOC_TRACE",
  "NIS_PATH",
  "NLSPATH",
  "PATH",
  "RESOLV_HOST_CONF",
  "RES_OPTIONS",
  "SHELL",
  "SHELLOPTS",
  "TMPDIR",
  "TZDIR"
])
const protectedPrefixes = ["LD_", "NIX_", "NSH_", "SLURM_", "BASH_FUNC_"]

/** Whether a derivation is refused the environment variable `name` (nsh.conf may set it). */
export const isProtectedVariable = (name: string): boolean =>
  protectedNames.has(name) || protectedPrefixes.some((prefix) => name.startsWith(prefix))

/** Shown with a refused variable: what the protected ones are. */
export const ProtectedVariablesHelp = "PATH, HOME, SHELL, IFS, TMPDIR, LD_*, NIX_*, SLURM_*, NSH_* and the like"

/**
 * A job's `environment` as written in any API version's shape: an object of strings, or a list
 * of `NAME=value` strings. The Left says what is wrong with it.
 */
export const environmentEntries = (value: unknown): Readonly<Record<string, string>> | string => {
  const entries: Record<string, string> = {}
  if (Array.isArray(value)) {
    for (const item of value) {
      const eq = typeof item === "string" ? item.indexOf("=") : -1
      if (typeof item !== "string" || eq < 1) {
        return `environment entry ${JSON.stringify(item)} is not a "NAME=value" string`
      }
      entries[item.slice(0, eq)] = item.slice(eq + 1)
    }
    return entries
  }
  if (typeof value !== "object" || value === null) {
    return `environment is ${JSON.stringify(value)}, not an object of strings or a list of "NAME=value"`
  }
  for (const [name, v] of Object.entries(value)) {
    if (typeof v !== "string") return `environment.${name} is ${JSON.stringify(v)}, not a string`
    entries[name] = v
  }
  return entries
}

/**
 * Why a derivation's extraSlurmParams may not be submitted under `version`, if it may not: a key
 * outside slurm-derivation-params, or an environment variable that only nsh.conf may set.
 */
export const derivationParamsProblem = (
  params: JsonObject,
  version: ApiVersion,
  setting: ReadonlyArray<string>
): string | undefined => {
  const allowed = allowedDerivationParams(version, setting)
  const refused = Object.keys(params).filter((key) => !allowed.has(key))
  if (refused.length > 0) {
    const keys = refused.map((key) => `"${key}"`).join(", ")
    return `the derivation's extraSlurmParams sets ${keys}, which a derivation may not set: derivations choose resources, not identity. ` +
      `slurm-derivation-params in nsh.conf lists what they may set (for ${version} now: ${
        [...allowed].sort().join(" ") || "nothing"
      }); an administrator can add a key there, or set it for every job with slurm-extra-submission-params`
  }
  if (!Object.hasOwn(params, "environment")) return undefined
  const environment = environmentEntries(params["environment"])
  if (typeof environment === "string") return `the derivation's extraSlurmParams: ${environment}`
  const protectedOnes = Object.keys(environment).filter(isProtectedVariable)
  return protectedOnes.length === 0 ?
    undefined :
    `the derivation's extraSlurmParams sets ${
      protectedOnes.map((name) => `environment.${name}`).join(", ")
    }, which a derivation may not set (${ProtectedVariablesHelp} decide what the job runs; its entries are merged into nsh's environment, never replace it): remove it, or set it for every job with slurm-extra-submission-params in nsh.conf`
}
