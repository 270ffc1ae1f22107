/**
 * The test harness itself: slurmrestd answers with a JWT, `ssh node1` lands on node1, and node1 has
 * a Nix store of its own (what the submit side holds is not there until copied).
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, describe, it } from "vitest"
import { cluster, run, slurmFetch, ssh } from "./support/cluster.js"

describe("test harness cluster", () => {
  it("slurmrestd answers /ping with the token, and refuses without one", async () => {
    const response = await slurmFetch("/ping")
    assert.strictEqual(response.status, 200)
    // `ping: "UP"` in v0.0.38, `pinged: "UP"` in v0.0.39–v0.0.44, `responding: true` from v0.0.42
    // (v0.0.45's `status` is "No error" on 26.05.5).
    const body = (await response.json()) as { pings?: Array<{ ping?: string; pinged?: string; responding?: boolean }> }
    const first = body.pings?.[0]
    assert.isTrue(
      first?.ping === "UP" || first?.pinged === "UP" || first?.responding === true,
      JSON.stringify(body.pings)
    )

    const facts = cluster()
    const anonymous = await fetch(`${facts.restUrl}/slurm/${facts.apiVersion}/ping`)
    assert.strictEqual(anonymous.status, 401)
  })

  it("ssh node1 lands on node1", async () => {
    const result = await ssh("node1", "hostname")
    assert.strictEqual(result.code, 0, result.stderr)
    assert.strictEqual(result.stdout.trim(), "node1")
  })

  it("node1's Nix store is not the submit side's", async () => {
    const dir = await mkdtemp(join(tmpdir(), "nsh-harness-"))
    await writeFile(join(dir, "nsh-harness-probe"), "nsh harness probe\n")
    const added = await run("nix-store", ["--add", join(dir, "nsh-harness-probe")])
    await rm(dir, { recursive: true })
    const path = added.stdout.trim()
    assert.match(path, /^\/nix\/store\/[a-z0-9]{32}-nsh-harness-probe$/, added.stderr)
    const local = await run("nix-store", ["--check-validity", path])
    assert.strictEqual(local.code, 0, local.stderr)
    const remote = await ssh("node1", `nix-store --check-validity ${path}`)
    assert.notStrictEqual(remote.code, 0, "the path added on the submit side is valid on node1 too")
    assert.match(remote.stderr, /is not valid/)
  })

  it("host-side Nix in tests has no substituters (the machine is offline)", async () => {
    const result = await run("nix", ["--extra-experimental-features", "nix-command", "show-config"])
    assert.strictEqual(result.code, 0, result.stderr)
    assert.match(result.stdout, /^substituters = *$/m)
  })
})
