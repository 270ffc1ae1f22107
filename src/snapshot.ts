/**
 * Entry of the V8 start-up snapshot (dist/nsh.blob, made by scripts/build.mjs): the hook's
 * modules are loaded and initialised at build time, so bin/nsh answers Nix's first `try` without
 * parsing and evaluating them again. Only hook mode runs from here; bin/nsh picks it.
 */
import { resolve } from "node:path"
import { startupSnapshot } from "node:v8"
import { runHook } from "./HookMain.js"

startupSnapshot.setDeserializeMainFunction(() => {
  // Started as `node --snapshot-blob <dist>/nsh.blob <verbosity>`: argv has no script. Put the
  // bundle there, as if started as `node <dist>/nsh.mjs`, since the watchdog re-runs argv[1].
  const i = process.execArgv.findIndex((a) => a === "--snapshot-blob" || a.startsWith("--snapshot-blob="))
  const blob = process.execArgv[i]!.includes("=") ? process.execArgv[i]!.split("=")[1]! : process.execArgv[i + 1]!
  process.argv.splice(1, 0, resolve(blob, "../nsh.mjs"))
  runHook(Number(process.argv[2]))
})
