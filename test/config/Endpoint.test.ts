/**
 * slurm-api-url against slurm-api-host/-port and slurm-api-ca-file: which endpoint results, and
 * which combinations are refused at load time (file, line and setting named).
 */
import { describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { assert } from "vitest"
import { slurmEndpoint } from "../../src/config/Endpoint.js"
import type { ConfEntry } from "../../src/config/NshConfParser.js"
import { decodeSettings } from "../../src/config/SettingsDecode.js"

const file = "/etc/nix/nsh.conf"

const decode = (...kvs: ReadonlyArray<readonly [string, string]>) =>
  decodeSettings(kvs.map(([key, value], i): ConfEntry => ({ key, value, file, line: i + 1 })), "/home/alice")

const endpointOf = (...kvs: ReadonlyArray<readonly [string, string]>) =>
  Effect.map(decode(...kvs), ({ settings }) => slurmEndpoint(settings))

const errorOf = (...kvs: ReadonlyArray<readonly [string, string]>) =>
  Effect.map(Effect.flip(decode(...kvs)), (e) => e.message)

describe("the slurmrestd endpoint", () => {
  it.effect("is http://slurm-api-host:slurm-api-port without slurm-api-url, as before", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* endpointOf(), {
        url: "http://localhost:6820",
        tls: false,
        host: "localhost",
        port: 6820
      })
      assert.strictEqual(
        (yield* endpointOf(["slurm-api-host", "::1"], ["slurm-api-port", "7000"])).url,
        "http://[::1]:7000"
      )
    }))

  it.effect("is slurm-api-url when set: https, the scheme's port when none is given, a path prefix kept", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* endpointOf(["slurm-api-url", "https://slurm-rest.example.org:6820"]), {
        url: "https://slurm-rest.example.org:6820",
        tls: true,
        host: "slurm-rest.example.org",
        port: 6820
      })
      const proxied = yield* endpointOf(["slurm-api-url", "https://GW.example.org/slurmrestd/"])
      assert.deepStrictEqual(proxied, {
        url: "https://gw.example.org/slurmrestd",
        tls: true,
        host: "gw.example.org",
        port: 443
      })
      assert.strictEqual((yield* endpointOf(["slurm-api-url", "http://10.0.0.5"])).port, 80)
      assert.strictEqual((yield* endpointOf(["slurm-api-url", "https://[fd00::5]:6820"])).host, "fd00::5")
    }))

  it.effect("accepts host and port that repeat the URL's", () =>
    Effect.gen(function*() {
      const endpoint = yield* endpointOf(
        ["slurm-api-host", "Slurm-Rest.example.org"],
        ["slurm-api-port", "6820"],
        ["slurm-api-url", "https://slurm-rest.example.org:6820"]
      )
      assert.strictEqual(endpoint.url, "https://slurm-rest.example.org:6820")
    }))

  it.effect("refuses a host or port that contradicts the URL, naming both lines", () =>
    Effect.gen(function*() {
      assert.strictEqual(
        yield* errorOf(["slurm-api-host", "old-rest"], ["slurm-api-url", "https://slurm-rest.example.org:6820"]),
        `${file}:1: slurm-api-host: 'old-rest' contradicts slurm-api-url = https://slurm-rest.example.org:6820 (${file}:2), whose host is slurm-rest.example.org: name the endpoint once, in slurm-api-url (remove slurm-api-host), or make them agree`
      )
      assert.match(
        yield* errorOf(["slurm-api-url", "https://slurm-rest.example.org"], ["slurm-api-port", "6820"]),
        /^\/etc\/nix\/nsh\.conf:2: slurm-api-port: 6820 contradicts slurm-api-url = https:\/\/slurm-rest\.example\.org \(\/etc\/nix\/nsh\.conf:1\), whose port is 443/
      )
    }))

  it.effect("refuses a malformed URL, another scheme, credentials or a query in it", () =>
    Effect.gen(function*() {
      for (
        const [url, why] of [
          ["slurm-rest.example.org:6820", "the scheme must be https:// or http://"],
          ["rest.example.org", "not a URL"],
          ["ftp://rest.example.org", "the scheme must be https:// or http://, not ftp://"],
          ["https://alice:pw@rest.example.org", "a user or password in the URL is never sent"],
          ["https://rest.example.org/?x=1", "a query or fragment has no place in it"]
        ] as const
      ) {
        const message = yield* errorOf(["slurm-api-url", url])
        assert.include(
          message,
          `${file}:1: slurm-api-url: expected a URL such as https://slurm-rest.example.org:6820, got '${url}' (`
        )
        assert.include(message, why, url)
      }
    }))

  it.effect("refuses slurm-api-ca-file when slurmrestd is reached over plain HTTP", () =>
    Effect.gen(function*() {
      assert.strictEqual(
        yield* errorOf(["slurm-api-ca-file", "/etc/nsh/ca.pem"]),
        `${file}:1: slurm-api-ca-file: a CA file is for TLS, but slurmrestd is reached over plain HTTP (http://localhost:6820): set slurm-api-url = https://…, or remove slurm-api-ca-file`
      )
      assert.include(
        yield* errorOf(["slurm-api-url", "http://rest:6820"], ["slurm-api-ca-file", "/etc/nsh/ca.pem"]),
        "plain HTTP (http://rest:6820)"
      )
      const { settings } = yield* decode(["slurm-api-url", "https://rest:6820"], [
        "slurm-api-ca-file",
        "/etc/nsh/ca.pem"
      ])
      assert.strictEqual(settings.slurmApiCaFile, "/etc/nsh/ca.pem")
    }))

  it.effect("slurm-api-auth is x-slurm unless set to bearer", () =>
    Effect.gen(function*() {
      assert.strictEqual((yield* decode()).settings.slurmApiAuth, "x-slurm")
      assert.strictEqual((yield* decode(["slurm-api-auth", "bearer"])).settings.slurmApiAuth, "bearer")
      assert.include(yield* errorOf(["slurm-api-auth", "basic"]), "expected one of x-slurm, bearer, got 'basic'")
    }))
})
