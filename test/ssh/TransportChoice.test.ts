import { FileSystem } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { existsSync } from "node:fs"
import { assert } from "vitest"
import { resolveHost } from "../../src/ssh/OpenSshConfig.js"
import { chooseTransport } from "../../src/ssh/TransportChoice.js"

/** The transport `auto` picks for a `Host node` block with `lines` (real `ssh -G` on it), and why. */
const autoFor = (
  lines: ReadonlyArray<string>,
  files: Record<string, string> = {},
  env: Record<string, string> = {}
) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const dir = yield* fs.makeTempDirectoryScoped({ prefix: "nsh-transport-" })
    for (const [name, text] of Object.entries(files)) yield* fs.writeFileString(`${dir}/${name}`, text)
    const config = `${dir}/ssh_config`
    yield* fs.writeFileString(
      config,
      ["Host node", `  IdentityFile ${dir}/key`, ...lines.map((l) => `  ${l.replaceAll("DIR", dir)}`), ""].join("\n")
    )
    const host = yield* resolveHost("node", { configFile: config })
    return yield* chooseTransport("auto", host, env)
  })

describe("ssh-transport = auto", () => {
  it.scoped("keeps ssh2 for a plain key", () =>
    Effect.gen(function*() {
      const choice = yield* autoFor([], { key: "x", "key.pub": "ssh-ed25519 AAAA" })
      assert.strictEqual(choice.transport, "ssh2")
    }).pipe(Effect.provide(NodeContext.layer)))

  const needsOpenSsh: ReadonlyArray<
    readonly [string, ReadonlyArray<string>, Record<string, string>, string, Record<string, string>?]
  > = [
    ["CertificateFile", ["CertificateFile DIR/other-cert.pub"], {}, "CertificateFile"],
    ["a -cert.pub beside the IdentityFile", [], { key: "x", "key-cert.pub": "x" }, "key-cert.pub"],
    ["GSSAPIAuthentication yes with a Kerberos ticket", ["GSSAPIAuthentication yes"], {}, "GSSAPIAuthentication", {
      KRB5CCNAME: "FILE:/tmp/krb5cc_test"
    }],
    ["PKCS11Provider", ["PKCS11Provider /usr/lib/opensc-pkcs11.so"], {}, "PKCS11Provider"],
    ["HostbasedAuthentication yes", ["HostbasedAuthentication yes"], {}, "HostbasedAuthentication"],
    ["ProxyCommand", ["ProxyCommand nc %h %p"], {}, "ProxyCommand"],
    ["KnownHostsCommand", ["KnownHostsCommand /bin/true"], {}, "KnownHostsCommand"],
    ["a FIDO sk- key", [], { key: "x", "key.pub": "sk-ssh-ed25519@openssh.com AAAA" }, "security key"]
  ]
  for (const [name, lines, files, named, env] of needsOpenSsh) {
    it.scoped(`picks OpenSSH for ${name}, saying why`, () =>
      Effect.gen(function*() {
        const choice = yield* autoFor(lines, files, env)
        assert.strictEqual(choice.transport, "openssh")
        assert.include(choice.why, named)
      }).pipe(Effect.provide(NodeContext.layer)))
  }

  it.scoped("keeps ssh2 for GSSAPIAuthentication yes without a ticket (Debian's default ssh_config)", () =>
    Effect.gen(function*() {
      assert.isFalse(existsSync(`/tmp/krb5cc_${process.getuid?.()}`), "this test needs no Kerberos ticket cache")
      const choice = yield* autoFor(["GSSAPIAuthentication yes"], { key: "x", "key.pub": "ssh-ed25519 AAAA" })
      assert.strictEqual(choice.transport, "ssh2")
    }).pipe(Effect.provide(NodeContext.layer)))

  it.effect("a set transport is used as it is", () =>
    Effect.gen(function*() {
      const host = yield* resolveHost("node", { configFile: "/dev/null" })
      assert.strictEqual(
        (yield* chooseTransport("ssh2", { ...host, gssapiAuthentication: true }, {})).transport,
        "ssh2"
      )
      assert.strictEqual((yield* chooseTransport("openssh", host, {})).transport, "openssh")
    }).pipe(Effect.provide(NodeContext.layer)))
})
