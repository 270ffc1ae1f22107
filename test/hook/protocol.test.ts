import { Either } from "effect"
import { readFileSync } from "node:fs"
import { assert, describe, it } from "vitest"
import {
  encodeAcceptLists,
  encodeSettings,
  encodeTry,
  HookDecoder,
  type HookMessage
} from "../../src/hook/HookProtocol.js"
import { encodeString, encodeU64 } from "../../src/hook/Wire.js"

const fixture = (name: string) => readFileSync(new URL(`../fixtures/hook/${name}`, import.meta.url))
const stdin = fixture("nix-2.8-hook-stdin.bin")
const afterAccept = fixture("nix-2.8-hook-after-accept.bin")

/** Feeds `bytes` in chunks of `size` and collects every message, then signals EOF. */
const decodeAll = (bytes: Uint8Array, size: number, decoder = new HookDecoder()) => {
  const messages: Array<HookMessage> = []
  const drain = () => {
    for (;;) {
      const step = decoder.next()
      if (Either.isLeft(step)) throw step.left
      if (step.right === undefined) return
      messages.push(step.right)
      if (step.right._tag === "End") return
    }
  }
  for (let i = 0; i < bytes.length; i += size) {
    decoder.push(bytes.subarray(i, i + size))
    drain()
  }
  decoder.end()
  drain()
  return messages
}

/** Every message decodable from what was pushed so far. */
const decodeAvailable = (decoder: HookDecoder) => {
  const messages: Array<HookMessage> = []
  for (let m = Either.getOrThrow(decoder.next()); m !== undefined; m = Either.getOrThrow(decoder.next())) {
    messages.push(m)
  }
  return messages
}

const tries = (messages: ReadonlyArray<HookMessage>) => messages.flatMap((m) => (m._tag === "Try" ? [m] : []))

describe("HookDecoder on Nix 2.8's golden stdin", () => {
  for (const size of [stdin.length, 4096, 7, 1]) {
    it(`decodes the settings and four tries from ${size}-byte chunks`, () => {
      const messages = decodeAll(stdin, size)
      const settings = messages[0]
      assert.strictEqual(settings?._tag, "Settings")
      if (settings?._tag !== "Settings") return
      assert.strictEqual(settings.entries.length, 91)
      assert.deepStrictEqual(settings.entries[0], ["accept-flake-config", "false"])
      const byName = new Map(settings.entries)
      assert.strictEqual(byName.get("system"), "x86_64-linux")
      assert.strictEqual(byName.get("system-features"), "big-parallel slurm")
      assert.strictEqual(byName.get("builders"), "@/etc/nix/machines")
      assert.strictEqual(settings.raw.length, 0x1268)

      const found = tries(messages)
      assert.deepStrictEqual(
        found.map((t) => t.request.drvPath.replace(/^\/nix\/store\/[a-z0-9]{32}-/, "")),
        ["hookproto-dep-a.drv", "hookproto-dep-b.drv", "hookproto-dep-b.drv", "hookproto-top.drv"]
      )
      assert.deepStrictEqual(found[3]?.request, {
        amWilling: true,
        neededSystem: "x86_64-linux",
        drvPath: "/nix/store/xmv6prr1cnshjq7m0v3zmbw2q8mj3n2l-hookproto-top.drv",
        requiredFeatures: ["slurm"]
      })
      assert.deepStrictEqual(found[0]?.request.requiredFeatures, [])
      assert.strictEqual(messages.at(-1)?._tag, "End")
    })
  }

  it("keeps the raw bytes: settings + tries are the whole stream", () => {
    const messages = decodeAll(stdin, 3)
    const raws = messages.flatMap((m) => (m._tag === "Settings" || m._tag === "Try" ? [m.raw] : []))
    assert.isTrue(Buffer.concat(raws).equals(stdin))
  })

  it("re-encodes the decoded messages byte for byte", () => {
    const messages = decodeAll(stdin, stdin.length)
    const encoded = messages.flatMap((m) =>
      m._tag === "Settings" ? [encodeSettings(m.entries)] : m._tag === "Try" ? [encodeTry(m.request)] : []
    )
    assert.isTrue(Buffer.concat(encoded).equals(stdin))
  })

  it("decodes the lists Nix sends after an accept, from 1-byte chunks", () => {
    const fresh = new HookDecoder()
    fresh.push(stdin)
    assert.strictEqual(decodeAvailable(fresh).length, 5)
    fresh.expectAcceptLists()
    for (const byte of afterAccept) {
      fresh.push(Uint8Array.of(byte))
    }
    fresh.end()
    const lists = Either.getOrThrow(fresh.next())
    assert.strictEqual(lists?._tag, "AcceptLists")
    if (lists?._tag !== "AcceptLists") return
    assert.strictEqual(lists.inputs.length, 2)
    assert.match(lists.inputs[0]!, /^\/nix\/store\/1cpdv1[a-z0-9]{26}-hookproto-dep-a$/)
    assert.match(lists.inputs[1]!, /-hookproto-dep-b$/)
    assert.deepStrictEqual(lists.wantedOutputs, ["out"])
    assert.isTrue(encodeAcceptLists(lists.inputs, lists.wantedOutputs).equals(afterAccept))
    assert.strictEqual(Either.getOrThrow(fresh.next())?._tag, "End")
  })
})

describe("HookDecoder edge cases", () => {
  const settings = encodeSettings([["system", "x86_64-linux"]])

  it("treats EOF before anything as a clean end", () => {
    assert.deepStrictEqual(decodeAll(Buffer.alloc(0), 1).map((m) => m._tag), ["End"])
  })

  it("reports EOF inside a try as a WireError", () => {
    const bytes = Buffer.concat([
      settings,
      encodeTry({ amWilling: false, neededSystem: "x", drvPath: "/d", requiredFeatures: [] }).subarray(0, 20)
    ])
    const decoder = new HookDecoder()
    decoder.push(bytes)
    assert.strictEqual(Either.getOrThrow(decoder.next())?._tag, "Settings")
    assert.isUndefined(Either.getOrThrow(decoder.next()))
    decoder.end()
    const step = decoder.next()
    assert.isTrue(Either.isLeft(step))
    if (Either.isLeft(step)) assert.match(step.left.message, /unexpected end of input/)
  })

  it("rejects non-zero padding", () => {
    const bad = Buffer.concat([encodeU64(1), encodeU64(1), Buffer.from("a\x01\0\0\0\0\0\0", "latin1")])
    const decoder = new HookDecoder()
    decoder.push(bad)
    const step = decoder.next()
    assert.isTrue(Either.isLeft(step))
    if (Either.isLeft(step)) assert.match(step.left.message, /non-zero string padding/)
  })

  it("reports a command other than try", () => {
    const decoder = new HookDecoder()
    decoder.push(Buffer.concat([settings, encodeString("quit")]))
    assert.strictEqual(Either.getOrThrow(decoder.next())?._tag, "Settings")
    assert.deepStrictEqual(Either.getOrThrow(decoder.next()), { _tag: "OtherCommand", command: "quit" })
  })

  it("hands over undecoded bytes", () => {
    const decoder = new HookDecoder()
    decoder.push(Buffer.concat([settings, Buffer.from("rest")]))
    assert.strictEqual(Either.getOrThrow(decoder.next())?._tag, "Settings")
    assert.strictEqual(decoder.takeBuffered().toString(), "rest")
  })
})
