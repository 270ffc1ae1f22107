/**
 * The fake nix-store of test/fixtures/nix-store/fake-nix-store.sh: installed first on PATH (so the
 * local store operations and the SshSession double's "remote" ones both run it), with one
 * directory per store that a test seeds and inspects.
 */
import { Effect } from "effect"
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync
} from "node:fs"
import { tmpdir } from "node:os"
import { basename, join } from "node:path"

const script = new URL("../fixtures/nix-store/fake-nix-store.sh", import.meta.url)

/** Puts the fake nix-store first on this process's PATH; returns the undo (for afterAll). */
export const installFakeNixStore = (): () => void => {
  const dir = mkdtempSync(join(tmpdir(), "nsh-fake-bin-"))
  copyFileSync(script, join(dir, "nix-store"))
  chmodSync(join(dir, "nix-store"), 0o755)
  const saved = process.env["PATH"]
  process.env["PATH"] = `${dir}:${saved ?? "/usr/bin:/bin"}`
  return () => {
    process.env["PATH"] = saved
    rmSync(dir, { recursive: true, force: true })
  }
}

const readLines = (
  file: string
) => (existsSync(file) ? readFileSync(file, "utf8").split("\n").filter((l) => l.length > 0) : [])

/** One fake store: the directory passed as `--store`. */
const storeAt = (dir: string) => {
  const append = (file: string, lines: ReadonlyArray<string>) =>
    Effect.sync(() => writeFileSync(join(dir, file), lines.map((l) => `${l}\n`).join(""), { flag: "a" }))
  return {
    dir,
    /** Every call's arguments (without --store), oldest first. */
    calls: Effect.sync(() => readLines(join(dir, "calls"))),
    valid: Effect.sync(() => readLines(join(dir, "valid"))),
    /** What --register-validity was given. */
    registered: Effect.sync(
      () => (existsSync(join(dir, "registered")) ? readFileSync(join(dir, "registered"), "utf8") : "")
    ),
    markValid: (...paths: ReadonlyArray<string>) => append("valid", paths),
    setReferences: (path: string, refs: ReadonlyArray<string>) => append(`refs/${basename(path)}`, refs),
    /** The contents of a path (written by the test playing the node's build, or by --restore). */
    writeContents: (path: string, contents: string) =>
      Effect.sync(() => writeFileSync(join(dir, "nar", basename(path)), contents)),
    contents: (path: string) =>
      Effect.sync(() => (existsSync(join(dir, "nar", basename(path)))
        ? readFileSync(join(dir, "nar", basename(path)), "utf8")
        : undefined)
      ),
    /** Makes an operation (e.g. `--import`) fail. */
    failOn: (op: string) => append("fail", [op]),
    /** Makes an operation hang after reading its input, until killed. */
    blockOn: (op: string) => append("block", [op]),
    /** The pid of a blocked operation, once it blocks. */
    blockedPid: (op: string) =>
      Effect.sync(() => {
        const file = join(dir, `${op.replace(/^--/, "")}.pid`)
        return existsSync(file) ? Number(readFileSync(file, "utf8").trim()) : undefined
      })
  }
}

export type FakeStore = ReturnType<typeof storeAt>

/** Creates the fake store in `dir` (empty: nothing valid, nothing failing). */
export const makeFakeStore = (dir: string): Effect.Effect<FakeStore> =>
  Effect.sync(() => {
    mkdirSync(join(dir, "nar"), { recursive: true })
    mkdirSync(join(dir, "refs"), { recursive: true })
    return storeAt(dir)
  })
