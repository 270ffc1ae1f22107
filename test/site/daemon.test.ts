/**
 * The daemon way at a site (issue 10, item 4; issue 15's "the hook run by a nix-daemon"): the
 * login node's nix-daemon runs nsh as root, without HOME, with /etc/nix/nsh.conf and the token
 * file of a service account (nshsvc) that only root can read; alice's `nix-build --store daemon`
 * builds through it.
 */
import { readdir, readFile } from "node:fs/promises"
import { assert, describe, it } from "vitest"
import { nodeExec, run } from "../e2e/support/cluster.js"
import { aliceBuild, asAlice, assertNothingLeft, jobFields, newNonce, submittedJobIds } from "./support/site.js"

const svcState = "/var/lib/nshsvc/state"

/** The login side's nix-daemon: the listener started with nsh as its build hook (site-up.sh). */
const daemonPid = async (): Promise<string> => {
  const found = await run("pgrep", ["-o", "-f", "^nix-daemon --option build-hook"])
  assert.strictEqual(found.code, 0, "the login side's nix-daemon is not running")
  return found.stdout.trim()
}

describe("site: the login node's nix-daemon", () => {
  it("builds alice's nix-build --store daemon through nsh, run as root with the service account's token", async () => {
    // The daemon's environment has no HOME, as under systemd.
    const environ = (await readFile(`/proc/${await daemonPid()}/environ`, "utf8")).split("\0")
    assert.isUndefined(environ.find((v) => v.startsWith("HOME=")), environ.join(" "))
    // The token only root can read: a job of nshsvc's can only come from a hook running as root.
    const token = await run("stat", ["-c", "%U %a", "/etc/nix/nsh-slurm.jwt"])
    assert.strictEqual(token.stdout.trim(), "root 600")

    const build = await aliceBuild("one", newNonce("daemon"), "--store daemon")
    assert.strictEqual(build.code, 0, build.stderr)
    const out = build.stdout.trim()
    assert.match(out, /^\/nix\/store\/[0-9a-z]{32}-nsh-site-one$/, build.stderr)
    const jobIds = submittedJobIds(build.stderr)
    assert.lengthOf(jobIds, 1, build.stderr)
    const job = await jobFields(jobIds[0]!)
    assert.match(job["UserId"] ?? "", /^nshsvc\(1001\)/)
    assert.strictEqual(job["NodeList"], "node1")
    assert.strictEqual(job["StdOut"]?.startsWith(`${svcState}/`), true, job["StdOut"])

    // The output is in the daemon's store (root's /nix/store here), not in alice's own store;
    // it was built in node1's /nix/store.
    assert.strictEqual((await run("nix-store", ["--check-validity", out])).code, 0, "not in the daemon's store")
    assert.notStrictEqual((await asAlice(`nix-store --check-validity ${out}`)).code, 0, "in alice's own store")
    assert.strictEqual((await nodeExec(`nix-store --check-validity ${out}`)).code, 0, "not built in node1's store")

    await assertNothingLeft(jobIds, svcState, "/nix/var/nix")
    assert.deepStrictEqual(await readdir(`${svcState}/journal`), [])
  })
})
