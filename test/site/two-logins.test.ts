/**
 * Two login nodes (issue 10, item 5): login1 and login2, each with its own host name (UTS
 * namespace) and process table (PID namespace), share alice's home and so her slurm-state-dir
 * and nsh's journal in it. They build at the same time with `max-jobs` set; then login1 is killed
 * for good (every process of its namespace SIGKILLed), and login2 still builds through nsh: a
 * journal entry of a host that never comes back blocks nothing, and nothing of login2's is
 * cancelled or deleted.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { readdir, readFile } from "node:fs/promises"
import { assert, describe, it } from "vitest"
import { run, squeueJobs, waitFor } from "../e2e/support/cluster.js"
import { alice, asAlice, assertNothingLeft, jobFields, newNonce, submittedJobIds } from "./support/site.js"

const fixture = new URL("../fixtures/site/site.nix", import.meta.url).pathname
const conf = `${alice.home}/.config/nix/nsh-two-logins.conf`

interface LoginBuild {
  readonly child: ChildProcess
  readonly ended: Promise<{ readonly code: number | null; readonly stdout: string; readonly stderr: string }>
}

/**
 * nix-build of `attr` as alice on login node `host`: new PID, UTS and mount namespaces (the
 * same file systems), its init killed with unshare (--kill-child).
 */
const buildOn = (host: string, attr: string, nonce: string): LoginBuild => {
  // tcsh: setenv, and nix-build first on its line, so her alias (the build hook) applies.
  const cmd = `cd; setenv NSH_CONF ${conf}; nix-build ${fixture} -A ${attr} --argstr nonce ${nonce} --no-out-link`
  const child = spawn("unshare", [
    "--pid",
    "--uts",
    "--mount",
    "--fork",
    "--kill-child=SIGKILL",
    "--mount-proc",
    "sh",
    "-c",
    `hostname ${host} && exec su - ${alice.user} -c "$0"`,
    cmd
  ], { stdio: ["ignore", "pipe", "pipe"] })
  const out: Array<Buffer> = []
  const err: Array<Buffer> = []
  child.stdout!.on("data", (b: Buffer) => out.push(b))
  child.stderr!.on("data", (b: Buffer) => err.push(b))
  // Bounded: a build that hangs fails the test with what it printed.
  const timer = setTimeout(() => child.kill("SIGKILL"), 120_000)
  const ended = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.on("close", (code) => {
      clearTimeout(timer)
      resolve({ code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() })
    })
  )
  return { child, ended }
}

const journalHosts = async (): Promise<ReadonlyArray<string>> => {
  const dir = `${alice.stateDir}/journal`
  const files = await readdir(dir).catch(() => [])
  return Promise.all(
    files.map(async (f) =>
      (JSON.parse(await readFile(`${dir}/${f}`, "utf8").catch(() => "{}")) as { host?: string }).host ?? ""
    )
  )
}

/** What a host that never comes back left in the state dir (its journal entries and their job files). */
const removeDeadHostsFiles = async (host: string) => {
  const dir = `${alice.stateDir}/journal`
  for (const file of await readdir(dir).catch(() => [])) {
    const entry = JSON.parse(await readFile(`${dir}/${file}`, "utf8").catch(() => "{}")) as { host?: string }
    if (entry.host !== host) continue
    const tag = file.replace(/\.json$/, "")
    await run("sh", ["-c", `rm -f '${dir}/${file}' '${alice.stateDir}/${tag}'.*`])
  }
}

describe("site: two login nodes sharing alice's home", () => {
  it("build at once with max-jobs set; login1 killed for good, login2 still builds and loses nothing", async () => {
    const mine = await asAlice("cat ~/.config/nix/nsh.conf")
    assert.strictEqual(mine.code, 0, mine.stderr)
    // Short timeouts so that a wrongly counted or blocking entry shows in seconds, not minutes.
    const written = await asAlice(
      `cat ~/.config/nix/nsh.conf > ${conf} && printf '%s\\n' 'max-jobs = 1' 'postpone-timeout = 30' 'job-lease-timeout = 10' >> ${conf}`
    )
    assert.strictEqual(written.code, 0, written.stderr)

    // At once: each keeps at most one job of its own; the other host's jobs are not its own.
    const [one, two] = await Promise.all([
      buildOn("login1", "two", newNonce("login1")).ended,
      buildOn("login2", "two", newNonce("login2")).ended
    ])
    for (const [host, build] of [["login1", one], ["login2", two]] as const) {
      assert.strictEqual(build.code, 0, `${host}: ${build.stderr}`)
      // Every derivation went through nsh (a postponed one declined in the end would build here).
      assert.lengthOf(submittedJobIds(build.stderr), 2, `${host}: ${build.stderr}`)
    }
    const together = [...submittedJobIds(one.stderr), ...submittedJobIds(two.stderr)]
    await assertNothingLeft(together)
    for (const jobId of together) assert.strictEqual((await jobFields(jobId))["JobState"], "COMPLETED", `job ${jobId}`)

    // login1's build waits in the queue (node1 taken), then login1 is gone for good.
    const blocker = await run("sbatch", ["--exclusive", "-w", "node1", "-o", "/dev/null", "--wrap", "sleep 600"])
    const blockerId = /(\d+)/.exec(blocker.stdout)?.[1] ?? ""
    assert.strictEqual(blocker.code, 0, blocker.stderr)
    try {
      const doomed = buildOn("login1", "one", newNonce("doomed"))
      const orphan = await waitFor(
        async () => (await squeueJobs()).find((j) => j.state === "PENDING" && j.name !== "wrap"),
        60_000,
        "login1's job in the queue"
      )
      await waitFor(async () => (await journalHosts()).includes("login1"), 10_000, "login1's journal entry")
      doomed.child.kill("SIGKILL")
      await doomed.ended
      await run("scancel", [blockerId])

      const after = await buildOn("login2", "one", newNonce("after")).ended
      assert.strictEqual(after.code, 0, after.stderr)
      const afterJobs = submittedJobIds(after.stderr)
      assert.lengthOf(afterJobs, 1, `login2 did not build through nsh: ${after.stderr}`)
      // It ends once the hook has removed its lease, a moment after nix-build returned.
      await waitFor(async () => !(await squeueJobs()).some((j) => j.id === afterJobs[0]), 30_000, "login2's job to end")
      assert.strictEqual((await jobFields(afterJobs[0]!))["JobState"], "COMPLETED")
      // login1's orphan is left to its lease (it gives up by itself), not cancelled by login2.
      await waitFor(async () => !(await squeueJobs()).some((j) => j.id === orphan.id), 90_000, "login1's orphan to end")
      assert.notStrictEqual((await jobFields(orphan.id))["JobState"], "CANCELLED", "login2 cancelled login1's job")
    } finally {
      await run("scancel", [blockerId])
      // What the killed builds left (login1's; login2's too if it had to be killed), so that the
      // other site tests find the state dir clean.
      await removeDeadHostsFiles("login1")
      await removeDeadHostsFiles("login2")
    }
  })
})
