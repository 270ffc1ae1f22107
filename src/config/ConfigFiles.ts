/**
 * Where nsh.conf files are looked for, following Nix's search for nix.conf.
 */
import * as os from "node:os"
import * as path from "node:path"
import type { ConfFile } from "./NshConfParser.js"

/** The environment nsh reads its configuration from (`process.env` in production). */
export type ConfigEnv = Readonly<Record<string, string | undefined>>

const nonEmpty = (
  value: string | undefined
): string | undefined => (value === undefined || value === "" ? undefined : value)

/** The user's home: `$HOME`, else the password database (the Nix daemon may run the hook without HOME). */
export const homeDirectory = (env: ConfigEnv): string => nonEmpty(env["HOME"]) ?? os.homedir()

/**
 * The nsh.conf files to read, in order (later override earlier).
 * `NSH_CONF` names exactly one required file. Otherwise: `$NIX_CONF_DIR/nsh.conf`, then each
 * `$XDG_CONFIG_DIRS` entry's `nix/nsh.conf` last-to-first (so earlier entries win), then
 * `$XDG_CONFIG_HOME/nix/nsh.conf`. Empty variables count as unset (XDG base directory spec).
 */
export const configFiles = (env: ConfigEnv): ReadonlyArray<ConfFile> => {
  const explicit = nonEmpty(env["NSH_CONF"])
  if (explicit !== undefined) return [{ path: path.resolve(explicit), requiredBy: "NSH_CONF" }]
  const nixConfDir = nonEmpty(env["NIX_CONF_DIR"]) ?? "/etc/nix"
  const xdgDirs = (nonEmpty(env["XDG_CONFIG_DIRS"]) ?? "/etc/xdg").split(":").filter((d) => d !== "")
  const configHome = nonEmpty(env["XDG_CONFIG_HOME"]) ?? path.join(homeDirectory(env), ".config")
  const paths = [
    path.join(nixConfDir, "nsh.conf"),
    ...xdgDirs.reverse().map((dir) => path.join(dir, "nix", "nsh.conf")),
    path.join(configHome, "nix", "nsh.conf")
  ].map((p) => path.resolve(p))
  // A file listed twice (e.g. XDG_CONFIG_DIRS containing ~/.config) is read once, at its last place.
  return paths.filter((p, i) => paths.lastIndexOf(p) === i).map((p) => ({ path: p }))
}
