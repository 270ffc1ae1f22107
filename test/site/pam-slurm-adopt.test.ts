/**
 * pam_slurm_adopt's two rules on node1 (issue 10, item 3), as site-up.sh reproduces them: alice
 * may SSH to node1 only while she has a job running there, and when that job ends every process
 * of hers on node1 is killed. First the rules are shown to bite; then nsh builds under them
 * (the job keeps its allocation until the hook has its outputs and removed the job's files).
 */
import { readFile } from "node:fs/promises"
import { assert, describe, it } from "vitest"
import { nodeExec, run, waitFor } from "../e2e/support/cluster.js"
import { aliceBuild, asAlice, assertNothingLeft, jobFields, newNonce, submittedJobIds } from "./support/site.js"

const epilogLog = "/var/log/nsh-test/site-epilog.log"

/** The line the epilog wrote for a job, once it has. */
const epilogLine = (jobId: number) =>
  waitFor(
    async () =>
      (await readFile(epilogLog, "utf8").catch(() => "")).split("\n").find((l) =>
        l.includes(` job ${jobId} of alice `)
      ),
    30_000,
    `the epilog of job ${jobId}`,
    250
  )

describe("site: pam_slurm_adopt's rules on node1", () => {
  it("refuse alice's SSH without a running job, let her in with one, and kill what she left at its end", async () => {
    const refused = await asAlice("ssh -v node1 true")
    assert.strictEqual(refused.code, 255, `alice reached node1 without a job: ${refused.stderr}`)
    assert.include(refused.stderr, "Permission denied")
    // Refused with her certificate (node1 takes nothing else from her): the rule holds for it.
    assert.match(refused.stderr, /Offering public key: \S+ ED25519-CERT/, refused.stderr)

    const submitted = await asAlice("sbatch -w node1 -o /dev/null --wrap 'sleep 600'")
    assert.strictEqual(submitted.code, 0, submitted.stderr)
    const jobId = Number(/Submitted batch job (\d+)/.exec(submitted.stdout)?.[1])
    assert.isAbove(jobId, 0, submitted.stdout)
    try {
      await waitFor(
        async () => (await asAlice("ssh node1 true")).code === 0,
        60_000,
        "alice's SSH to node1 with a job",
        500
      )
      const there = await asAlice("ssh node1 'whoami; hostname; echo $shell'")
      assert.strictEqual(there.code, 0, there.stderr)
      // Her login shell on node1 is tcsh: sshd ran the command through it.
      assert.deepStrictEqual(there.stdout.trim().split("\n"), ["alice", "node1", "/usr/bin/tcsh"])

      // A process she leaves behind on node1, detached from the SSH session.
      const seconds = 3000 + Math.floor(Math.random() * 5000)
      const left = await asAlice(`ssh node1 'sh -c "setsid sleep ${seconds} </dev/null >/dev/null 2>&1 &"'`)
      assert.strictEqual(left.code, 0, left.stderr)
      const pid = await waitFor(
        async () => (await run("pgrep", ["-u", "alice", "-x", "-f", `sleep ${seconds}`])).stdout.trim(),
        10_000,
        "alice's sleep on node1"
      )
      const node1Ns = (await nodeExec("readlink /proc/self/ns/mnt")).stdout.trim()
      assert.strictEqual(
        (await run("readlink", [`/proc/${pid}/ns/mnt`])).stdout.trim(),
        node1Ns,
        "the sleep is not on node1"
      )

      assert.strictEqual((await run("scancel", [String(jobId)])).code, 0)
      const line = await epilogLine(jobId)
      assert.include(line, `${pid}(sleep)`)
      await waitFor(async () => (await run("kill", ["-0", pid])).code !== 0, 30_000, "alice's sleep to be killed")
      await waitFor(
        async () => (await asAlice("ssh node1 true")).code === 255,
        30_000,
        "alice's SSH to be refused again",
        500
      )
    } finally {
      await run("scancel", [String(jobId)])
    }
  })

  it("nsh still builds under them, its jobs end by themselves and leave nothing behind", async () => {
    const build = await aliceBuild("two", newNonce("pam"))
    assert.strictEqual(build.code, 0, build.stderr)
    assert.lengthOf(build.stdout.trim().split("\n"), 2, build.stdout)
    const jobIds = submittedJobIds(build.stderr)
    assert.lengthOf(jobIds, 2, build.stderr)
    await assertNothingLeft(jobIds)
    // The second rule was in force for nsh's jobs too: the epilog ran at each one's end (killing
    // what was left of hers, or keeping it while her other job still ran).
    for (const jobId of jobIds) await epilogLine(jobId)
    for (const jobId of jobIds) {
      // Ended by itself once the hook let it go, not cancelled.
      assert.strictEqual((await jobFields(jobId))["JobState"], "COMPLETED")
    }
  })
})
