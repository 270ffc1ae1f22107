import { describe, it } from "@effect/vitest"
import { Either } from "effect"
import { readFileSync } from "node:fs"
import { assert } from "vitest"
import type { Derivation } from "../../src/store/Derivation.js"
import { derivationName } from "../../src/store/Derivation.js"
import { parseDerivation } from "../../src/store/DrvParser.js"

const fixture = (name: string) => readFileSync(new URL(`../fixtures/store/${name}`, import.meta.url), "utf8")

const parseOk = (text: string, drvPath = "/nix/store/x-test.drv"): Derivation => {
  const result = parseDerivation(drvPath, text)
  assert.isTrue(Either.isRight(result), Either.isLeft(result) ? result.left.message : "")
  return Either.getOrThrow(result)
}

const parseErr = (text: string) => {
  const result = parseDerivation("/nix/store/x-bad.drv", text)
  assert.isTrue(Either.isLeft(result), `expected a DerivationError for ${JSON.stringify(text)}`)
  const error = Either.getOrThrow(Either.flip(result))
  assert.strictEqual(error._tag, "DerivationError")
  return error
}

/** An ATerm string the way Nix prints one. */
const str = (s: string) =>
  `"${
    s.replace(/\\/g, "\\\\").replace(/"/g, "\\\"").replace(/\n/g, "\\n").replace(/\r/g, "\\r").replace(/\t/g, "\\t")
  }"`

const drvText = (parts: {
  outputs?: ReadonlyArray<readonly [string, string, string, string]>
  inputDrvs?: ReadonlyArray<readonly [string, ReadonlyArray<string>]>
  inputSrcs?: ReadonlyArray<string>
  args?: ReadonlyArray<string>
  env?: ReadonlyArray<readonly [string, string]>
}) =>
  `Derive([${(parts.outputs ?? []).map((o) => `(${o.map(str).join(",")})`).join(",")}],` +
  `[${(parts.inputDrvs ?? []).map(([p, os]) => `(${str(p)},[${os.map(str).join(",")}])`).join(",")}],` +
  `[${(parts.inputSrcs ?? []).map(str).join(",")}],"x86_64-linux","/bin/sh",` +
  `[${(parts.args ?? []).map(str).join(",")}],` +
  `[${(parts.env ?? []).map(([k, v]) => `(${str(k)},${str(v)})`).join(",")}])`

describe("parseDerivation on captured .drv files", () => {
  it("reads outputs, input derivations, builder, args and env (hookproto-top)", () => {
    const drv = parseOk(fixture("hookproto-top.drv.txt"), "/nix/store/abc-hookproto-top.drv")
    assert.strictEqual(drv.drvPath, "/nix/store/abc-hookproto-top.drv")
    assert.deepStrictEqual(drv.outputs, [
      { name: "out", path: "/nix/store/06anc58bai8miq0mg7yklbb5xmi1zm2p-hookproto-top", hashAlgo: "", hash: "" }
    ])
    assert.deepStrictEqual(drv.inputDrvs, [
      { path: "/nix/store/dfsnlmxxlcviqr653dx97p6wakfjrsrk-hookproto-dep-a.drv", outputs: ["out"] },
      { path: "/nix/store/izrf5sjbk3ljasm8kql3hcbwwq7zmabb-hookproto-dep-b.drv", outputs: ["out"] }
    ])
    assert.deepStrictEqual(drv.inputSrcs, [])
    assert.strictEqual(drv.system, "x86_64-linux")
    assert.strictEqual(drv.builder, "/bin/sh")
    assert.deepStrictEqual(drv.args, ["-c", "echo building $name; echo $name > $out"])
    assert.strictEqual(drv.env["extraSlurmParams"], "--partition=debug --time=00:10:00")
    assert.strictEqual(drv.env["requiredSystemFeatures"], "slurm")
    assert.strictEqual(Object.keys(drv.env).length, 9)
    assert.isUndefined(drv.structuredAttrs)
    assert.strictEqual(derivationName(drv), "hookproto-top")
  })

  it("unescapes \\\" \\\\ \\n \\r \\t and keeps $ and UTF-8 raw (hookproto-escapes)", () => {
    const drv = parseOk(fixture("hookproto-escapes.drv.txt"))
    assert.strictEqual(drv.env["weird"], "quote\" backslash\\ newline\n tab\t cr\r dollar$ unicode é")
    assert.deepStrictEqual(
      drv.outputs.map((o) => o.name),
      ["doc", "out"]
    )
    assert.strictEqual(drv.env["flag"], "1")
    assert.strictEqual(drv.env["noflag"], "")
    assert.strictEqual(drv.env["nul"], "")
    assert.strictEqual(drv.env["num"], "42")
    assert.strictEqual(drv.env["outputs"], "out doc")
  })

  it("decodes __json into structuredAttrs (hookproto-structured)", () => {
    const drv = parseOk(fixture("hookproto-structured.drv.txt"))
    assert.isDefined(drv.structuredAttrs)
    assert.strictEqual(drv.structuredAttrs?.["extraSlurmParams"], "--partition=debug --time=00:10:00")
    assert.deepStrictEqual(drv.structuredAttrs?.["requiredSystemFeatures"], ["slurm"])
    assert.strictEqual(drv.structuredAttrs?.["weird"], "quote\" backslash\\ newline\n tab\t dollar$ unicode é")
    // The raw __json stays in env, next to the output path variables.
    assert.deepStrictEqual(Object.keys(drv.env), ["__json", "out"])
    assert.strictEqual(derivationName(drv), "hookproto-structured")
  })
})

