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
  })
})
