/**
 * What Nix writes to a build hook's stdin, for timing hooks without Nix: the settings block
 * captured from Nix 2.8 (test/fixtures/hook/nix-2.8-hook-stdin.bin, 91 settings) with chosen
 * overrides, then one `try`. Nix's wire format: u64 little-endian; a string is its length, its
 * bytes and zero padding to a multiple of 8 (the format src/hook/Wire.ts decodes).
 */
import { readFileSync } from "node:fs"
import { repoRoot } from "./common.mjs"

const u64 = (n) => {
  const out = Buffer.alloc(8)
  out.writeUInt32LE(n % 2 ** 32, 0)
  out.writeUInt32LE(Math.floor(n / 2 ** 32), 4)
  return out
}

const string = (text) => {
  const bytes = Buffer.from(text, "utf8")
  return Buffer.concat([u64(bytes.length), bytes, Buffer.alloc((8 - (bytes.length % 8)) % 8)])
}

/** The settings Nix 2.8 sent in the captured session, in order. */
const capturedSettings = () => {
  const buf = readFileSync(`${repoRoot}/test/fixtures/hook/nix-2.8-hook-stdin.bin`)
  let pos = 0
  const readU64 = () => {
    const n = buf.readUInt32LE(pos) + buf.readUInt32LE(pos + 4) * 2 ** 32
    pos += 8
    return n
  }
  const readString = () => {
    const length = readU64()
    const text = buf.toString("utf8", pos, pos + length)
    pos += length + ((8 - (length % 8)) % 8)
    return text
  }
  const entries = []
  while (readU64() === 1) entries.push([readString(), readString()])
  return entries
}

/** Settings (captured, with `overrides` applied) followed by one `try` for `drvPath`. */
export const hookStdin = ({ overrides = {}, drvPath, system = "x86_64-linux", features = [] }) => {
  const parts = []
  for (const [name, value] of capturedSettings()) {
    parts.push(u64(1), string(name), string(Object.hasOwn(overrides, name) ? overrides[name] : value))
  }
  parts.push(
    u64(0),
    string("try"),
    u64(1),
    string(system),
    string(drvPath),
    u64(features.length),
    ...features.map(string)
  )
  return Buffer.concat(parts)
}
