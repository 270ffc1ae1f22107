/**
 * The job script, run for real by /bin/sh (dash here) and bash against a fake nix-store that
 * records its arguments: waiting for the drv, the lease, the end marker, and quoting.
 */
import { Command, FileSystem } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import type { CommandExecutor } from "@effect/platform/CommandExecutor"
import { describe, it } from "@effect/vitest"
import { Duration, Effect, Schedule, type Scope } from "effect"
import { assert } from "vitest"
import type { Settings } from "../../src/config/Settings.js"
import { type BuildOptions, defaultBuildOptions } from "../../src/dispatch/BuildOptions.js"
import { allJobFiles, jobFiles } from "../../src/job/JobFiles.js"
import { jobScript, LeaseLapsedExitCode } from "../../src/job/JobScript.js"
import { testSettings } from "../support/settings.js"

const ids = { tag: "nsh-0123456789abcdef", nonce: "fedcba9876543210fedcba9876543210" }

/** The job's files in `stateDir`, named by its tag (written out, not taken from src/job/JobFiles.ts). */
const filesOf = (stateDir: string) => ({
  log: `${stateDir}/nsh-0123456789abcdef.log`,
  lease: `${stateDir}/nsh-0123456789abcdef.lease`,
  root: `${stateDir}/nsh-0123456789abcdef.root`
})
const drvPath = "/nix/store/00000000000000000000000000000000-hello.drv"

// Each call goes to its own file, arguments NUL-terminated, so any byte survives. A realise adds
// the GC roots of the outputs named in $FAKE_DIR/outputs as Nix 2.8 does: R for out, R-<name> else.
const fakeNixStore = `#!/bin/sh
call=$(mktemp "$FAKE_DIR/calls/call.XXXXXX")
for a in "$@"; do printf '%s\\0' "$a"; done > "$call"
case " $* " in
  *" --check-validity "*) [ -e "$FAKE_DIR/arrived" ]; exit $? ;;
  *" --realise "*)
    prev=
    for a in "$@"; do [ "$prev" = --add-root ] && root=$a; prev=$a; done
    while read -r output; do
      if [ "$output" = out ]; then ln -s /nix/store/built "$root"; else ln -s /nix/store/built "$root-$output"; fi
    done < "$FAKE_DIR/outputs"
    echo "fake: building" >&2
    echo "/nix/store/this-goes-to-stdout-and-is-dropped"
    printf 'a last line without newline' >&2
    seconds=$(cat "$FAKE_DIR/realise-seconds" 2>/dev/null || echo 0)
    if [ "$seconds" != 0 ]; then
      trap 'echo "fake: stopped by SIGTERM" >&2; exit 143' TERM
      sleep "$seconds" & wait $!
    fi
    exit "$(cat "$FAKE_DIR/realise-rc" 2>/dev/null || echo 0)" ;;
esac
echo "fake nix-store: unexpected call: $*" >&2
exit 99
`

interface Lab {
  readonly dir: string
  readonly binDir: string
  readonly stateDir: string
}

/** A temp dir with the fake nix-store in `binDir` and an empty calls directory. */
const makeLab = (binName = "bin") =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const dir = yield* fs.makeTempDirectoryScoped({ prefix: "nsh-jobscript-" })
    const binDir = `${dir}/${binName}`
    yield* fs.makeDirectory(binDir, { recursive: true })
    yield* fs.makeDirectory(`${dir}/calls`)
    yield* fs.writeFileString(`${binDir}/nix-store`, fakeNixStore)
    yield* fs.writeFileString(`${dir}/outputs`, "out\n")
    yield* fs.chmod(`${binDir}/nix-store`, 0o755)
    return { dir, binDir, stateDir: `${dir}/state` } satisfies Lab
  })

/** The recorded nix-store calls, each as its argv (without argv[0]). */
const calls = (lab: Lab) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const names = yield* fs.readDirectory(`${lab.dir}/calls`)
    return yield* Effect.forEach(names, (name) =>
      fs.readFileString(`${lab.dir}/calls/${name}`).pipe(Effect.map((text) => text.split("\0").slice(0, -1))))
  })

