/**
 * Which derivations go to the cluster: the reference's filter, applied to nsh.conf's settings.
 * Pure, so the hook can answer Nix from memory in microseconds.
 */
import type { Settings } from "../config/Settings.js"
import type { BuildRequest } from "./TryHandler.js"

export type Route = { readonly _tag: "Accept" } | { readonly _tag: "Decline"; readonly reason: string }

export type RoutingSettings = Pick<Settings, "system" | "systemFeatures" | "mandatorySystemFeatures">

const quoted = (items: ReadonlyArray<string>) => items.map((i) => `'${i}'`).join(", ")

/** Accept when the system matches, the cluster has every required feature, and every mandatory feature is required. */
export const route = (request: BuildRequest, settings: RoutingSettings): Route => {
  if (request.neededSystem !== settings.system) {
    return {
      _tag: "Decline",
      reason: `derivation needs system '${request.neededSystem}', nsh.conf system is '${settings.system}'`
    }
  }
  const missing = request.requiredFeatures.filter((f) => !settings.systemFeatures.includes(f))
  if (missing.length > 0) {
    return {
      _tag: "Decline",
      reason: `derivation requires ${quoted(missing)}, not in nsh.conf system-features (${
        quoted(settings.systemFeatures) || "empty"
      })`
    }
  }
  const notRequired = settings.mandatorySystemFeatures.filter((f) => !request.requiredFeatures.includes(f))
  if (notRequired.length > 0) {
    return {
      _tag: "Decline",
      reason: `derivation does not require ${quoted(notRequired)}, which nsh.conf mandatory-system-features demands`
    }
  }
  return { _tag: "Accept" }
}
