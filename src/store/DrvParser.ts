/**
 * Parses Nix's `.drv` files (ATerm: `Derive([outputs],[inputDrvs],[inputSrcs],system,builder,
 * [args],[env])`, no whitespace, C-style strings) in one pass over the text, without regexes.
 */
import { Either } from "effect"
import { decodeJsonObject } from "../util/Json.js"
import type { Derivation, DerivationOutput } from "./Derivation.js"
import { DerivationError } from "./StoreErrors.js"

const QUOTE = 0x22

/** Where the scanner stopped and what it wanted there; turned into a DerivationError at the top. */
class Malformed {
  constructor(
    readonly at: number,
    readonly expected: string
  ) {}
}

/** A cursor over the text. Failing throws `Malformed`, caught once in `parseDerivation`. */
class Scanner {
  pos = 0
  /** Position of the next backslash at or after some earlier point (-1: none left), so that
   * finding escapes stays linear in the file size however many strings there are. */
  private backslash = -2

  constructor(readonly text: string) {}

  fail(expected: string, at: number = this.pos): never {
    throw new Malformed(at, expected)
  }

  literal(token: string): void {
    if (!this.text.startsWith(token, this.pos)) this.fail(`'${token}'`)
    this.pos += token.length
  }

  /** Consumes `token` if it is next. */
  skip(token: string): boolean {
    if (this.text.startsWith(token, this.pos)) {
      this.pos += token.length
      return true
    }
    return false
  }

  string(): string {
    const text = this.text
    const open = this.pos
    if (text.charCodeAt(open) !== QUOTE) this.fail("a string ('\"')")
    let from = open + 1
    let out = ""
    for (;;) {
      const quote = text.indexOf("\"", from)
      if (quote < 0) this.fail("the closing '\"' of the string starting here", open)
      if (this.backslash !== -1 && this.backslash < from) this.backslash = text.indexOf("\\", from)
      const escape = this.backslash
      if (escape < 0 || escape > quote) {
        this.pos = quote + 1
        return out + text.slice(from, quote)
      }
      // Nix writes only \" \\ \n \r \t; like Nix, read any other `\x` as `x`.
      out += text.slice(from, escape)
      const code = text.charCodeAt(escape + 1)
      out += code === 0x6e ? "\n" : code === 0x72 ? "\r" : code === 0x74 ? "\t" : text.charAt(escape + 1)
      from = escape + 2
    }
  }

  /** `[item,item,...]`, possibly empty. */
  list<A>(item: () => A): Array<A> {
    this.literal("[")
    const items: Array<A> = []
    if (this.skip("]")) return items
    do {
      items.push(item())
    } while (this.skip(","))
    this.literal("]")
    return items
  }

  end(): void {
    if (this.pos !== this.text.length) this.fail("the end of the file after the final ')'")
  }
}

const describeFound = (text: string, at: number): string =>
  at >= text.length
    ? "the end of the file"
    : JSON.stringify(text.slice(at, at + 24) + (text.length > at + 24 ? "…" : ""))

const output = (s: Scanner): DerivationOutput => {
  s.literal("(")
  const name = s.string()
  s.literal(",")
  const path = s.string()
  s.literal(",")
  const hashAlgo = s.string()
  s.literal(",")
  const hash = s.string()
  s.literal(")")
  return { name, path, hashAlgo, hash }
}

const inputDrv = (s: Scanner) => {
  s.literal("(")
  const path = s.string()
  s.literal(",")
  const outputs = s.list(() => s.string())
  s.literal(")")
  return { path, outputs }
}

const envPair = (s: Scanner): readonly [string, string] => {
  s.literal("(")
  const key = s.string()
  s.literal(",")
  const value = s.string()
  s.literal(")")
  return [key, value]
}

type Body = Omit<Derivation, "drvPath" | "structuredAttrs">

const parseBody = (text: string): Either.Either<Body, Malformed> => {
  const s = new Scanner(text)
  // A parse failure anywhere unwinds to here: the scanner is plain code, not an Effect.
  try {
    s.literal("Derive(")
    const outputs = s.list(() => output(s))
    s.literal(",")
    const inputDrvs = s.list(() => inputDrv(s))
    s.literal(",")
    const inputSrcs = s.list(() => s.string())
    s.literal(",")
    const system = s.string()
    s.literal(",")
    const builder = s.string()
    s.literal(",")
    const args = s.list(() => s.string())
    s.literal(",")
    // fromEntries defines own properties, so an attribute named `__proto__` survives.
    const env = Object.fromEntries(s.list(() => envPair(s)))
    s.literal(")")
    s.end()
    return Either.right({ outputs, inputDrvs, inputSrcs, system, builder, args, env })
  } catch (e) {
    if (e instanceof Malformed) return Either.left(e)
    throw e
  }
}

/** Parses the text of a `.drv` file; `drvPath` names it in the result and in errors. */
export const parseDerivation = (drvPath: string, text: string): Either.Either<Derivation, DerivationError> => {
  if (text.startsWith("DrvWithVersion(")) {
    return Either.left(
      new DerivationError({
        drvPath,
        reason:
          "it is a dynamic derivation (DrvWithVersion, Nix's experimental dynamic-derivations feature), which nsh does not support"
      })
    )
  }
  return parseBody(text).pipe(
    Either.mapLeft(
      (m) =>
        new DerivationError({
          drvPath,
          reason: m.at === 0 && !text.startsWith("Derive(")
            ? "it is not a derivation (a .drv file starts with 'Derive(')"
            : `malformed derivation at offset ${m.at}: expected ${m.expected}, found ${describeFound(text, m.at)}`
        })
    ),
    Either.flatMap((body): Either.Either<Derivation, DerivationError> => {
      const json = body.env["__json"]
      if (json === undefined) return Either.right({ drvPath, ...body, structuredAttrs: undefined })
      return decodeJsonObject(json).pipe(
        Either.mapBoth({
          onLeft: (problem) =>
            new DerivationError({
              drvPath,
              reason: `its structured attributes (__json) are not a JSON object: ${problem}`
            }),
          onRight: (structuredAttrs) => ({ drvPath, ...body, structuredAttrs })
        })
      )
    })
  )
}