const realiseCalls = (lab: Lab) =>
  calls(lab).pipe(Effect.map((all) => all.filter((argv) => argv.includes("--realise"))))

/** Runs the script like Slurm would (stdout and stderr into the log file); bounded. */
const runScript = (shell: string, lab: Lab, script: string, extraEnv: Record<string, string> = {}) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const scriptFile = `${lab.dir}/job.sh`
    const log = `${lab.dir}/job.log`
    yield* fs.writeFileString(scriptFile, script)
    const exitCode = yield* Command.make(shell, "-c", "exec \"$0\" \"$1\" >>\"$2\" 2>&1", shell, scriptFile, log).pipe(
      // In the lab dir, so a command injected by bad quoting would leave its file there.
      Command.workingDirectory(lab.dir),
      Command.env({ FAKE_DIR: lab.dir, PATH: `${lab.binDir}:${process.env["PATH"] ?? "/usr/bin:/bin"}`, ...extraEnv }),
      Command.exitCode,
      Effect.timeoutFail({
        duration: Duration.seconds(30),
        onTimeout: () => new Error("the job script did not finish")
      })
    )
    return { exitCode, log: yield* fs.readFileString(log) }
  })

const writeFile = (path: string, text: string) =>
  FileSystem.FileSystem.pipe(Effect.flatMap((fs) => fs.writeFileString(path, text)))

const settingsFor = (lab: Lab, overrides: Partial<Settings> = {}) =>
  testSettings({ slurmStateDir: lab.stateDir, jobLeaseTimeout: 60, ...overrides })

const script = (lab: Lab, overrides: Partial<Settings> = {}, options: BuildOptions = defaultBuildOptions) =>
  jobScript(drvPath, settingsFor(lab, overrides), options, ids)

const marker = (rc: number) => `@nsh-end ${ids.nonce} ${rc}\n`

/** One live test per shell: dash is Debian's /bin/sh, bash is NixOS's. */
const live = <A, E>(
  name: string,
  body: (shell: string) => Effect.Effect<A, E, FileSystem.FileSystem | CommandExecutor | Scope.Scope>
) =>
  describe.each(["/bin/sh", "bash"])("%s", (shell) => {
    it.live(name, () => body(shell).pipe(Effect.scoped, Effect.provide(NodeContext.layer)), 60_000)
  })

