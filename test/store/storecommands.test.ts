import { describe, it } from "@effect/vitest"
import { assert } from "vitest"
import { realPathIn } from "../../src/store/StoreCommands.js"

const out = "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-hello"

describe("realPathIn (where nix-store --dump finds a path)", () => {
  it("is the path itself for the default store and daemons, and under the root of a store elsewhere", () => {
    for (const store of ["auto", "", "daemon", "unix:///run/nix/daemon-socket/socket"]) {
      assert.strictEqual(realPathIn({ store, binDir: "" }, out), out, store)
    }
    assert.strictEqual(realPathIn({ store: "/local/store", binDir: "" }, out), `/local/store${out}`)
    assert.strictEqual(realPathIn({ store: "/local/store/", binDir: "" }, out), `/local/store${out}`)
    assert.strictEqual(realPathIn({ store: "local?root=/scratch/nix", binDir: "" }, out), `/scratch/nix${out}`)
    // Nix 2.34 hands the hook a user's `--store ~/.local/share/nix/root` as a URL.
    assert.strictEqual(
      realPathIn({ store: "local:///home/me/.local/share/nix/root", binDir: "" }, out),
      `/home/me/.local/share/nix/root${out}`
    )
    assert.strictEqual(
      realPathIn({ store: "local:///scratch/nix?read-only=false", binDir: "" }, out),
      `/scratch/nix${out}`
    )
    assert.strictEqual(realPathIn({ store: "local", binDir: "" }, out), out)
  })
})
