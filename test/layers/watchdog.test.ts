/**
 * The watchdog's clean-up stage talks to slurmrestd with the token the hook handed it; the hook's
 * token file, when it had one, is read again once that token has expired.
 */
import { FileSystem } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { slurmApiFor } from "../../src/layers/Watchdog.js"
import type { Start } from "../../src/safety/WatchdogProtocol.js"
import { SlurmApi } from "../../src/slurm/SlurmApi.js"
import { fakeSlurmrestd, json, type SeenRequest } from "../slurm/support/FakeSlurmrestd.js"
import { sample } from "../slurm/support/fixtures.js"
import { jwt } from "../slurm/support/jwt.js"

const expired = jwt({ exp: Math.floor(Date.now() / 1000) - 60, sun: "alice" })
const fresh = jwt({ exp: Math.floor(Date.now() / 1000) + 3600, sun: "alice" })

const accepting = (request: SeenRequest) =>
  request.headers["x-slurm-user-token"] === fresh
    ? json(sample("13-job-cancelled.json"))
    : json(sample("56-auth-expired-token-submit.json"), 500)

const startWith = (port: number, tokenFile: string | undefined): Start => ({
  _tag: "start",
  slurm: {
    url: `http://127.0.0.1:${port}`,
    host: "127.0.0.1",
    port,
    caFile: "",
    auth: "x-slurm",
    apiVersion: "v0.0.38",
    userName: "alice",
    token: Redacted.make(expired),
    ...(tokenFile === undefined ? {} : { tokenFile })
  },
  tag: "nsh-0123456789abcdef",
  nodeFiles: [],
  localFiles: [],
  sshArgs: []
})

describe("the watchdog's SlurmApi", () => {
  it.scopedLive("cancels with the new token in the hook's token file once the one it was given has expired", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* fs.makeTempDirectoryScoped({ prefix: "nsh-watchdog-token-" })
      yield* fs.writeFileString(`${dir}/slurm.jwt`, `SLURM_JWT=${fresh}\n`)
      const fake = yield* fakeSlurmrestd(["v0.0.38"], accepting)
      yield* SlurmApi.pipe(
        Effect.flatMap((api) => api.cancel(42)),
        Effect.provide(slurmApiFor(startWith(fake.port, `${dir}/slurm.jwt`)))
      )
      assert.deepStrictEqual(fake.requests().map((r) => r.headers["x-slurm-user-token"] === fresh), [false, true])
      // Without a token file (SLURM_JWT or nsh.conf's token) there is nothing to read again.
      const without = yield* fakeSlurmrestd(["v0.0.38"], accepting)
      const error = yield* SlurmApi.pipe(
        Effect.flatMap((api) => api.cancel(42)),
        Effect.provide(slurmApiFor(startWith(without.port, undefined))),
        Effect.flip
      )
      assert.strictEqual(error._tag, "SlurmAuthError")
      assert.strictEqual(without.requests().length, 1)
    }).pipe(Effect.provide(NodeContext.layer)))
})
