/**
 * Request bodies of every dialect validate against their version's OpenAPI schema, and the
 * synthetic answers the decoding tests rely on validate against theirs.
 */
import { assert, describe, it } from "@effect/vitest"
import { readdirSync } from "node:fs"
import { type ApiVersion, ApiVersions, submitBody } from "../../src/slurm/dialects/index.js"
import type { JobSpec } from "../../src/slurm/JobSpec.js"
import { synthetic } from "./support/fixtures.js"
import { declaredJobKeys, type Operation, violations } from "./support/openapi.js"

const spec: JobSpec = {
  name: "nix-build-hello-2.12",
  comment: "nsh:nsh-0123456789abcdef /nix/store/abc-hello-2.12.drv",
  script: "#!/bin/sh\nexec nix-store --realise /nix/store/abc-hello-2.12.drv\n",
  currentWorkingDirectory: "/tmp",
  environment: { PATH: "/usr/bin:/bin", HOME: "/tmp" },
  standardOutput: "/tmp/nsh/nsh-0123456789abcdef.log",
  standardError: "/tmp/nsh/nsh-0123456789abcdef.log",
  timeLimitMinutes: 70,
  cpusPerTask: 4,
  memoryPerNodeMb: 2048,
  partition: "debug",
  extra: {}
}

describe("submit bodies against the OpenAPI schemas", () => {
  for (const version of ApiVersions) {
    it(`${version}: the full body is valid`, () => {
      assert.deepStrictEqual(violations(version, "submitRequest", submitBody(version, spec)), [])
    })
  }

  for (const version of ApiVersions) {
    it(`${version}: every job key is one the version declares`, () => {
      const job = submitBody(version, spec)["job"] as Record<string, unknown>
      const declared = declaredJobKeys(version)
      assert.deepStrictEqual(Object.keys(job).filter((k) => !declared.includes(k)), [])
    })
  }

  it("the check can fail: v0.0.38's plain numbers are not v0.0.40's numbers with flags", () => {
    assert.isNotEmpty(violations("v0.0.40", "submitRequest", submitBody("v0.0.38", spec)))
    assert.isNotEmpty(violations("v0.0.38", "submitRequest", { job: { environment: {} } }))
    assert.isNotEmpty(
      violations("v0.0.40", "jobResponse", {
        ...(synthetic("v0.0.44-job-running.json") as object),
        jobs: [{ job_state: "RUNNING" }]
      })
    )
  })
})

const syntheticOperation = (file: string): Operation => {
  if (file.includes("-submit")) return "submitResponse"
  if (file.includes("-cancel")) return "cancelResponse"
  if (file.includes("-ping")) return "pingResponse"
  return "jobResponse"
}

describe("synthetic answers against the OpenAPI schemas", () => {
  const files = readdirSync(new URL("../fixtures/slurm/synthetic/", import.meta.url)).filter((f) => f.endsWith(".json"))
  it("there are synthetic answers for every version after v0.0.38", () => {
    const versions = new Set(files.map((f) => f.slice(0, 7)))
    assert.deepStrictEqual([...versions].sort(), ApiVersions.filter((v) => v !== "v0.0.38"))
  })
  for (const file of files) {
    it(file, () => {
      const version = file.slice(0, 7) as ApiVersion
      assert.deepStrictEqual(violations(version, syntheticOperation(file), synthetic(file)), [])
    })
  }
})
