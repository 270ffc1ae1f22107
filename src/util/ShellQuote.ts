/**
 * POSIX shell quoting for values interpolated into remote commands and job scripts.
 */

/** Quotes one word so that /bin/sh reads it back verbatim, whatever it contains. */
export const shellQuote = (word: string): string =>
  /^[A-Za-z0-9_./:=@%+,-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`

/** Quotes every word and joins them into one command line. */
export const shellCommand = (words: ReadonlyArray<string>): string => words.map(shellQuote).join(" ")

/**
 * Wraps a remote command so that whatever login shell sshd hands it to (sh, bash, tcsh, csh, fish,
 * zsh) runs it under /bin/sh. Quoting alone cannot do that: csh expands `!` even inside single
 * quotes and refuses newlines in them, so the command travels as base64, which every shell passes
 * through untouched.
 */
export const forAnyLoginShell = (command: string): string =>
  `exec /bin/sh -c 'eval "$(echo ${Buffer.from(command, "utf8").toString("base64")} | base64 -d)"'`
