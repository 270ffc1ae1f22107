import { describe, it } from "@effect/vitest"
import { assert } from "vitest"
import { flushFramer, type FramerState, initialFramer, pushChunk } from "../../src/job/LogFramer.js"

const nonce = "0123456789abcdef0123456789abcdef"

/** Feeds chunks, returning everything forwarded and the final state. */
const feed = (chunks: ReadonlyArray<string | Buffer>, maxLogSize = 0) => {
  let state: FramerState = initialFramer
  const out: Array<Buffer> = []
  for (const c of chunks) {
    const step = pushChunk(state, typeof c === "string" ? Buffer.from(c) : c, nonce, maxLogSize)
    state = step.state
    out.push(step.forward)
  }
  return { text: Buffer.concat(out).toString(), state }
}

describe("LogFramer", () => {
  it("passes lines through and stops at the marker with its exit code", () => {
    const { text, state } = feed(["building\n", `done\n@nsh-end ${nonce} 0\n`, "after\n"])
    assert.strictEqual(text, "building\ndone\n")
    assert.strictEqual(state.endCode, 0)
  })

  it("finds a marker split across chunks at every position", () => {
    const whole = `line one\nline two\n@nsh-end ${nonce} 100\n`
    for (let cut = 1; cut < whole.length; cut++) {
      const { text, state } = feed([whole.slice(0, cut), whole.slice(cut)])
      assert.strictEqual(text, "line one\nline two\n", `cut at ${cut}`)
      assert.strictEqual(state.endCode, 100, `cut at ${cut}`)
    }
  })

  it("ignores a forged marker with the wrong nonce", () => {
    const { text, state } = feed([`@nsh-end ${"f".repeat(32)} 0\nreal\n`, `@nsh-end ${nonce} 7\n`])
    assert.strictEqual(text, `@nsh-end ${"f".repeat(32)} 0\nreal\n`)
    assert.strictEqual(state.endCode, 7)
  })

  it("keeps unterminated build output before the marker on its own line", () => {
    const { text, state } = feed([`no newline at end@nsh-end ${nonce} 1\n`])
    assert.strictEqual(text, "no newline at end\n")
    assert.strictEqual(state.endCode, 1)
  })

  it("ends unterminated output forwarded in an earlier chunk with a newline when the marker follows", () => {
    for (
      const chunks of [["no newline at end", `@nsh-end ${nonce} 1\n`], ["no newline at end@nsh", `-end ${nonce} 1\n`]]
    ) {
      const { text, state } = feed(chunks)
      assert.strictEqual(text, "no newline at end\n", JSON.stringify(chunks))
      assert.strictEqual(state.endCode, 1)
    }
    assert.strictEqual(feed(["line\n", `@nsh-end ${nonce} 0\n`]).text, "line\n")
  })

  it("a long line whose every chunk ends like the marker's start is forwarded as it comes, holding at most a marker", () => {
    // Before: the whole partial line was held back (and re-copied at every chunk), without bound.
    const chunk = `${"x".repeat(1000)}@nsh-e`
    let state: FramerState = initialFramer
    let forwarded = 0
    for (let i = 0; i < 1000; i++) {
      const step = pushChunk(state, Buffer.from(chunk), nonce, 0)
      state = step.state
      forwarded += step.forward.length
      assert.isAtMost(state.held.length, `@nsh-end ${nonce} `.length + 16, `chunk ${i}`)
    }
    assert.strictEqual(forwarded + state.held.length, 1000 * chunk.length)
    assert.strictEqual(state.forwarded, forwarded)
    assert.strictEqual(flushFramer(state).forward.toString(), "@nsh-e")
  })

  it("such a line counts against max-build-log-size: stopped at exactly the limit", () => {
    // Before: nothing was forwarded or counted, so the limit never fired and the hook grew.
    const { text, state } = feed(Array.from({ length: 200 }, () => `${"y".repeat(99)}@`), 10_000)
    assert.isTrue(state.overLimit)
    assert.strictEqual(text.length, 10_000)
    assert.strictEqual(state.held.length, 0)
  })

  it("a marker whose exit code never ends is a failure (exit 1), without holding more", () => {
    const { state } = feed([`@nsh-end ${nonce} 1`, "2".repeat(40)])
    assert.strictEqual(state.endCode, 1)
    assert.strictEqual(state.held.length, 0)
  })

  it("forwards partial lines and carriage returns at once when they cannot be the marker", () => {
    const step = pushChunk(initialFramer, Buffer.from("progress 10%\rprogress 20%"), nonce, 0)
    assert.strictEqual(step.forward.toString(), "progress 10%\rprogress 20%")
    assert.strictEqual(step.state.held.length, 0)
  })

  it("holds back a partial line that could become the marker, and flushes it at the end", () => {
    const step = pushChunk(initialFramer, Buffer.from("ok\n@nsh-e"), nonce, 0)
    assert.strictEqual(step.forward.toString(), "ok\n")
    assert.strictEqual(flushFramer(step.state).forward.toString(), "@nsh-e")
  })

  it("stops at max-build-log-size, forwarding exactly the limit", () => {
    const { text, state } = feed(["12345\n", "67890\n", "more\n"], 8)
    assert.strictEqual(text, "12345\n67")
    assert.isTrue(state.overLimit)
    assert.strictEqual(state.forwarded, 8)
  })
})
