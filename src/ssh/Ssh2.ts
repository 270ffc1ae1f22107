/**
 * ssh2, loaded on first use: a hook that only declines never loads it.
 */
import { Effect } from "effect"
import type * as Ssh2 from "ssh2"
import { SshConnectError } from "./SshErrors.js"

/** The ssh2 module (CommonJS: its exports are the ESM default). */
export type Ssh2Module = typeof Ssh2

/** Imports ssh2; works from TS sources (vitest) and from the esbuild bundle alike. */
export const loadSsh2 = (host: string): Effect.Effect<Ssh2Module, SshConnectError> =>
  Effect.tryPromise({
    try: async () => {
      const module = (await import("ssh2")) as Ssh2Module & { readonly default?: Ssh2Module }
      return module.default ?? module
    },
    catch: (error) => new SshConnectError({ host, reason: `cannot load the ssh2 library: ${String(error)}` })
  })
