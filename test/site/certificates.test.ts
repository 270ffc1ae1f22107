/**
 * SSH the way sites do it (issue 10, item 6): node1's sshd trusts the site's user CA and lets
 * alice in only with a certificate it signed (test/harness/site-up.sh), her
 * ~/.ssh/id_ed25519-cert.pub beside her key. nsh's `ssh-transport = auto` sees the certificate
 * file and talks through the system's OpenSSH, since ssh2 cannot use it. Nor can ssh2 use one
 * held by ssh-agent: ssh2 1.17 skips the agent's certificate identities (its parseKey does not
 * read a `*-cert-v01@openssh.com` blob; mscdex/ssh2#551), so `ssh-transport = ssh2` is refused.
 */
import { rm } from "node:fs/promises"
import { assert, describe, it } from "vitest"
import { squeueJobs, waitFor } from "../e2e/support/cluster.js"
import { alice, aliceBuild, asAlice, assertNothingLeft, jobFields, newNonce, submittedJobIds } from "./support/site.js"

const cert = `${alice.home}/.ssh/id_ed25519-cert.pub`
const fixture = new URL("../fixtures/site/site.nix", import.meta.url).pathname
const nsh = new URL("../../bin/nsh", import.meta.url).pathname

describe("site: alice's OpenSSH user certificate", () => {
  it("node1 lets her in with the certificate while she has a job, never with her plain key alone", async () => {
    const submitted = await asAlice("sbatch -w node1 -o /dev/null --wrap 'sleep 600'")
    assert.strictEqual(submitted.code, 0, submitted.stderr)
    const jobId = Number(/Submitted batch job (\d+)/.exec(submitted.stdout)?.[1])
    assert.isAbove(jobId, 0, submitted.stdout)
    try {
      await waitFor(async () => (await asAlice("ssh node1 true")).code === 0, 60_000, "alice's SSH with a job", 500)
      const withCert = await asAlice("ssh -v node1 true")
      assert.strictEqual(withCert.code, 0, withCert.stderr)
      assert.match(withCert.stderr, /Server accepts key: \S+ ED25519-CERT/, withCert.stderr)
      // The same key without its certificate (a copy of the private key alone, no config file,
      // so no -cert.pub is found beside it): refused, job or not.
      const plain = await asAlice(
        "set d=`mktemp -d` && cp ~/.ssh/id_ed25519 $d/key && " +
          "ssh -v -F /dev/null -o BatchMode=yes -o IdentitiesOnly=yes -o IdentityAgent=none -i $d/key node1 true; " +
          "set rc=$status; rm -rf $d; exit $rc"
      )
      assert.strictEqual(plain.code, 255, `her plain key opened a session on node1: ${plain.stderr}`)
      assert.include(plain.stderr, "Permission denied")
      assert.notInclude(plain.stderr, "ED25519-CERT")
    } finally {
      await asAlice(`scancel ${jobId}`)
    }
  })

  it("nix-build as alice: auto picks OpenSSH for the certificate file, and the build succeeds", async () => {
    const build = await aliceBuild("one", newNonce("cert"), "-vvv")
    assert.strictEqual(build.code, 0, build.stderr)
    assert.match(build.stdout.trim(), /^\/nix\/store\/[0-9a-z]{32}-nsh-site-one$/, build.stderr)
    // nsh's debug log (Nix's -vvv): which transport, why, and its control master.
    assert.include(
      build.stderr,
      `ssh node1: over openssh (ssh-transport = auto: the ssh config for node1 uses the certificate ${cert}, which only OpenSSH supports)`
    )
    assert.match(build.stderr, /ssh node1: OpenSSH control master at \S+/)
    await assertNothingLeft(submittedJobIds(build.stderr))
  })

  it("ssh-transport = ssh2 with the certificate in ssh-agent: ssh2 offers only the plain key, node1 refuses it", async () => {
    // Her nsh.conf with ssh-transport = ssh2 (NSH_CONF replaces the search), the key and its
    // certificate loaded into an agent of hers that lives as long as the build.
    const conf = `${alice.home}/nsh-ssh2.conf`
    const nonce = newNonce("agent")
    const build = await asAlice(
      `(cat ~/.config/nix/nsh.conf; echo ssh-transport = ssh2) > ${conf} && cd && ` +
        `env NSH_CONF=${conf} ssh-agent sh -c 'ssh-add ~/.ssh/id_ed25519 && ssh-add -l && ` +
        `nix-build --option build-hook ${nsh} ${fixture} -A one --argstr nonce ${nonce} --no-out-link'`,
      { timeoutMs: 240_000 }
    )
    await asAlice(`rm -f ${conf}`)
    // The agent holds both (OpenSSH would log in with the second).
    assert.match(build.stdout, /ED25519\)\n.*ED25519-CERT\)/, build.stdout)
    assert.notStrictEqual(build.code, 0, `ssh2 logged in with the agent's certificate: ${build.stderr}`)
    assert.match(build.stderr, /Permission denied \(publickey\) for user alice: tried the agent at /, build.stderr)
    // The failed build's job is cancelled.
    const jobIds = submittedJobIds(build.stderr)
    assert.lengthOf(jobIds, 1, build.stderr)
    await waitFor(async () => !(await squeueJobs()).some((j) => j.id === jobIds[0]), 30_000, "the job to end", 250)
    assert.strictEqual((await jobFields(jobIds[0]!))["JobState"], "CANCELLED")
    // Not asserted: today this failure leaves the job's journal entry and Slurm log in her
    // slurm-state-dir (a defect, reported on issue 10); removed here so later tests start clean.
    const tag = /nsh-[0-9a-f]{16}/.exec((await jobFields(jobIds[0]!))["StdOut"] ?? "")?.[0]
    assert.isDefined(tag)
    await rm(`${alice.stateDir}/${tag}.log`, { force: true })
    await rm(`${alice.stateDir}/journal/${tag}.json`, { force: true })
    await assertNothingLeft(jobIds)
  })
})
