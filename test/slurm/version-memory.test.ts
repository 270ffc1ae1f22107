/**
 * The negotiated API version is remembered for an hour (README, Performance): the production layer
 * SlurmApiLive against a scripted slurmrestd, with XDG_CACHE_HOME in a temporary directory. A
 * second process within the hour sends no probe; one after the hour probes again.
 */
import { FileSystem } from "@effect/platform"
import { NodeFileSystem } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { readFileSync, utimesSync } from "node:fs"
import { SlurmApi } from "../../src/slurm/SlurmApi.js"
import { SlurmApiLive } from "../../src/slurm/SlurmApiLive.js"
import { fakeConfig, fakeSlurmrestd, json } from "./support/FakeSlurmrestd.js"
import { sample } from "./support/fixtures.js"
import { jwt } from "./support/jwt.js"

const token = jwt({ exp: Math.floor(Date.now() / 1000) + 3600, sun: "alice" })

/** XDG_CACHE_HOME pointed at a fresh directory for the scope. */
const cacheHome = Effect.gen(function*() {
  const dir = yield* (yield* FileSystem.FileSystem).makeTempDirectoryScoped({ prefix: "nsh-cache-" })
  yield* Effect.acquireRelease(
    Effect.sync(() => {
      const before = process.env["XDG_CACHE_HOME"]
      process.env["XDG_CACHE_HOME"] = dir
      return before
    }),
    (before) =>
      Effect.sync(() => {
        if (before === undefined) delete process.env["XDG_CACHE_HOME"]
        else process.env["XDG_CACHE_HOME"] = before
      })
  )
  return dir
})

describe("the negotiated API version, remembered between processes", () => {
  it.scopedLive("is kept for an hour per slurmrestd in ~/.cache/nsh/, then negotiated again", () =>
    Effect.gen(function*() {
      const dir = yield* cacheHome
      const fake = yield* fakeSlurmrestd(["v0.0.38"], () => json(sample("01-ping-v0.0.38.json")))
      const probes = () => fake.requests().filter((r) => r.path.endsWith("/ping")).length
      // Each use is a new layer: what a new hook process would build.
      const versionInNewProcess = Effect.flatMap(SlurmApi, (api) => api.apiVersion).pipe(
        Effect.provide(SlurmApiLive.pipe(Layer.provide(fakeConfig(fake.port, token, { slurmApiVersion: "auto" }))))
      )
      const file = `${dir}/nsh/slurmrestd-127.0.0.1-${fake.port}.version`

      assert.strictEqual(yield* versionInNewProcess, "v0.0.38")
      const first = probes()
      assert.isAbove(first, 0, "the first process did not negotiate")
      assert.strictEqual(readFileSync(file, "utf8").trim(), "v0.0.38")

      // 59 minutes later: remembered, no probe.
      const minutesAgo = (m: number) => (Date.now() - m * 60_000) / 1000
      utimesSync(file, minutesAgo(59), minutesAgo(59))
      assert.strictEqual(yield* versionInNewProcess, "v0.0.38")
      assert.strictEqual(probes(), first, "a process within the hour probed again")

      // 61 minutes later: forgotten, negotiated again.
      utimesSync(file, minutesAgo(61), minutesAgo(61))
      assert.strictEqual(yield* versionInNewProcess, "v0.0.38")
      assert.strictEqual(probes(), 2 * first, "a process after the hour did not negotiate")
    }).pipe(Effect.provide(NodeFileSystem.layer)))
})
