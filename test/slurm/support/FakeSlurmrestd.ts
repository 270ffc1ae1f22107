/**
 * A scripted slurmrestd on 127.0.0.1 for fault tests: each request is answered by a handler that
 * may reply with JSON or text, stall, or drop the connection. Like the real router, paths of API
 * versions the fake does not serve get a plain-text 404, and requests without the two auth
 * headers (or `Authorization: Bearer`, as from Slurm 23.02) a plain-text 401. With `tls` it
 * serves HTTPS with that key and certificate.
 */
import { Effect, Option, Redacted, Schedule } from "effect"
import * as Http from "node:http"
import * as Https from "node:https"
import type { AddressInfo } from "node:net"
import { Config } from "../../../src/config/Config.js"
import type { ApiVersion } from "../../../src/slurm/dialects/index.js"
import { testLoaded } from "../../support/settings.js"
import { jwt } from "./jwt.js"

/** A request as the fake saw it. */
export interface SeenRequest {
  readonly method: string
  readonly path: string
  readonly headers: Http.IncomingHttpHeaders
  readonly body: unknown
  /** The client's port: the same for requests that reused a connection. */
  readonly remotePort: number | undefined
}

/** How the fake answers one request. */
export type Answer =
  | { readonly _tag: "json"; readonly status: number; readonly body: unknown }
  | { readonly _tag: "text"; readonly status: number; readonly body: string }
  /** Close the connection without answering (after reading the request). */
  | { readonly _tag: "drop" }
  | { readonly _tag: "slow"; readonly ms: number; readonly then: Answer }

export const json = (body: unknown, status = 200): Answer => ({ _tag: "json", status, body })
export const text = (body: string, status: number): Answer => ({ _tag: "text", status, body })
export const drop: Answer = { _tag: "drop" }
export const slow = (ms: number, then: Answer): Answer => ({ _tag: "slow", ms, then })

/** The 22.05 router's answer for a path it does not serve (lab 04). */
export const notServed = text("Unable find requested URL. Please view /openapi/v3 for API reference.", 404)

export interface FakeServer {
  readonly port: number
  /** Every request received so far, in order. */
  readonly requests: () => ReadonlyArray<SeenRequest>
  /** Most requests the fake was answering at the same time. */
  readonly maxInFlight: () => number
}

const respond = (res: Http.ServerResponse, answer: Answer): void => {
  switch (answer._tag) {
    case "json":
      res.writeHead(answer.status, { "content-type": "application/json" }).end(JSON.stringify(answer.body))
      return
    case "text":
      res.writeHead(answer.status, { "content-type": "text/plain" }).end(answer.body)
      return
    case "drop":
      res.socket?.destroy()
      return
    case "slow": {
      const timer = setTimeout(() => respond(res, answer.then), answer.ms)
      res.on("close", () => clearTimeout(timer))
      return
    }
  }
}

/**
 * Serves `handler` for the `served` versions; `handler` gets the request and the version-free
 * path (`/ping`, `/job/submit`, `/job/42`, ...). Closed when the scope closes.
 */
export const fakeSlurmrestd = (
  served: ReadonlyArray<ApiVersion>,
  handler: (request: SeenRequest, path: string) => Answer,
  tls?: { readonly key: string; readonly cert: string }
) =>
  Effect.acquireRelease(
    Effect.async<{ server: Http.Server; fake: FakeServer }>((resume) => {
      const seen: Array<SeenRequest> = []
      let inFlight = 0
      let maxInFlight = 0
      const listener: Http.RequestListener = (req, res) => {
        const chunks: Array<Buffer> = []
        req.on("data", (c: Buffer) => chunks.push(c))
        req.on("end", () => {
          inFlight++
          maxInFlight = Math.max(maxInFlight, inFlight)
          res.on("close", () => inFlight--)
          const raw = Buffer.concat(chunks).toString("utf8")
          const request = {
            method: req.method ?? "",
            path: req.url ?? "",
            headers: req.headers,
            body: raw === "" ? undefined : JSON.parse(raw),
            remotePort: req.socket.remotePort
          }
          seen.push(request)
          const bearer = req.headers.authorization?.startsWith("Bearer ") === true
          if (
            !bearer &&
            (req.headers["x-slurm-user-token"] === undefined || req.headers["x-slurm-user-name"] === undefined)
          ) {
            return respond(res, text("Authentication failure", 401))
          }
          const match = request.path.match(/^\/slurm\/(v\d+\.\d+\.\d+)(\/.*)$/)
          if (match !== null && (served as ReadonlyArray<string>).includes(match[1]!)) {
            return respond(res, handler(request, match[2]!))
          }
          if (request.path === "/openapi/v3") {
            return respond(res, handler(request, request.path))
          }
          respond(res, notServed)
        })
      }
      const server: Http.Server = tls === undefined ? Http.createServer(listener) : Https.createServer(tls, listener)
      server.listen(0, "127.0.0.1", () =>
        resume(Effect.succeed({
          server,
          fake: {
            port: (server.address() as AddressInfo).port,
            requests: () => [...seen],
            maxInFlight: () => maxInFlight
          }
        })))
    }),
    ({ server }) =>
      Effect.async<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
  ).pipe(Effect.map(({ fake }) => fake))

/** Config pointing at the fake, with a token and any other settings. */
export const fakeConfig = (port: number, token: string | undefined, overrides: Parameters<typeof testLoaded>[0] = {}) =>
  Config.fromLoaded(
    testLoaded({
      slurmApiHost: "127.0.0.1",
      slurmApiPort: port,
      slurmJwtToken: token === undefined ? Option.none() : Option.some(Redacted.make(token)),
      ...overrides
    })
  )

/** HTTP options for tests against the fake: short timeouts, quick retries. */
export const fastHttpOptions = {
  requestTimeout: "300 millis",
  maxConcurrentRequests: 8,
  retrySchedule: Schedule.exponential("5 millis", 2).pipe(Schedule.intersect(Schedule.recurs(3))),
  maxResponseBytes: 1024 * 1024
} as const

export const future = Math.floor(Date.now() / 1000) + 3600

/** A JWT for "alice" that expires in an hour. */
export const goodToken = jwt({ exp: future, iat: future - 1800, sun: "alice" })
