/**
 * Validation of bodies against the trimmed OpenAPI schemas in test/fixtures/slurm/openapi/.
 */
import { Ajv } from "ajv"
import { readFileSync } from "node:fs"
import type { ApiVersion } from "../../../src/slurm/dialects/index.js"

export type Operation =
  | "submitRequest"
  | "submitResponse"
  | "jobResponse"
  | "jobsResponse"
  | "cancelResponse"
  | "pingResponse"

interface TrimmedDoc {
  readonly operations: Record<Operation, string | null>
  readonly components: { readonly schemas: Record<string, unknown> }
}

// The generated specs list nested paths ("error/code") in `required`, which no body can satisfy.
const dropPathRequirements = (value: unknown): unknown => {
  if (Array.isArray(value)) return value.map(dropPathRequirements)
  if (typeof value !== "object" || value === null) return value
  return Object.fromEntries(
    Object.entries(value).map(([key, v]) => [
      key,
      key === "required" && Array.isArray(v)
        ? v.filter((r) => typeof r === "string" && !r.includes("/"))
        : dropPathRequirements(v)
    ])
  )
}

const readDoc = (version: ApiVersion): TrimmedDoc =>
  JSON.parse(
    readFileSync(new URL(`../../fixtures/slurm/openapi/${version}.json`, import.meta.url), "utf8")
  ) as TrimmedDoc

type SchemaNode = { readonly $ref?: string; readonly properties?: Record<string, SchemaNode> }

/** The keys a version's submit request declares for `job` (v0.0.38 answers 400 to any other key). */
export const declaredJobKeys = (version: ApiVersion): ReadonlyArray<string> => {
  const doc = readDoc(version)
  const resolve = (node: SchemaNode | undefined): SchemaNode | undefined =>
    node?.$ref === undefined
      ? node
      : resolve(doc.components.schemas[node.$ref.replace("#/components/schemas/", "")] as SchemaNode)
  const request = resolve({ $ref: `#/components/schemas/${doc.operations.submitRequest}` })
  return Object.keys(resolve(request?.properties?.["job"])?.properties ?? {})
}

const validators = new Map<string, (body: unknown) => ReadonlyArray<string>>()

/** Schema violations of `body` for `operation` of `version` (empty when valid). */
export const violations = (version: ApiVersion, operation: Operation, body: unknown): ReadonlyArray<string> => {
  const key = `${version}/${operation}`
  let validate = validators.get(key)
  if (validate === undefined) {
    const doc = readDoc(version)
    const root = doc.operations[operation]
    if (root === null) throw new Error(`${version} documents no schema for ${operation}`)
    // OpenAPI 3.0 keywords (deprecated, format int32/int64, ...) are not JSON Schema: do not be strict about them.
    const ajv = new Ajv({ strict: false, validateFormats: false, allErrors: true })
    ajv.addSchema({ components: dropPathRequirements(doc.components) }, "doc")
    const check = ajv.compile({ $ref: `doc#/components/schemas/${root}` })
    validate = (body) => (check(body) ? [] : (check.errors ?? []).map((e) => `${e.instancePath} ${e.message ?? ""}`))
    validators.set(key, validate)
  }
  return validate(body)
}
