/**
 * The hook's front (src/hook/Front.ts) and its routing card: it declines from a fresh card without
 * the full session, and hands everything else over with exactly the bytes the session must read.
 */
import { describe, it } from "@effect/vitest"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import * as Os from "node:os"
import * as path from "node:path"
import { assert, onTestFinished } from "vitest"
import type { BuildRequest } from "../../src/dispatch/TryHandler.js"
import { type FrontIO, runFront } from "../../src/hook/Front.js"
import { encodeSettings, encodeTry } from "../../src/hook/HookProtocol.js"
import { cardFor, readFreshCard, writeCard } from "../../src/hook/RoutingCard.js"
import { testLoaded } from "../support/settings.js"

const tryOf = (name: string, requiredFeatures: ReadonlyArray<string>): BuildRequest => ({
  amWilling: true,
  neededSystem: "x86_64-linux",
  drvPath: `/nix/store/${"0".repeat(32)}-${name}.drv`,
  requiredFeatures
})
const declined = tryOf("declined", [])
const routed = tryOf("routed", ["nsh"])
const settings = (builders = "") => encodeSettings([["builders", builders], ["system", "x86_64-linux"]])

/** A directory with an nsh.conf (named by NSH_CONF) and a card for it, as a full session leaves them. */
const fixture = () => {
  const dir = mkdtempSync(path.join(Os.tmpdir(), "nsh-front-"))
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }))
  const conf = path.join(dir, "nsh.conf")
  writeFileSync(conf, "system-features = nsh\nmandatory-system-features = nsh\n")
  const env = { NSH_CONF: conf }
  const loaded = {
    ...testLoaded({ systemFeatures: ["nsh"], mandatorySystemFeatures: ["nsh"] }),
    files: [conf],
    absent: [path.join(dir, "included.conf")]
  }
  // `now` well after the file's time stamps: the card is written only for settled files.
  const card = cardFor(loaded, env, Date.now() + 10_000)
  assert.isDefined(card)
  writeCard(dir, card!)
  return { dir, conf, env, loaded }
}

/** Runs the front on `chunks` (then EOF), recording what it wrote, logged, handed over, and its exit. */
const run = (options: { dir: string; env: Record<string, string>; verbosity?: number }, chunks: Array<Buffer>) => {
  const out = {
    written: [] as Array<string>,
    debug: [] as Array<string>,
    handedOver: undefined as { replay: Buffer; routedToCluster: boolean } | undefined,
    exit: undefined as number | undefined,
    listening: false
  }
  let feed: ((chunk: Buffer) => void) | undefined
  let end: (() => void) | undefined
  const io: FrontIO = {
    listen: (onChunk, onEnd) => {
      out.listening = true
      feed = onChunk
      end = onEnd
      return () => {
        out.listening = false
      }
    },
    write: (text) => out.written.push(text),
    exit: (code) => {
      out.exit = code
    }
  }
  runFront(
    { verbosity: options.verbosity ?? 3, env: options.env, cacheDir: options.dir, debugLog: (l) => out.debug.push(l) },
    io,
    (replay, routedToCluster) => {
      out.handedOver = { replay, routedToCluster }
    }
  )
  for (const chunk of chunks) if (out.listening) feed!(chunk)
  if (out.listening) end!()
  return out
}

describe("hook front", () => {
  it("declines from a fresh card without the full session, and exits at Nix's EOF", () => {
    const f = fixture()
    // Split mid-message: the decoder waits for the rest.
    const stream = Buffer.concat([settings(), encodeTry(declined), encodeTry(declined)])
    const out = run(f, [stream.subarray(0, 13), stream.subarray(13)])
    assert.deepStrictEqual(out.written, ["# decline\n", "# decline\n"])
    assert.strictEqual(out.debug.length, 2)
    assert.match(out.debug[0]!, /^\d+ nsh=Decline reply=decline \/nix\/store\/0+-declined\.drv\n$/)
    assert.isUndefined(out.handedOver)
    assert.strictEqual(out.exit, 0)
  })

  it("hands a derivation routed to the cluster over with the settings and that try, not the answered ones", () => {
    const f = fixture()
    const later = Buffer.from("after-accept bytes")
    const out = run(f, [Buffer.concat([settings(), encodeTry(declined), encodeTry(routed), later])])
    assert.deepStrictEqual(out.written, ["# decline\n"])
    assert.deepStrictEqual(out.handedOver, {
      replay: Buffer.concat([settings(), encodeTry(routed), later]),
      routedToCluster: true
    })
    assert.isFalse(out.listening)
    assert.isUndefined(out.exit)
  })

  it("hands over what it read when Nix has builders to fall back on", () => {
    const f = fixture()
    const first = settings("ssh://other x86_64-linux")
    const out = run(f, [first.subarray(0, 20), Buffer.concat([first.subarray(20), encodeTry(declined)])])
    assert.deepStrictEqual(out.written, [])
    assert.deepStrictEqual(out.handedOver?.replay, Buffer.concat([first, encodeTry(declined)]))
  })

  it("hands over before reading when the card is stale, missing, or Nix is verbose", () => {
    const stream = [Buffer.concat([settings(), encodeTry(declined)])]
    const edited = fixture()
    writeFileSync(edited.conf, "system-features = nsh big\nmandatory-system-features = nsh\n")
    const appeared = fixture()
    writeFileSync(path.join(appeared.dir, "included.conf"), "")
    const otherEnv = fixture()
    const verbose = fixture()
    for (
      const out of [
        run(edited, stream),
        run(appeared, stream),
        run({ ...otherEnv, env: {} }, stream),
        run({ dir: mkdtempSync(path.join(Os.tmpdir(), "nsh-front-none-")), env: {} }, stream),
        run({ ...verbose, verbosity: 4 }, stream)
      ]
    ) {
      assert.deepStrictEqual(out.handedOver, { replay: Buffer.alloc(0), routedToCluster: false })
      assert.deepStrictEqual(out.written, [])
    }
  })

  it("leaves no card for settings with warnings or files changed just now", () => {
    const f = fixture()
    assert.isUndefined(cardFor({ ...f.loaded, warnings: ["unknown key 'x'"] }, f.env, Date.now() + 10_000))
    assert.isUndefined(cardFor(f.loaded, f.env, Date.now()))
    assert.deepStrictEqual(readFreshCard(f.dir, f.env), {
      system: "x86_64-linux",
      systemFeatures: ["nsh"],
      mandatorySystemFeatures: ["nsh"]
    })
  })
})
