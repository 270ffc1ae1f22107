/**
 * Entry of the V8 start-up snapshot (dist/nsh.blob, made by scripts/build.mjs): hook mode starts
 * here. The snapshot holds only the hook's front (src/hook/Front.ts), so it deserializes in a few
 * milliseconds and declines from memory; the full session (src/HookMain.ts, bundled as
 * dist/hook-<hash>.cjs) is loaded on hand-over, compiled from V8's code cache when there is one.
 * Only hook mode runs from here; bin/nsh picks it.
 */
import { appendFileSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs"
import Module, { createRequire } from "node:module"
import { dirname, join, resolve } from "node:path"
import { startupSnapshot } from "node:v8"
import { Script } from "node:vm"
import { runFront } from "./hook/Front.js"
import type * as HookMain from "./HookMain.js"

/** The full session's bundle, named after its content by scripts/build.mjs. */
declare const NSH_FULL_HOOK: string

/**
 * Loads the full session. Its code cache is written at exit when this run compiled more of it than
 * the cached one holds (level 1: a run that routed a derivation to the cluster, so the cluster
 * stack is compiled too). The file name carries the bundle's hash: V8 checks only a source's length.
 */
const loadFullHook = (dist: string, cacheDir: string | undefined, routedToCluster: boolean): typeof HookMain => {
  const file = join(dist, NSH_FULL_HOOK)
  const cachePath = (level: number) => join(cacheDir ?? "", "v8", `${NSH_FULL_HOOK}.${level}.cache`)
  let cached: Buffer | undefined
  let cachedLevel = -1
  for (const level of cacheDir === undefined ? [] : [1, 0]) {
    try {
      cached = readFileSync(cachePath(level))
      cachedLevel = level
      break
    } catch {
      // Not cached at this level.
    }
  }
  const script = new Script(Module.wrap(readFileSync(file, "utf8")), { filename: file, cachedData: cached })
  if (script.cachedDataRejected === true) cachedLevel = -1
  const level = routedToCluster ? 1 : 0
  if (cacheDir !== undefined && cachedLevel < level) {
    let saved = false
    const save = () => {
      if (saved) return
      saved = true
      try {
        mkdirSync(dirname(cachePath(level)), { recursive: true, mode: 0o700 })
        writeFileSync(`${cachePath(level)}.${process.pid}`, script.createCachedData(), { mode: 0o600 })
        renameSync(`${cachePath(level)}.${process.pid}`, cachePath(level))
      } catch {
        // No cache: the next hook compiles again.
      }
    }
    // Saved once the first answer is out (the cluster stack compiled by then, on the accept path):
    // a hook may be killed rather than exit; else at exit.
    process.once("exit", save)
    setTimeout(save, routedToCluster ? 3000 : 500).unref()
  }
  const module = { exports: {} }
  script.runInThisContext()(module.exports, createRequire(file), module, file, dirname(file))
  return module.exports as typeof HookMain
}

startupSnapshot.setDeserializeMainFunction(() => {
  // Started as `node --snapshot-blob <dist>/nsh.blob <verbosity>`: argv has no script. Put the
  // bundle there, as if started as `node <dist>/nsh.mjs`, since the watchdog re-runs argv[1].
  const i = process.execArgv.findIndex((a) => a === "--snapshot-blob" || a.startsWith("--snapshot-blob="))
  const blob = process.execArgv[i]!.includes("=") ? process.execArgv[i]!.split("=")[1]! : process.execArgv[i + 1]!
  const dist = resolve(blob, "..")
  process.argv.splice(1, 0, join(dist, "nsh.mjs"))
  const verbosity = Number(process.argv[2])
  const cacheDir = process.env["NSH_CACHE_DIR"] || undefined
  const debugLog = process.env["NSH_DEBUG_LOG"] || undefined
  runFront({
    verbosity,
    env: process.env,
    cacheDir,
    debugLog: (line) => debugLog !== undefined && appendFileSync(debugLog, line)
  }, {
    listen: (onChunk, onEnd) => {
      process.stdin.on("data", onChunk).on("end", onEnd).on("error", onEnd)
      return () => {
        process.stdin.off("data", onChunk).off("end", onEnd).off("error", onEnd)
        process.stdin.pause()
      }
    },
    write: (text) => writeFileSync(2, text),
    exit: (code) => process.exit(code)
  }, (replay, routedToCluster) => loadFullHook(dist, cacheDir, routedToCluster).runHook(verbosity, replay))
})
