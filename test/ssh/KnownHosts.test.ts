import { Command, FileSystem } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { assert } from "vitest"
import {
  checkHostKey,
  fingerprint,
  type HostKeyCheck,
  hostMatches,
  knownHostName,
  knownHostsLine,
  parseKnownHosts,
  preferredHostKeyAlgorithms
} from "../../src/ssh/KnownHosts.js"

// node1's real host key (the lab's), and two made-up blobs of other types/values.
const node1Line = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINR4P7rbQp83xmvTzv0veBLATCbNi3+VnMPdJxUHWVBo"
const node1Key = Buffer.from(node1Line.split(" ")[1]!, "base64")
const blob = (type: string, fill: number) => {
  const name = Buffer.from(type)
  const header = Buffer.alloc(4)
  header.writeUInt32BE(name.length)
  return Buffer.concat([header, name, Buffer.alloc(32, fill)])
}
const otherEd25519 = blob("ssh-ed25519", 7)
const ecdsa = blob("ecdsa-sha2-nistp256", 9)
const line = (hosts: string, key: Buffer, marker = "") =>
  `${marker}${marker === "" ? "" : " "}${hosts} ${key.subarray(4, 4 + key.readUInt32BE(0)).toString()} ${
    key.toString("base64")
  }`

const check = (text: string, overrides: Partial<HostKeyCheck> = {}) =>
  checkHostKey({
    host: "node1",
    name: "node1",
    key: node1Key,
    entries: parseKnownHosts(text, "/k"),
    policy: "yes",
    files: ["/k"],
    ...overrides
  })

describe("known_hosts parsing and host matching", () => {
  it("patterns: lists, wildcards, negation, [host]:port, case", () => {
    const [entry] = parseKnownHosts(line("node?,*.cluster.example,!bad.cluster.example,[gw]:2222", node1Key), "/k")
    assert.isDefined(entry)
    const matches = (name: string) => hostMatches(entry!, name)
    assert.isTrue(matches("node1"))
    assert.isTrue(matches("NODE2"))
    assert.isFalse(matches("node12"))
    assert.isTrue(matches("a.cluster.example"))
    assert.isFalse(matches("bad.cluster.example"))
    assert.isTrue(matches("[gw]:2222"))
    assert.isFalse(matches("gw"))
    assert.isFalse(matches("[gw]:22"))
  })

  it("skips comments, blank lines, unknown markers and lines whose type does not match the key", () => {
    const text = [
      "# comment",
      "",
      "@future node1 " + node1Line,
      "node1 ssh-rsa " + node1Key.toString("base64"),
      "node1 ssh-ed25519 !!!",
      "node1 " + node1Line + " a comment"
    ].join("\n")
    const entries = parseKnownHosts(text, "/k")
    assert.deepStrictEqual(entries.map((e) => e.line), [6])
  })

  it("lookup names follow ssh: port 22 bare, others bracketed, HostKeyAlias as is", () => {
    assert.strictEqual(knownHostName("node1", 22), "node1")
    assert.strictEqual(knownHostName("node1", 2222), "[node1]:2222")
    assert.strictEqual(knownHostName("node1", 2222, "alias"), "alias")
  })

  it("fingerprints like ssh-keygen -l", () => {
    assert.strictEqual(fingerprint(node1Key), "SHA256:IYoHU5uBIVdMunZJIa9NydyOI2Lt+yVcEQ4xWGauZhI")
  })

  it.scopedLive("hashed entries written by ssh-keygen -H match, others' names do not", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* fs.makeTempDirectoryScoped()
      const file = `${dir}/known_hosts`
      yield* fs.writeFileString(file, `node1 ${node1Line}\n[gw]:2222 ${node1Line}\n`)
      yield* Command.string(Command.make("ssh-keygen", "-H", "-f", file))
      const entries = parseKnownHosts(yield* fs.readFileString(file), file)
      assert.deepStrictEqual(entries.map((e) => e.names._tag), ["Hashed", "Hashed"])
      assert.isTrue(hostMatches(entries[0]!, "node1"))
      assert.isFalse(hostMatches(entries[0]!, "node2"))
      assert.isTrue(hostMatches(entries[1]!, "[gw]:2222"))
      assert.isFalse(hostMatches(entries[1]!, "gw"))
    }).pipe(Effect.provide(NodeContext.layer)))

  it("our hashed lines round-trip", () => {
    const [entry] = parseKnownHosts(knownHostsLine("[node1]:2222", node1Key, true), "/k")
    assert.strictEqual(entry?.names._tag, "Hashed")
    assert.isTrue(hostMatches(entry!, "[node1]:2222"))
  })
})

describe("the host key decision", () => {
  it("known key → Known", () => {
    assert.strictEqual(check(line("node1,127.0.0.11", node1Key))._tag, "Known")
  })

  it("another key of the same type → CHANGED, refused even with accept-new", () => {
    const verdict = check(`${line("node1", otherEd25519)}\n`, { policy: "accept-new" })
    assert.strictEqual(verdict._tag, "Reject")
    if (verdict._tag === "Reject") {
      assert.include(verdict.error.message, "CHANGED")
      assert.include(verdict.error.message, "/k:1")
      assert.include(verdict.error.message, fingerprint(node1Key))
    }
  })

  it("CHANGED with StrictHostKeyChecking=no goes through with a warning", () => {
    const verdict = check(line("node1", otherEd25519), { policy: "no" })
    assert.strictEqual(verdict._tag, "AcceptChanged")
  })

  it("unknown → refused for yes and ask, added for accept-new and no", () => {
    for (const policy of ["yes", "ask"] as const) {
      const verdict = check(line("node2", node1Key), { policy })
      assert.strictEqual(verdict._tag, "Reject")
      if (verdict._tag === "Reject") assert.include(verdict.error.message, "is not known")
    }
    for (const policy of ["accept-new", "no"] as const) {
      const verdict = check("", { policy, files: ["/u", "/g"] })
      assert.strictEqual(verdict._tag, "AcceptNew")
      if (verdict._tag === "AcceptNew") assert.deepStrictEqual([verdict.file, verdict.name], ["/u", "node1"])
    }
  })

  it("only another key type known: not CHANGED, but unknown (like ssh)", () => {
    const verdict = check(line("node1", ecdsa))
    assert.strictEqual(verdict._tag, "Reject")
    if (verdict._tag === "Reject") assert.include(verdict.error.reason, "(only ecdsa-sha2-nistp256)")
  })

  it("@revoked wins over a plain entry, whatever the policy", () => {
    const text = `${line("node1", node1Key)}\n${line("*", node1Key, "@revoked")}`
    const verdict = check(text, { policy: "no" })
    assert.strictEqual(verdict._tag, "Reject")
    if (verdict._tag === "Reject") assert.include(verdict.error.message, "REVOKED (/k:2)")
  })

  it("@cert-authority lines do not vouch for a plain key, and the error says why", () => {
    const verdict = check(line("*.cluster.example,node1", otherEd25519, "@cert-authority"))
    assert.strictEqual(verdict._tag, "Reject")
    if (verdict._tag === "Reject") assert.include(verdict.error.reason, "host certificates are not supported")
  })

  it("offers the known key types first", () => {
    const entries = parseKnownHosts(`${line("node1", ecdsa)}\n${line("other", node1Key)}`, "/k")
    assert.deepStrictEqual(preferredHostKeyAlgorithms(entries, "node1"), ["ecdsa-sha2-nistp256"])
  })
})
