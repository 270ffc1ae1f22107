/**
 * Raw SSH transports to node1, without Nix: how long `cat > /dev/null` on the node takes to
 * swallow N MiB sent from this process, over ssh2 (with a chosen cipher) and over the system's
 * OpenSSH multiplexed on a control master, as nsh's two transports send inputs. Also one small
 * command's round trip on an open connection. Host keys are checked against the lab's
 * known_hosts (ssh -G's files), like nsh does.
 */
import { spawn, spawnSync } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { createRequire } from "node:module"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { performance } from "node:perf_hooks"
import { repoRoot } from "./common.mjs"

const require = createRequire(`${repoRoot}/package.json`)
const ssh2 = require("ssh2")

/** One MiB of random bytes, sent again and again (the ciphers make compression irrelevant). */
const block = Buffer.from(Array.from({ length: 1 << 20 }, () => Math.floor(Math.random() * 256)))

const sshG = (host) => {
  const out = spawnSync("ssh", ["-G", host], { encoding: "utf8" }).stdout
  const fields = {}
  for (const line of out.split("\n")) {
    const [key, ...rest] = line.split(" ")
    if (key === "") continue
    ;(fields[key] ??= []).push(rest.join(" "))
  }
  return fields
}

/** Feeds `mib` MiB into a writable, waiting for "drain" like nsh does. */
const feed = async (writable, mib) => {
  for (let i = 0; i < mib; i++) {
    if (!writable.write(block)) await new Promise((r) => writable.once("drain", r))
  }
  writable.end()
}

/** An ssh2 connection to `host` (its key from ssh -G, host key from its known_hosts). */
export const ssh2Connect = (host, cipher) =>
  new Promise((resolve, reject) => {
    const g = sshG(host)
    const known = g.userknownhostsfile[0].split(" ").flatMap((f) => {
      try {
        return readFileSync(f.replace(/^~/, process.env.HOME), "utf8").split("\n")
      } catch {
        return []
      }
    })
    const client = new ssh2.Client()
    const t0 = performance.now()
    client.on("ready", () => resolve({ client, connectMs: performance.now() - t0 }))
    client.on("error", reject)
    client.connect({
      host: g.hostname[0],
      port: Number(g.port[0]),
      username: g.user[0],
      privateKey: readFileSync(g.identityfile[0].replace(/^~/, process.env.HOME)),
      ...(cipher === undefined ? {} : { algorithms: { cipher: [cipher] } }),
      hostVerifier: (key) => known.some((line) => line.includes(key.toString("base64")))
    })
    client.on("handshake", (n) => {
      client.negotiated = n.cs.cipher
    })
  })

const ssh2Exec = (client, command, mib) =>
  new Promise((resolve, reject) => {
    client.exec(command, (error, channel) => {
      if (error) return reject(error)
      channel.on("close", resolve)
      channel.resume()
      channel.stderr.resume()
      if (mib === undefined) channel.end()
      else feed(channel, mib)
    })
  })

/** ms for `mib` MiB into `cat > /dev/null` over one ssh2 connection, and its cipher and round trip. */
export const ssh2Throughput = async (host, mib, cipher) => {
  const { client, connectMs } = await ssh2Connect(host, cipher)
  try {
    const r0 = performance.now()
    await ssh2Exec(client, "true")
    const roundTripMs = performance.now() - r0
    const t0 = performance.now()
    await ssh2Exec(client, "cat > /dev/null", mib)
    return { ms: performance.now() - t0, cipher: client.negotiated, connectMs, roundTripMs }
  } finally {
    client.end()
  }
}

const waitFor = (child) => new Promise((resolve) => child.on("close", (code) => resolve(code)))

/** The same over OpenSSH: a control master (as nsh's openssh transport starts it), commands multiplexed on it. */
export const opensshThroughput = async (host, mib, cipher) => {
  const dir = mkdtempSync(join(tmpdir(), "nsh-bench-cm-"))
  const control = ["-o", `ControlPath=${dir}/s`]
  const args = [
    ...control,
    "-o",
    "BatchMode=yes",
    "-o",
    "ControlMaster=auto",
    "-o",
    "ControlPersist=30",
    ...(cipher === undefined ? [] : ["-c", cipher])
  ]
  try {
    const c0 = performance.now()
    if ((await waitFor(spawn("ssh", [...args, "-n", "-N", "-f", "-T", "--", host], { stdio: "ignore" }))) !== 0) {
      throw new Error(`ssh ${host}: the control master did not start`)
    }
    const connectMs = performance.now() - c0
    const r0 = performance.now()
    await waitFor(spawn("ssh", [...args, "-T", "--", host, "true"], { stdio: "ignore" }))
    const roundTripMs = performance.now() - r0
    const t0 = performance.now()
    const child = spawn("ssh", [...args, "-T", "--", host, "cat > /dev/null"], { stdio: ["pipe", "ignore", "ignore"] })
    feed(child.stdin, mib)
    await waitFor(child)
    const ms = performance.now() - t0
    const negotiated = spawnSync("ssh", [...args, "-G", host], { encoding: "utf8" }).stdout.match(/^ciphers (\S+)/m)
      ?.[1]
    return { ms, cipher: cipher ?? negotiated?.split(",")[0], connectMs, roundTripMs }
  } finally {
    spawnSync("ssh", [...control, "-O", "exit", host], { stdio: "ignore" })
    rmSync(dir, { recursive: true, force: true })
  }
}
