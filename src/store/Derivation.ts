/**
 * A parsed `.drv` file (Nix's ATerm format; parser in src/store/DrvParser.ts).
 */
export interface DerivationOutput {
  readonly name: string
  /** Empty for floating content-addressed and deferred outputs. */
  readonly path: string
  readonly hashAlgo: string
  readonly hash: string
}

export interface Derivation {
  /** The store path of the .drv itself. */
  readonly drvPath: string
  readonly outputs: ReadonlyArray<DerivationOutput>
  /** Input derivation path -> wanted output names. */
  readonly inputDrvs: ReadonlyArray<{ readonly path: string; readonly outputs: ReadonlyArray<string> }>
  readonly inputSrcs: ReadonlyArray<string>
  readonly system: string
  readonly builder: string
  readonly args: ReadonlyArray<string>
  /** Environment pairs as written (with structured attrs, `__json` holds the attributes). */
  readonly env: Readonly<Record<string, string>>
  /** The decoded `__json` object when the derivation uses structured attrs. */
  readonly structuredAttrs: Readonly<Record<string, unknown>> | undefined
}

/** The derivation's `name` attribute (from env or structured attrs), e.g. `hello-2.12`. */
export const derivationName = (drv: Derivation): string => {
  const fromAttrs = drv.structuredAttrs?.["name"]
  if (typeof fromAttrs === "string") return fromAttrs
  return drv.env["name"] ?? drv.drvPath.replace(/^.*\/[0-9a-z]{32}-/, "").replace(/\.drv$/, "")
}

/** The features Nix asks for, as it computes them (2.8 `getRequiredSystemFeatures`), sorted. */
export const requiredSystemFeatures = (drv: Derivation): ReadonlyArray<string> => {
  const attr: unknown = drv.structuredAttrs === undefined
    ? drv.env["requiredSystemFeatures"]
    : drv.structuredAttrs["requiredSystemFeatures"]
  const listed = typeof attr === "string"
    ? attr.split(/\s+/)
    : Array.isArray(attr)
    ? attr.filter((f) => typeof f === "string")
    : []
  // Outputs whose paths are not known in advance (floating CA, deferred) need ca-derivations.
  const ca = drv.outputs.some((o) => o.path === "") ? ["ca-derivations"] : []
  return [...new Set([...listed.filter((f) => f !== ""), ...ca])].sort()
}
