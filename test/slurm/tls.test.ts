/**
 * SlurmApiLive over HTTPS against a scripted slurmrestd with certificates made by openssl: what is
 * trusted (slurm-api-ca-file, else the system's bundle), and each way a certificate can be wrong
 * failing at once with the URL and what to do, never retried and never sent in plain. Also the
 * token's two headers.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Option, Redacted } from "effect"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Config } from "../../src/config/Config.js"
import type { Settings } from "../../src/config/Settings.js"
import { makeSlurmApi, NodeHttpClientLive, SlurmHttpClientLive } from "../../src/slurm/SlurmApiLive.js"
import { testLoaded } from "../support/settings.js"
import { makeCa, makeServerCert } from "../support/TestCerts.js"
import {
  type Answer,
  fakeSlurmrestd,
  fastHttpOptions,
  goodToken,
  json,
  type SeenRequest,
  text
} from "./support/FakeSlurmrestd.js"
import { sample } from "./support/fixtures.js"

// A TLS handshake on a loaded machine may take longer than the fake's usual 300 ms.
const fast = { ...fastHttpOptions, requestTimeout: "2 seconds" } as const
const token = goodToken

let dir = ""
const pem = (name: string) => join(dir, `${name}.pem`)
const key = (name: string) => readFileSync(join(dir, `${name}.key`), "utf8")
const cert = (name: string) => readFileSync(pem(name), "utf8")

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "nsh-tls-test-"))
  makeCa(dir, "ca")
  makeCa(dir, "other-ca")
  makeServerCert(dir, "good", "IP:127.0.0.1")
  makeServerCert(dir, "expired", "IP:127.0.0.1", -1)
  makeServerCert(dir, "named", "DNS:slurm-rest.example.org")
  writeFileSync(join(dir, "not-a-ca.pem"), "hello\n")
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const ping = () => json(sample("01-ping-v0.0.38.json"))

/** A fake on `served` (TLS with the certificate `certName`, or plain) and the SlurmApi configured by `settings`. */
const setup = (
  certName: string | undefined,
  settings: (port: number) => Partial<Settings>,
  handler: (request: SeenRequest, path: string) => Answer = ping
) =>
  Effect.gen(function*() {
    const fake = yield* fakeSlurmrestd(
      ["v0.0.38"],
      handler,
      certName === undefined ? undefined : { key: key(certName), cert: cert(certName) }
    )
    const all = testLoaded({
      slurmApiVersion: "v0.0.38",
      slurmJwtToken: Option.some(Redacted.make(token)),
      ...settings(fake.port)
    })
    const api = yield* makeSlurmApi(fast).pipe(
      Effect.provide(SlurmHttpClientLive(all.settings)),
      Effect.provide(Config.fromLoaded(all))
    )
    return { fake, api }
  })

const failureOf = <A, E>(exit: Exit.Exit<A, E>): E => {
  if (Exit.isSuccess(exit)) throw new Error("expected a failure")
  const failure = Cause.failureOption(exit.cause)
  if (failure._tag === "None") throw new Error(`expected a typed failure: ${Cause.pretty(exit.cause)}`)
  return failure.value
}

const https = (port: number, caFile = pem("ca")) => ({
  slurmApiUrl: `https://127.0.0.1:${port}`,
  slurmApiCaFile: caFile
})

