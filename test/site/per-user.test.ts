/**
 * The per-user way at a site (issue 10, items 1 and 2): alice, an ordinary user with tcsh as her
 * login shell, runs her own Nix with a chroot store in her home; nsh runs as her with her
 * ~/.config/nix/nsh.conf and her own Slurm token. node1's /nix/store belongs to a nix-daemon that
 * does not trust her, so her builds go into a chroot store of hers on node1's local disk
 * (remote-store).
 */
import { assert, describe, it } from "vitest"
import { nodeExec, run } from "../e2e/support/cluster.js"
import {
  alice,
  aliceBuild,
  aliceOnNode1,
  asAlice,
  assertNothingLeft,
  jobFields,
  newNonce,
  submittedJobIds
} from "./support/site.js"

describe("site: alice's own Nix", () => {
  it("is an ordinary user with tcsh, whose Nix uses a store of her own", async () => {
    const who = await asAlice("id -u; echo $shell; nix-store --version")
    assert.strictEqual(who.code, 0, who.stderr)
    const [uid, shell] = who.stdout.split("\n")
    assert.strictEqual(uid, String(alice.uid))
    // $shell is tcsh's own variable: the command really ran under tcsh.
    assert.strictEqual(shell, "/usr/bin/tcsh")
  })

  it("node1's nix-daemon does not trust her: an import of an unsigned path is refused", async () => {
    const nonce = newNonce("import")
    const added = await asAlice(`cd && echo ${nonce} > unsigned-${nonce} && nix-store --add unsigned-${nonce}`)
    assert.strictEqual(added.code, 0, added.stderr)
    const path = added.stdout.trim()
    assert.match(path, /^\/nix\/store\/[0-9a-z]{32}-unsigned-/)
    const exported = await asAlice(`nix-store --export ${path} > unsigned-${nonce}.nar`)
    assert.strictEqual(exported.code, 0, exported.stderr)
    // On node1 as alice, through the daemon that owns /nix/store there (her nix.conf, which
    // node1 reads too, names her own store: --store daemon overrides it).
    const imported = await aliceOnNode1([
      "sh",
      "-c",
      `nix-store --store daemon --import < ${alice.home}/unsigned-${nonce}.nar`
    ])
    assert.notStrictEqual(imported.code, 0, `node1's daemon imported alice's unsigned path: ${imported.stdout}`)
    assert.match(imported.stderr, /signature|trusted/, imported.stderr)
    const valid = await nodeExec(`nix-store --check-validity ${path}`)
    assert.notStrictEqual(valid.code, 0, `${path} became valid in node1's /nix/store`)
    // The daemon really is what she talks to there: the store is root's, she cannot write it.
    const owner = await nodeExec("stat -c %U /nix/store && test -S /nix/var/nix/daemon-socket/socket")
    assert.strictEqual(owner.stdout.trim(), "root", owner.stderr)
    await asAlice(`rm -f ~/unsigned-${nonce} ~/unsigned-${nonce}.nar`)
  })

  it("nix-build as alice builds through nsh in a job of hers on node1, into her stores", async () => {
    const nonce = newNonce("one")
    const build = await aliceBuild("one", nonce)
    assert.strictEqual(build.code, 0, build.stderr)
    const out = build.stdout.trim()
    assert.match(out, /^\/nix\/store\/[0-9a-z]{32}-nsh-site-one$/, build.stderr)
    const jobIds = submittedJobIds(build.stderr)
    assert.lengthOf(jobIds, 1, build.stderr)
    assert.include(build.stderr, `nsh: Slurm job ${jobIds[0]} is running on node1`)
    const job = await jobFields(jobIds[0]!)
    assert.match(job["UserId"] ?? "", /^alice\(1000\)/)
    assert.strictEqual(job["NodeList"], "node1")

    // Here: in her chroot store (valid there, a file of hers under its root), not in root's store.
    const mine = await asAlice(`nix-store --check-validity ${out} && stat -c %U ${alice.store}${out}`)
    assert.strictEqual(mine.code, 0, mine.stderr)
    assert.strictEqual(mine.stdout.trim(), alice.user)
    assert.notStrictEqual((await run("nix-store", ["--check-validity", out])).code, 0, "the output is in root's store")
    // Once the job is over (with it the epilog, which kills every process of hers on node1):
    await assertNothingLeft(jobIds)
    // on node1, the output is in her chroot store on /scratch, not in the daemon's /nix/store.
    const there = await aliceOnNode1(["nix-store", "--store", alice.nodeStore, "--check-validity", out])
    assert.strictEqual(there.code, 0, there.stderr)
    assert.notStrictEqual(
      (await nodeExec(`nix-store --check-validity ${out}`)).code,
      0,
      "the output is in node1's /nix/store"
    )
  })
})
