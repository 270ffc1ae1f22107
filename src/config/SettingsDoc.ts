/**
 * Documentation generated from `SettingsTable`: the commented `nsh.conf.example` and a Markdown
 * reference table, so neither can drift from what the parser accepts.
 */
import type { SettingDoc } from "./Settings.js"
import { SettingsTable } from "./Settings.js"
import { describeKind } from "./SettingsDecode.js"

const width = 78

const wrap = (text: string, prefix: string): Array<string> => {
  const lines: Array<string> = []
  let current = ""
  for (const word of text.split(/\s+/).filter((w) => w !== "")) {
    if (current !== "" && prefix.length + current.length + 1 + word.length > width) {
      lines.push(prefix + current)
      current = word
    } else {
      current = current === "" ? word : `${current} ${word}`
    }
  }
  if (current !== "") lines.push(prefix + current)
  return lines
}

const header = `# nsh.conf: settings of nsh, the Nix Scheduler Hook.
#
# nsh reads these files in order, later ones overriding earlier ones:
#   $NIX_CONF_DIR/nsh.conf             (default /etc/nix/nsh.conf)
#   DIR/nix/nsh.conf for each DIR in $XDG_CONFIG_DIRS, last to first
#                                      (default /etc/xdg/nix/nsh.conf)
#   $XDG_CONFIG_HOME/nix/nsh.conf      (default ~/.config/nix/nsh.conf)
# or, when NSH_CONF is set, only the file it names. Under the Nix daemon the
# hook runs as root: use /etc/nix/nsh.conf or /root/.config/nix/nsh.conf.
#
# The syntax is nix.conf's: 'name = value' with spaces around '=', '#' starts
# a comment, 'include PATH' and '!include PATH' (may be absent) read another
# file, and 'extra-NAME = ...' appends to a list setting.
#
# Every setting is listed below, commented out, with its default value.`

const entry = (doc: SettingDoc): string =>
  [
    ...wrap(doc.description, "# "),
    ...wrap(`Value: ${describeKind(doc)}.`, "# "),
    doc.default === "" ? `#${doc.key} =` : `#${doc.key} = ${doc.default}`
  ].join("\n")

/** The text of `nsh.conf.example`: a valid nsh.conf that sets nothing and documents everything. */
export const renderNshConfExample = (): string => [header, ...SettingsTable.map(entry)].join("\n\n") + "\n"

const cell = (text: string) => text.replaceAll("|", "\\|")

/** A Markdown table of every setting (key, default, description), for the README. */
export const renderSettingsMarkdown = (): string =>
  [
    "| Setting | Default | Description |",
    "|---|---|---|",
    ...SettingsTable.map((doc) =>
      `| \`${doc.key}\` | ${doc.default === "" ? "(empty)" : `\`${cell(doc.default)}\``} | ${
        cell(`${doc.description} Value: ${describeKind(doc)}.`)
      } |`
    )
  ].join("\n") + "\n"