describe("HTTPS to slurmrestd", () => {
  it.scopedLive("verifies the certificate against slurm-api-ca-file and then talks as over HTTP", () =>
    Effect.gen(function*() {
      const { api, fake } = yield* setup("good", (port) => https(port))
      yield* api.ping
      assert.deepStrictEqual(fake.requests().map((r) => r.path), ["/slurm/v0.0.38/ping"])
    }))

  it.scopedLive("refuses a certificate of another CA at once, naming the URL, the CA file and the fix", () =>
    Effect.gen(function*() {
      const { api, fake } = yield* setup("good", (port) => https(port, pem("other-ca")))
      const error = failureOf(yield* Effect.exit(api.ping))
      assert.strictEqual(error._tag, "SlurmTlsError")
      assert.match(
        error.message,
        new RegExp(
          `^cannot trust slurmrestd at https://127\\.0\\.0\\.1:${fake.port}: its certificate is not signed by a CA in slurm-api-ca-file ${
            pem("other-ca").replaceAll(".", "\\.")
          } \\(.+\\); set slurm-api-ca-file to the PEM file of the CA that signed it .*\\(nsh never falls back to plain HTTP\\)$`
        )
      )
      assert.strictEqual(fake.requests().length, 0)
    }))

  it.scopedLive("without slurm-api-ca-file trusts the system's bundle only, so a private CA is refused", () =>
    Effect.gen(function*() {
      const { api } = yield* setup("good", (port) => https(port, ""))
      const error = failureOf(yield* Effect.exit(api.ping))
      assert.strictEqual(error._tag, "SlurmTlsError")
      assert.match(error.message, /its certificate is not signed by a CA in (the system CA bundle|the CA bundle \$)/)
    }))

  it.scopedLive("refuses an expired certificate and a certificate for another host name", () =>
    Effect.gen(function*() {
      const expired = yield* setup("expired", (port) => https(port))
      const old = failureOf(yield* Effect.exit(expired.api.ping))
      assert.strictEqual(old._tag, "SlurmTlsError")
      assert.include(old.message, "its certificate is outside its validity period (certificate has expired)")
      assert.include(old.message, "the server's certificate must be renewed")
      const named = yield* setup("named", (port) => https(port))
      const wrong = failureOf(yield* Effect.exit(named.api.ping))
      assert.strictEqual(wrong._tag, "SlurmTlsError")
      assert.include(wrong.message, "its certificate is not for 127.0.0.1 (")
      assert.include(wrong.message, "use a host name the certificate names in slurm-api-url")
      assert.strictEqual(expired.fake.requests().length + named.fake.requests().length, 0)
    }))

  it.scopedLive("an https:// URL to a plain HTTP server says it does not speak TLS (and sends nothing in plain)", () =>
    Effect.gen(function*() {
      const { api, fake } = yield* setup(undefined, (port) => https(port))
      const error = failureOf(yield* Effect.exit(api.ping))
      assert.strictEqual(error._tag, "SlurmTlsError")
      assert.include(error.message, `the server does not speak TLS on port ${fake.port}`)
      assert.strictEqual(fake.requests().length, 0)
    }))

  it.scopedLive("a CA file that is missing or holds no certificate fails every request with that reason", () =>
    Effect.gen(function*() {
      for (
        const [file, why] of [[join(dir, "missing.pem"), "does not exist"], [
          join(dir, "not-a-ca.pem"),
          "holds no PEM certificate"
        ]] as const
      ) {
        const { api } = yield* setup("good", (port) => https(port, file))
        const error = failureOf(yield* Effect.exit(api.ping))
        assert.strictEqual(error._tag, "SlurmTlsError")
        assert.include(error.message, `slurm-api-ca-file ${file} ${why}`)
      }
    }))
})

describe("the token's header", () => {
  it.scopedLive("slurm-api-auth = bearer sends Authorization: Bearer alone (slurmrestd refuses it with X-SLURM-USER-TOKEN)", () =>
    Effect.gen(function*() {
      const { api, fake } = yield* setup("good", (port) => ({ ...https(port), slurmApiAuth: "bearer" }))
      yield* api.ping
      const headers = fake.requests()[0]!.headers
      assert.strictEqual(headers.authorization, `Bearer ${token}`)
      assert.isUndefined(headers["x-slurm-user-token"])
      assert.isUndefined(headers["x-slurm-user-name"])
      const named = yield* setup(undefined, (port) => ({
        slurmApiHost: "127.0.0.1",
        slurmApiPort: port,
        slurmApiAuth: "bearer",
        slurmUserName: "bob"
      }))
      yield* named.api.ping
      assert.strictEqual(named.fake.requests()[0]!.headers["x-slurm-user-name"], "bob")
    }))

  it.scopedLive("a 401 to Bearer says which Slurm versions read it, without the token", () =>
    Effect.gen(function*() {
      const { api } = yield* setup(
        undefined,
        (port) => ({ slurmApiHost: "127.0.0.1", slurmApiPort: port, slurmApiAuth: "bearer" }),
        () => text("Authentication failure", 401)
      )
      const error = failureOf(yield* Effect.exit(api.ping))
      assert.strictEqual(error._tag, "SlurmAuthError")
      assert.include(error.message, "slurm-api-auth = bearer needs Slurm 23.02 or later")
      assert.notInclude(error.message, token.split(".")[1]!)
    }))

  it.scopedLive("the default sends X-SLURM-USER-TOKEN and X-SLURM-USER-NAME, never Authorization", () =>
    Effect.gen(function*() {
      const fake = yield* fakeSlurmrestd(["v0.0.38"], ping)
      const api = yield* makeSlurmApi(fast).pipe(
        Effect.provide(NodeHttpClientLive),
        Effect.provide(
          Config.fromLoaded(testLoaded({
            slurmApiHost: "127.0.0.1",
            slurmApiPort: fake.port,
            slurmApiVersion: "v0.0.38",
            slurmJwtToken: Option.some(Redacted.make(token))
          }))
        )
      )
      yield* api.ping
      const headers = fake.requests()[0]!.headers
      assert.deepInclude(headers, { "x-slurm-user-token": token, "x-slurm-user-name": "alice" })
      assert.isUndefined(headers.authorization)
    }))
})

describe("behind a proxy", () => {
  it.scopedLive("a proxy's 502 page is reported as the proxy not reaching slurmrestd, not as its HTML", () =>
    Effect.gen(function*() {
      const page = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
      const { api, fake } = yield* setup("good", (port) => https(port), () => text(page, 502))
      const error = failureOf(yield* Effect.exit(api.ping))
      assert.strictEqual(error._tag, "SlurmRequestError")
      assert.strictEqual(
        error.message,
        "slurmrestd refused ping: HTTP 502 from a proxy in front of slurmrestd: it could not reach slurmrestd"
      )
      assert.notInclude(error.message, "<html>")
      // Retried first, as any 502.
      assert.isAbove(fake.requests().length, 1)
    }))
})
