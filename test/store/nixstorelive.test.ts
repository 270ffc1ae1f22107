import { FileSystem } from "@effect/platform"
import { NodeContext, NodeFileSystem } from "@effect/platform-node"
import { describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { readFileSync } from "node:fs"
import { assert } from "vitest"
import { NixStore } from "../../src/store/NixStore.js"
import { NixStoreLive } from "../../src/store/NixStoreLive.js"
import { TestConfig } from "../support/settings.js"

const Live = NixStoreLive.pipe(Layer.provide(Layer.merge(TestConfig(), NodeContext.layer)))

const top = readFileSync(new URL("../fixtures/store/hookproto-top.drv.txt", import.meta.url), "utf8")

/** A temp dir holding the hookproto-top derivation as `<dir>/x-top.drv`. */
const withDrvDir = Effect.gen(function*() {
  const fs = yield* FileSystem.FileSystem
  const dir = yield* fs.makeTempDirectoryScoped({ prefix: "nsh-store-" })
  yield* fs.writeFileString(`${dir}/x-top.drv`, top)
  yield* fs.writeFileString(`${dir}/not-a-drv.drv`, "#!/bin/sh\n")
  yield* fs.writeFileString(`${dir}/x-top.txt`, top)
  yield* fs.makeDirectory(`${dir}/dir.drv`)
  return dir
}).pipe(Effect.provide(NodeFileSystem.layer))

const readError = (path: string) =>
  NixStore.pipe(
    Effect.flatMap((store) => store.readDerivation(path)),
    Effect.flip
  )

describe("NixStoreLive.readDerivation", () => {
  it.scoped("reads and parses a .drv file", () =>
    Effect.gen(function*() {
      const dir = yield* withDrvDir
      const store = yield* NixStore
      const drv = yield* store.readDerivation(`${dir}/x-top.drv`)
      assert.strictEqual(drv.drvPath, `${dir}/x-top.drv`)
      assert.strictEqual(drv.env["name"], "hookproto-top")
    }).pipe(Effect.provide(Live)))

  it.scoped("reads a .drv of a store under another root (a chroot store) where that store keeps it", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const root = yield* fs.makeTempDirectoryScoped({ prefix: "nsh-chroot-store-" })
      const drvPath = "/nix/store/00000000000000000000000000000000-x-top.drv"
      yield* fs.makeDirectory(`${root}/nix/store`, { recursive: true })
      yield* fs.writeFileString(`${root}${drvPath}`, top)
      const store = yield* NixStore
      const drv = yield* store.readDerivation(drvPath, root)
      assert.strictEqual(drv.drvPath, drvPath)
      assert.strictEqual(drv.env["name"], "hookproto-top")
      const elsewhere = yield* Effect.flip(store.readDerivation(drvPath))
      assert.include(elsewhere.message, "no such file")
    }).pipe(Effect.provide(Layer.merge(Live, NodeFileSystem.layer))))

  it.scoped("reports a missing file, a non-.drv path, a directory and a non-derivation", () =>
    Effect.gen(function*() {
      const dir = yield* withDrvDir
      const missing = yield* readError(`${dir}/missing.drv`)
      assert.strictEqual(missing._tag, "DerivationError")
      assert.include(missing.message, `cannot read derivation ${dir}/missing.drv: no such file`)
      const notDrv = yield* readError(`${dir}/x-top.txt`)
      assert.include(notDrv.message, "the path must end in .drv")
      const directory = yield* readError(`${dir}/dir.drv`)
      assert.include(directory.message, "the file cannot be read (not a regular file)")
      const script = yield* readError(`${dir}/not-a-drv.drv`)
      assert.include(script.message, "it is not a derivation")
    }).pipe(Effect.provide(Live)))
})
