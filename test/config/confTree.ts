/**
 * Temp directories of nsh.conf files for the config tests.
 */
import { FileSystem } from "@effect/platform"
import { Effect } from "effect"
import * as path from "node:path"

/** A temp directory (removed with the scope) holding `files` (relative path → text); returns its path. */
export const confTree = (files: Readonly<Record<string, string>>) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const dir = yield* fs.makeTempDirectoryScoped({ prefix: "nsh-conf-" })
    for (const [rel, text] of Object.entries(files)) {
      const file = path.join(dir, rel)
      yield* fs.makeDirectory(path.dirname(file), { recursive: true })
      yield* fs.writeFileString(file, text)
    }
    return dir
  })

/** An environment that points every search location into `dir`, so no test reads the machine's files. */
export const isolatedEnv = (dir: string, extra: Readonly<Record<string, string>> = {}) => ({
  HOME: path.join(dir, "home"),
  NIX_CONF_DIR: path.join(dir, "etc-nix"),
  XDG_CONFIG_DIRS: path.join(dir, "xdg"),
  XDG_CONFIG_HOME: path.join(dir, "home", ".config"),
  ...extra
})
