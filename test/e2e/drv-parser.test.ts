/**
 * The .drv parser against real derivations: instantiated by this machine's Nix from
 * test/fixtures/store/e2e-drvs.nix (no nixpkgs, nothing built), read through NixStoreLive, and
 * compared field by field with `nix show-derivation`.
 */
import { Command } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { fileURLToPath } from "node:url"
import type { Derivation } from "../../src/store/Derivation.js"
import { NixStore } from "../../src/store/NixStore.js"
import { NixStoreLive } from "../../src/store/NixStoreLive.js"
import { TestConfig } from "../support/settings.js"

const drvsNix = fileURLToPath(new URL("../fixtures/store/e2e-drvs.nix", import.meta.url))
// ca-derivations: for the floating content-addressed output; no substituters: no network.
const nixOptions = ["--option", "substituters", "", "--extra-experimental-features", "nix-command ca-derivations"]

const instantiate = (attr: string) =>
  Command.make("nix-instantiate", ...nixOptions, drvsNix, "-A", attr).pipe(
    Command.string,
    Effect.map((out) => out.trim())
  )

type Json = Record<string, any>
const storeDir = "/nix/store/"
const inStore = (path: string) => (path.startsWith("/") ? path : storeDir + path)
const methodPrefix: Record<string, string> = { nar: "r:", flat: "", text: "text:" }

/**
 * One entry of `nix show-derivation` in Nix 2.8's shape, whatever this Nix prints: 2.1x add
 * `name`, nest each input derivation's outputs and split `hashAlgo` into `method` + `hashAlgo`;
 * format version 4 (2.33+) keys entries by base name, nests `inputs.{drvs,srcs}`, leaves the
 * store directory out of paths, writes fixed hashes in SRI form and no path for fixed outputs,
 * and shows structured attributes as `structuredAttrs` instead of `env.__json`.
 * `dropped` lists the outputs whose path Nix left out, to leave it out on our side too.
 */
const normalized = (drvPath: string, printed: Json): { entry: Json; dropped: Array<string> } => {
  const v4 = printed["derivations"] !== undefined
  const raw: Json = v4 ? printed["derivations"][drvPath.slice(storeDir.length)] : printed[drvPath]
  const dropped: Array<string> = []
  const outputs = Object.fromEntries(
    Object.entries(raw["outputs"] as Json).map(([name, o]: [string, Json]) => {
      let hashAlgo: string | undefined = o["hashAlgo"]
      let hash: string | undefined = o["hash"]
      if (hash !== undefined && /^[a-z0-9]+-/.test(hash)) {
        const [algo, b64] = hash.split(/-(.*)/s) as [string, string]
        hashAlgo = algo
        hash = Buffer.from(b64, "base64").toString("hex")
      }
      if (o["method"] !== undefined && hashAlgo !== undefined) hashAlgo = (methodPrefix[o["method"]] ?? "") + hashAlgo
      if (v4 && o["path"] === undefined && hash !== undefined) dropped.push(name)
      return [name, {
        ...(o["path"] === undefined ? {} : { path: inStore(o["path"]) }),
        ...(hashAlgo === undefined ? {} : { hashAlgo }),
        ...(hash === undefined ? {} : { hash })
      }]
    })
  )
  const drvs: Json = v4 ? raw["inputs"]["drvs"] : raw["inputDrvs"]
  const srcs: Array<string> = v4 ? raw["inputs"]["srcs"] : raw["inputSrcs"]
  return {
    entry: {
      outputs,
      inputSrcs: srcs.map(inStore),
      inputDrvs: Object.fromEntries(
        Object.entries(drvs).map(([path, o]) => [inStore(path), Array.isArray(o) ? o : (o as Json)["outputs"]])
      ),
      system: raw["system"],
      builder: raw["builder"],
      args: raw["args"],
      // Format 4 shows structured attributes apart; the .drv holds them as env.__json.
      env: raw["structuredAttrs"] === undefined
        ? raw["env"]
        : { ...raw["env"], __json: JSON.stringify(raw["structuredAttrs"]) }
    },
    dropped
  }
}