describe("parseDerivation on synthetic derivations", () => {
  it("accepts empty lists everywhere", () => {
    const drv = parseOk(drvText({}))
    assert.deepStrictEqual(
      [drv.outputs, drv.inputDrvs, drv.inputSrcs, drv.args, drv.env],
      [[], [], [], [], {}]
    )
  })

  it("reads every output kind: input-addressed, fixed, floating CA, deferred, impure", () => {
    const outputs = [
      ["bin", "/nix/store/b-x-bin", "", ""],
      ["dev", "", "", ""],
      ["fixed", "/nix/store/f-x", "r:sha256", "0123abcd"],
      ["floating", "", "r:sha256", ""],
      ["impure", "", "r:sha256", "impure"],
      ["text", "/nix/store/t-x", "text:sha256", "ff00"]
    ] as const
    const drv = parseOk(drvText({ outputs }))
    assert.deepStrictEqual(
      drv.outputs,
      outputs.map(([name, path, hashAlgo, hash]) => ({ name, path, hashAlgo, hash }))
    )
  })

  it("reads several input derivations with several outputs each, and input sources", () => {
    const drv = parseOk(
      drvText({
        inputDrvs: [
          ["/nix/store/a-a.drv", ["dev", "out"]],
          ["/nix/store/b-b.drv", []]
        ],
        inputSrcs: ["/nix/store/s-builder.sh", "/nix/store/t-patch"]
      })
    )
    assert.deepStrictEqual(drv.inputDrvs, [
      { path: "/nix/store/a-a.drv", outputs: ["dev", "out"] },
      { path: "/nix/store/b-b.drv", outputs: [] }
    ])
    assert.deepStrictEqual(drv.inputSrcs, ["/nix/store/s-builder.sh", "/nix/store/t-patch"])
  })

  it("round-trips any string Nix can print, including quotes, backslashes and astral characters", () => {
    const values = ["", "\\", "\"", "\\\"", "a\\nb", "\n\r\t", "$HOME `x` 'y'", "😀 é ß", "\\\\\\", "end\\\""]
    const drv = parseOk(drvText({ args: values, env: values.map((v, i) => [`k${i}`, v] as const) }))
    assert.deepStrictEqual(drv.args, values)
    assert.deepStrictEqual(
      values.map((_, i) => drv.env[`k${i}`]),
      values
    )
  })

  it("reads \\x as x for characters Nix never escapes", () => {
    const drv = parseOk(String.raw`Derive([],[],[],"x86_64-linux","/bin/sh",["\a\$\é\\"],[])`)
    assert.deepStrictEqual(drv.args, ["a$é\\"])
  })

  it("keeps an attribute named __proto__ as an ordinary env entry", () => {
    const drv = parseOk(drvText({ env: [["__proto__", "x"], ["name", "p"]] }))
    assert.strictEqual(Object.getOwnPropertyDescriptor(drv.env, "__proto__")?.value, "x")
    assert.strictEqual(Object.getPrototypeOf(drv.env), Object.prototype)
  })

  it("stays linear on many backslashes and long strings", () => {
    const long = "x".repeat(200_000)
    const escaped = "\\".repeat(100_000)
    const drv = parseOk(
      drvText({ args: Array.from({ length: 2_000 }, () => "a"), env: [["long", long], ["escaped", escaped]] })
    )
    assert.strictEqual(drv.env["long"], long)
    assert.strictEqual(drv.env["escaped"], escaped)
    assert.lengthOf(drv.args, 2_000)
  })
})

describe("parseDerivation rejects malformed input", () => {
  it("says where and what was expected", () => {
    const error = parseErr(`Derive([("out","/p","","")],[],[],"x","b",[],[("a","b"))`)
    assert.include(error.message, "/nix/store/x-bad.drv")
    assert.include(error.message, "malformed derivation at offset 55: expected ']'")
    assert.include(error.message, "found \")\"")
  })

  it("fails cleanly on every truncation of a real derivation", () => {
    const text = fixture("hookproto-escapes.drv.txt")
    for (let cut = 0; cut < text.length; cut++) {
      const error = parseErr(text.slice(0, cut))
      assert.match(
        error.reason,
        /not a derivation|malformed derivation at offset \d+: expected .*, found/,
        `cut at ${cut}`
      )
    }
  })

  it("points at an unterminated string's start", () => {
    const error = parseErr(`Derive([],[],[],"x86_64-linux,"/bin/sh",[],[])`)
    assert.include(error.reason, "expected ','")
    const unterminated = parseErr(`Derive([],[],[],"x86_64-linux`)
    assert.include(unterminated.reason, "offset 16: expected the closing '\"' of the string starting here")
  })

  it("rejects trailing bytes, whitespace and non-derivations", () => {
    assert.include(parseErr(drvText({}) + "\n").reason, "expected the end of the file")
    assert.include(parseErr(`Derive( [],[],[],"x","b",[],[])`).reason, "offset 7: expected '['")
    assert.include(parseErr("").reason, "it is not a derivation")
    assert.include(parseErr("hello world").reason, "it is not a derivation")
    assert.include(parseErr(`Derive([("out","/p","")],[],[],"x","b",[],[])`).reason, "expected ','")
  })

  it("refuses dynamic derivations with a clear reason", () => {
    const error = parseErr(`DrvWithVersion("xp-dyn-drv",[],[],[],"x","b",[],[])`)
    assert.include(error.message, "dynamic derivation")
    assert.include(error.message, "not support")
  })

  it("rejects structured attrs whose __json is not a JSON object", () => {
    assert.include(
      parseErr(drvText({ env: [["__json", "{not json"]] })).reason,
      "structured attributes (__json) are not a JSON object"
    )
    assert.include(parseErr(drvText({ env: [["__json", "[1,2]"]] })).reason, "are not a JSON object")
  })
})