describe("jobScript", () => {
  live("builds a drv that is already there and ends with the realise exit code", (shell) =>
    Effect.gen(function*() {
      const lab = yield* makeLab()
      yield* writeFile(`${lab.dir}/arrived`, "")
      yield* writeFile(`${lab.dir}/realise-rc`, "100")
      const run = yield* runScript(
        shell,
        lab,
        script(lab, {}, { ...defaultBuildOptions, timeout: 3600, maxSilentTime: 600 }),
        {
          SLURM_CPUS_ON_NODE: "4"
        }
      )
      assert.strictEqual(run.exitCode, 100)
      assert.isTrue(run.log.endsWith(marker(100)), run.log)
      assert.include(run.log, "fake: building\n")
      assert.notInclude(run.log, "this-goes-to-stdout")
      const [realise] = yield* realiseCalls(lab)
      const files = filesOf(lab.stateDir)
      assert.deepStrictEqual(realise, [
        "--realise",
        drvPath,
        "--quiet",
        "--add-root",
        files.root,
        "--indirect",
        "--cores",
        "4",
        "--timeout",
        "3600",
        "--max-silent-time",
        "600",
        "--option",
        "system-features",
        "nsh"
      ])
    }))

  live(
    "waits until the drv is valid, then builds (rc 0, no --timeout when Nix has none)",
    (shell) =>
      Effect.gen(function*() {
        const lab = yield* makeLab()
        const fiber = yield* Effect.fork(runScript(shell, lab, script(lab)))
        // Let it poll a few times, then "copy" the drv in.
        yield* calls(lab).pipe(
          Effect.repeat({ schedule: Schedule.spaced("50 millis"), until: (all) => all.length >= 3 }),
          Effect.timeout("20 seconds")
        )
        assert.lengthOf(yield* realiseCalls(lab), 0)
        yield* writeFile(`${lab.dir}/arrived`, "")
        const run = yield* fiber.await.pipe(Effect.flatten)
        assert.strictEqual(run.exitCode, 0)
        assert.isTrue(run.log.endsWith(marker(0)), run.log)
        const [realise] = yield* realiseCalls(lab)
        assert.notInclude(realise, "--timeout")
        assert.notInclude(realise, "--max-silent-time")
        assert.deepStrictEqual(realise?.slice(6, 8), ["--cores", "0"])
      })
  )

  live("every GC root the realise adds, one per output, is among the job's files", (shell) =>
    Effect.gen(function*() {
      const lab = yield* makeLab()
      const fs = yield* FileSystem.FileSystem
      const outputs = ["bin", "out", "dev", "lib"]
      yield* writeFile(`${lab.dir}/arrived`, "")
      yield* writeFile(`${lab.dir}/outputs`, outputs.join("\n") + "\n")
      const run = yield* runScript(shell, lab, script(lab))
      assert.strictEqual(run.exitCode, 0, run.log)
      const left = (yield* fs.readDirectory(lab.stateDir)).map((name) => `${lab.stateDir}/${name}`)
      const known = allJobFiles(jobFiles(lab.stateDir, ids.tag), outputs)
      assert.lengthOf(left, 4)
      assert.deepStrictEqual(left.filter((file) => !known.includes(file)), [])
    }))

  live("gives up with exit 3 when the drv never arrives and no lease is renewed", (shell) =>
    Effect.gen(function*() {
      const lab = yield* makeLab()
      const run = yield* runScript(shell, lab, script(lab, { jobLeaseTimeout: 1 }))
      assert.strictEqual(run.exitCode, LeaseLapsedExitCode)
      assert.match(run.log, /nsh: giving up: .*hello\.drv did not arrive .* lease was not renewed for 1 s/)
      assert.isTrue(run.log.endsWith(marker(LeaseLapsedExitCode)), run.log)
      assert.lengthOf(yield* realiseCalls(lab), 0)
    }))

  live("keeps waiting while the lease is renewed", (shell) =>
    Effect.gen(function*() {
      const lab = yield* makeLab()
      const fs = yield* FileSystem.FileSystem
      const lease = filesOf(lab.stateDir).lease
      yield* fs.makeDirectory(lab.stateDir, { recursive: true })
      const fiber = yield* Effect.fork(runScript(shell, lab, script(lab, { jobLeaseTimeout: 2 })))
      // Renew with a new mtime each time (the script looks for a change, not for recency),
      // for longer than the lease timeout, then let the drv arrive.
      yield* Effect.forEach(
        Array.from({ length: 12 }, (_, i) => i),
        (i) =>
          fs.writeFileString(lease, "").pipe(
            Effect.zipRight(fs.utimes(lease, 1_000_000 + i, 1_000_000 + i)),
            Effect.zipRight(Effect.sleep("400 millis"))
          ),
        { discard: true }
      )
      yield* writeFile(`${lab.dir}/arrived`, "")
      const run = yield* fiber.await.pipe(Effect.flatten)
      assert.strictEqual(run.exitCode, 0, run.log)
      assert.isTrue(run.log.endsWith(marker(0)), run.log)
    }))

  live("after the end marker, keeps the job until the hook removed the lease", (shell) =>
    Effect.gen(function*() {
      const lab = yield* makeLab()
      const fs = yield* FileSystem.FileSystem
      const lease = filesOf(lab.stateDir).lease
      yield* fs.makeDirectory(lab.stateDir, { recursive: true })
      yield* writeFile(lease, "")
      yield* writeFile(`${lab.dir}/arrived`, "")
      const fiber = yield* Effect.fork(runScript(shell, lab, script(lab)))
      const log = `${lab.dir}/job.log`
      yield* fs.readFileString(log).pipe(
        Effect.orElseSucceed(() => ""),
        Effect.repeat({ schedule: Schedule.spaced("50 millis"), until: (text) => text.includes(marker(0)) }),
        Effect.timeout("20 seconds")
      )
      // The hook is copying the outputs back over SSH: the job (and with it the user's access to
      // the node) must still be there. Without the wait it exits right after the marker.
      yield* Effect.sleep("1 second")
      assert.isTrue((yield* fiber.poll)._tag === "None", "the job ended while the hook still held its lease")
      yield* fs.remove(lease)
      const run = yield* fiber.await.pipe(Effect.flatten)
      assert.strictEqual(run.exitCode, 0, run.log)
      assert.isTrue(run.log.endsWith(marker(0)), run.log)
    }))

  live("after the end marker, ends when the lease lapses (the hook is gone)", (shell) =>
    Effect.gen(function*() {
      const lab = yield* makeLab()
      yield* FileSystem.FileSystem.pipe(Effect.flatMap((fs) => fs.makeDirectory(lab.stateDir, { recursive: true })))
      yield* writeFile(filesOf(lab.stateDir).lease, "")
      yield* writeFile(`${lab.dir}/arrived`, "")
      yield* writeFile(`${lab.dir}/realise-rc`, "100")
      const run = yield* runScript(shell, lab, script(lab, { jobLeaseTimeout: 1 }))
      assert.strictEqual(run.exitCode, 100, run.log)
      assert.isTrue(run.log.endsWith(marker(100)), run.log)
    }))

  live("stops the build with exit 3 when the lease lapses while it runs", (shell) =>
    Effect.gen(function*() {
      const lab = yield* makeLab()
      yield* writeFile(`${lab.dir}/arrived`, "")
      yield* writeFile(`${lab.dir}/realise-seconds`, "300")
      const run = yield* runScript(shell, lab, script(lab, { jobLeaseTimeout: 1 }))
      assert.strictEqual(run.exitCode, LeaseLapsedExitCode)
      assert.match(run.log, /nsh: stopping the build: the hook's lease was not renewed for 1 s/)
      assert.isTrue(run.log.endsWith(marker(LeaseLapsedExitCode)), run.log)
      // nix-store itself got the signal and ended before the marker, not only a shell around it:
      // nothing builds on unwatched after the job.
      assert.match(run.log, new RegExp(`\nfake: stopped by SIGTERM\n${marker(LeaseLapsedExitCode)}$`), run.log)
    }))

  live(
    "passes odd characters in paths and settings through verbatim, running nothing",
    (shell) =>
      Effect.gen(function*() {
        const odd = `it's $(touch PWNED) \`touch PWNED\` $HOME "q" \\ ; & |\nnext line`
        const lab = yield* makeLab(`bin ${odd}`)
        yield* writeFile(`${lab.dir}/arrived`, "")
        yield* writeFile(`${lab.dir}/realise-rc`, "7")
        const stateDir = `${lab.dir}/state ${odd}`
        const storeDir = `${lab.dir}/store ${odd}`
        const oddDrv = `/nix/store/00000000000000000000000000000000-${odd}.drv`
        const settings = settingsFor(lab, {
          slurmStateDir: stateDir,
          storeDir,
          remoteNixBinDir: lab.binDir,
          remoteStore: `local?root=/tmp/${odd}`,
          systemFeatures: ["a'b", "$(touch PWNED)", "big-parallel"]
        })
        // PATH without the fake: it must be found through remote-nix-bin-dir.
        const run = yield* runScript(shell, lab, jobScript(oddDrv, settings, defaultBuildOptions, ids), {
          PATH: process.env["PATH"] ?? "/usr/bin:/bin"
        })
        assert.strictEqual(run.exitCode, 7, run.log)
        assert.isTrue(run.log.endsWith(marker(7)), run.log)
        const fs = yield* FileSystem.FileSystem
        assert.isFalse(yield* fs.exists(`${lab.dir}/PWNED`))
        assert.isTrue(yield* fs.exists(stateDir))
        const [realise] = yield* realiseCalls(lab)
        assert.deepStrictEqual(realise, [
          "--store",
          `local?root=/tmp/${odd}`,
          "--realise",
          `${storeDir}/00000000000000000000000000000000-${odd}.drv`,
          "--quiet",
          "--add-root",
          filesOf(stateDir).root,
          "--indirect",
          "--cores",
          "0",
          "--option",
          "system-features",
          "a'b $(touch PWNED) big-parallel"
        ])
      })
  )
})
