/**
 * POSIX shell quoting for values interpolated into remote commands and job scripts.
 */

/** Quotes one word so that /bin/sh reads it back verbatim, whatever it contains. */
export const shellQuote = (word: string): string =>
  /^[A-Za-z0-9_./:=@%+,-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`

/** Quotes every word and joins them into one command line. */
export const shellCommand = (words: ReadonlyArray<string>): string => words.map(shellQuote).join(" ")