/** `nix show-derivation` for one .drv: its JSON entry, in Nix 2.8's shape. */
const shown = (drvPath: string) =>
  Command.make("nix", ...nixOptions, "show-derivation", drvPath).pipe(
    Command.string,
    Effect.map((out) => normalized(drvPath, JSON.parse(out) as Json))
  )

/** A parsed derivation in show-derivation's JSON shape (empty output fields left out, as Nix does). */
const asShown = (drv: Derivation) => ({
  outputs: Object.fromEntries(
    drv.outputs.map((o) => [
      o.name,
      {
        ...(o.path === "" ? {} : { path: o.path }),
        ...(o.hashAlgo === "" ? {} : { hashAlgo: o.hashAlgo }),
        ...(o.hash === "" ? {} : { hash: o.hash })
      }
    ])
  ),
  inputSrcs: drv.inputSrcs,
  inputDrvs: Object.fromEntries(drv.inputDrvs.map((i) => [i.path, i.outputs])),
  system: drv.system,
  builder: drv.builder,
  args: drv.args,
  env: drv.env
})

const parsed = (attr: string) =>
  Effect.gen(function*() {
    const drvPath = yield* instantiate(attr)
    const store = yield* NixStore
    return { drv: yield* store.readDerivation(drvPath), nix: yield* shown(drvPath) }
  })

const TestLayer = NixStoreLive.pipe(Layer.provideMerge(Layer.merge(NodeContext.layer, TestConfig())))

const weird = "quote\" backslash\\ newline\n tab\t cr\r dollar$ ${x} unicode é 😀 'single' `tick`"

describe("parseDerivation on derivations from nix-instantiate", () => {
  for (const attr of ["plain", "odd", "structured", "fixed", "fixedRecursive", "floating"]) {
    it.effect(`${attr}: equals nix show-derivation`, () =>
      Effect.gen(function*() {
        const { drv, nix } = yield* parsed(attr)
        const ours = asShown(drv)
        for (const name of nix.dropped) delete (ours.outputs[name] as { path?: string }).path
        assert.deepStrictEqual(ours, nix.entry)
      }).pipe(Effect.provide(TestLayer)))
  }

  it.effect("odd: keeps odd characters in args and env values, and its inputs", () =>
    Effect.gen(function*() {
      const { drv } = yield* parsed("odd")
      assert.strictEqual(drv.env["weird"], weird)
      assert.strictEqual(drv.args[4], weird)
      assert.strictEqual(drv.env["name"], "nsh-e2e-odd+name.x_y?=z")
      assert.strictEqual(drv.env["list"], "a b c")
      assert.deepStrictEqual(drv.inputDrvs[0]?.outputs, ["dev", "out"])
      assert.lengthOf(drv.inputSrcs, 1)
      assert.isUndefined(drv.structuredAttrs)
    }).pipe(Effect.provide(TestLayer)))

  it.effect("structured: decodes __json with its lists, numbers, booleans, null and nested sets", () =>
    Effect.gen(function*() {
      const { drv } = yield* parsed("structured")
      const attrs = drv.structuredAttrs
      assert.isDefined(attrs)
      assert.strictEqual(attrs?.["weird"], weird)
      assert.deepStrictEqual(attrs?.["nested"], { a: [1, 2.5, true, null, "s"], b: { c: "\"\\\n" } })
      assert.deepStrictEqual(attrs?.["extraSlurmParams"], { cpus_per_task: 4 })
      assert.deepStrictEqual(attrs?.["outputs"], ["out", "doc"])
      assert.deepStrictEqual(Object.keys(drv.env).sort(), ["__json", "doc", "out"])
    }).pipe(Effect.provide(TestLayer)))

  it.effect("floating: an output without a path", () =>
    Effect.gen(function*() {
      const { drv } = yield* parsed("floating")
      assert.deepStrictEqual(drv.outputs, [{ name: "out", path: "", hashAlgo: "r:sha256", hash: "" }])
    }).pipe(Effect.provide(TestLayer)))
})
