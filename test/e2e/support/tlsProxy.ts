/**
 * A real TLS endpoint in front of the harness's slurmrestd: Debian's nginx as a TLS proxy on a
 * loopback port, with a server certificate for IP 127.0.0.1 only, signed by a CA made here with
 * openssl (and a second CA that signed nothing nsh meets). Debian's slurmrestd has no TLS of its own
 * (its only tls plugin is tls/none: tls/s2n is not built). nginx logs, per request, which token
 * header arrived (never the token), so a test can see what nsh really sent.
 */
import { Effect } from "effect"
import { spawn } from "node:child_process"
import { mkdtemp, readFile, rm, truncate, writeFile } from "node:fs/promises"
import * as Net from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { makeCa, makeServerCert } from "../../support/TestCerts.js"
import { cluster, waitFor } from "./cluster.js"

export interface TlsProxy {
  /** `https://127.0.0.1:PORT`, what the certificate names. */
  readonly url: string
  /** The same proxy by an address the certificate does not name (127.0.0.2). */
  readonly wrongHostUrl: string
  /** PEM of the CA that signed the proxy's certificate. */
  readonly caFile: string
  /** PEM of another CA. */
  readonly otherCaFile: string
  /** Access log lines since the last `clearLog`: `METHOD URI auth=bearer|none x-slurm-user-token=present|absent STATUS`. */
  readonly log: () => Promise<ReadonlyArray<string>>
  readonly clearLog: () => Promise<void>
}

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = Net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as Net.AddressInfo).port
      server.close(() => resolve(port))
    })
  })

const accepts = (host: string, port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = Net.connect({ host, port })
    socket.once("connect", () => {
      socket.destroy()
      resolve(true)
    })
    socket.once("error", () => resolve(false))
  })

const nginxConf = (dir: string, port: number, upstream: string) => `
daemon off;
master_process off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log info;
events { worker_connections 64; }
http {
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  map $http_authorization $nsh_auth { default none; "~^Bearer " bearer; }
  map $http_x_slurm_user_token $nsh_xtoken { default present; "" absent; }
  log_format nsh '$request_method $uri auth=$nsh_auth x-slurm-user-token=$nsh_xtoken $status';
  access_log ${dir}/access.log nsh;
  server {
    listen 127.0.0.1:${port} ssl;
    listen 127.0.0.2:${port} ssl;
    ssl_certificate ${dir}/server.pem;
    ssl_certificate_key ${dir}/server.key;
    location / {
      proxy_pass ${upstream};
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`

/** The proxy, up until the scope closes (then stopped and its files removed). */
export const tlsProxy = Effect.acquireRelease(
  Effect.promise(async () => {
    const dir = await mkdtemp(join(tmpdir(), "nsh-e2e-tls-"))
    const caFile = makeCa(dir, "nsh-e2e-ca")
    const otherCaFile = makeCa(dir, "nsh-e2e-other-ca")
    makeServerCert(dir, "server", "IP:127.0.0.1", 2, "nsh-e2e-ca")
    const port = await freePort()
    await writeFile(join(dir, "nginx.conf"), nginxConf(dir, port, cluster().restUrl))
    const nginx = spawn(
      "nginx",
      ["-p", dir, "-c", join(dir, "nginx.conf"), "-e", join(dir, "error.log")],
      { stdio: ["ignore", "ignore", "pipe"] }
    )
    let stderr = ""
    nginx.stderr.on("data", (b: Buffer) => stderr += b.toString())
    await waitFor(
      async () => nginx.exitCode !== null || (await accepts("127.0.0.1", port)),
      10_000,
      "nginx to listen"
    ).catch(() => undefined)
    const up = nginx.exitCode === null && (await accepts("127.0.0.1", port))
    if (!up) {
      const log = await readFile(join(dir, "error.log"), "utf8").catch(() => "")
      throw new Error(`nginx did not start (exit ${nginx.exitCode}): ${stderr}${log}`)
    }
    const accessLog = join(dir, "access.log")
    const proxy: TlsProxy = {
      url: `https://127.0.0.1:${port}`,
      wrongHostUrl: `https://127.0.0.2:${port}`,
      caFile,
      otherCaFile,
      log: async () => (await readFile(accessLog, "utf8").catch(() => "")).split("\n").filter((l) => l !== ""),
      clearLog: () => truncate(accessLog).catch(() => undefined)
    }
    return { proxy, nginx, dir }
  }),
  ({ dir, nginx }) =>
    Effect.promise(async () => {
      if (nginx.exitCode === null) {
        const exited = new Promise((resolve) => nginx.once("exit", resolve))
        nginx.kill("SIGTERM")
        await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5000))])
        if (nginx.exitCode === null) nginx.kill("SIGKILL")
      }
      await rm(dir, { recursive: true, force: true })
    })
).pipe(Effect.map(({ proxy }) => proxy))
