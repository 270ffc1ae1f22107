/**
 * The command line as a user types it: the real @effect/cli command (src/Cli.ts) with doubles for
 * the store, the settings, slurmrestd and the journal, and a console that records what is printed.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import { describe, it } from "@effect/vitest"
import { Effect, Layer, Ref, SubscriptionRef } from "effect"
import { assert } from "vitest"
import packageJson from "../../package.json" with { type: "json" }
import { runCli, wantsColour } from "../../src/Cli.js"
import { jobsTable } from "../../src/cli/Jobs.js"
import { Config } from "../../src/config/Config.js"
import { NshConfError } from "../../src/config/ConfigErrors.js"
import type { CliLayers } from "../../src/layers/Cli.js"
import { Journal, makeJournal } from "../../src/safety/Journal.js"
import type { Derivation } from "../../src/store/Derivation.js"
import { LogEvents, NixLogRecording } from "../support/NixLogRecording.js"
import { NixStoreKnowing } from "../support/NixStoreRecording.js"
import { testLoaded } from "../support/settings.js"
import { jobInfo, SlurmApiScripted } from "../support/SlurmApiScripted.js"

const hash = (c: string) => c.repeat(32)
const drvOf = (name: string, c: string): Derivation => ({
  drvPath: `/nix/store/${hash(c)}-${name}.drv`,
  outputs: [{ name: "out", path: `/nix/store/${hash(c)}-${name}`, hashAlgo: "", hash: "" }],
  inputDrvs: [],
  inputSrcs: [],
  system: "x86_64-linux",
  builder: "/bin/sh",
  args: [],
  env: { name, requiredSystemFeatures: "nsh" },
  structuredAttrs: undefined
})
const hello = drvOf("hello-2.12", "a")
const world = drvOf("world-1.0", "b")
const helloOut = `/nix/store/${hash("c")}-hello-2.12`

const store = NixStoreKnowing({ derivations: [hello, world], derivers: { [helloOut]: hello.drvPath } })
const config = Config.fromLoaded(testLoaded())

const layers = (over: Partial<CliLayers> = {}): CliLayers => ({
  dryRun: Layer.merge(store, config),
  slurm: Layer.die("slurmrestd is not part of this test"),
  doctor: Layer.die("the doctor is tested against the harness (test/e2e/doctor.test.ts)"),
  ...over
})

/** Runs `nsh ARGS…` through the real command; returns the exit code and what went to stdout and stderr. */
const nsh = (args: ReadonlyArray<string>, options: { layers?: CliLayers; colour?: boolean } = {}) =>
  Effect.gen(function*() {
    const out = yield* Ref.make<ReadonlyArray<string>>([])
    const err = yield* Ref.make<ReadonlyArray<string>>([])
    const real = yield* Effect.console
    const code = yield* runCli(options.layers ?? layers(), ["node", "nsh", ...args], {
      colour: options.colour ?? false
    }).pipe(
      Effect.withConsole({
        ...real,
        log: (...a) => Ref.update(out, (all) => [...all, a.join(" ")]),
        error: (...a) => Ref.update(err, (all) => [...all, a.join(" ")])
      })
    )
    const messages = (yield* SubscriptionRef.get(yield* LogEvents)).flatMap((e) => e._tag === "Message" ? [e.text] : [])
    return {
      code,
      stdout: (yield* Ref.get(out)).join("\n"),
      stderr: [...(yield* Ref.get(err)), ...messages].join("\n")
    }
  }).pipe(Effect.provide(Layer.merge(NixLogRecording, NodeContext.layer)))

const esc = "\x1b["

describe("nsh --dry-run", () => {
  it.effect("takes its flags anywhere, before or after the derivations", () =>
    Effect.gen(function*() {
      for (
        const args of [
          ["--dry-run", "--json", hello.drvPath],
          ["--json", "--dry-run", hello.drvPath],
          ["--dry-run", hello.drvPath, "--json"],
          [hello.drvPath, "--dry-run", "--json"]
        ]
      ) {
        const run = yield* nsh(args)
        assert.strictEqual(run.code, 0, `${args.join(" ")}: ${run.stderr}`)
        assert.strictEqual((JSON.parse(run.stdout) as { drvPath: string }).drvPath, hello.drvPath, args.join(" "))
      }
    }))

  it.effect("shows several derivations at once: an array in JSON, one report after another in text", () =>
    Effect.gen(function*() {
      const json = yield* nsh(["--dry-run", "--json", hello.drvPath, world.drvPath])
      assert.strictEqual(json.code, 0, json.stderr)
      const reports = JSON.parse(json.stdout) as ReadonlyArray<{ drvPath: string }>
      assert.deepStrictEqual(reports.map((r) => r.drvPath), [hello.drvPath, world.drvPath])
      const text = yield* nsh(["--dry-run", hello.drvPath, world.drvPath])
      assert.strictEqual(text.code, 0, text.stderr)
      assert.include(text.stdout, `nsh dry run for ${hello.drvPath}`)
      assert.include(text.stdout, `nsh dry run for ${world.drvPath}`)
    }))

  it.effect("shows an output path as the derivation Nix records as its deriver", () =>
    Effect.gen(function*() {
      const run = yield* nsh(["--dry-run", "--json", helloOut])
      assert.strictEqual(run.code, 0, run.stderr)
      const report = JSON.parse(run.stdout) as { drvPath: string; givenPath: string }
      assert.strictEqual(report.drvPath, hello.drvPath)
      assert.strictEqual(report.givenPath, helloOut)
    }))

  it.effect("exits 2 for a path without a known deriver, after showing the others", () =>
    Effect.gen(function*() {
      const stray = `/nix/store/${hash("d")}-source`
      const run = yield* nsh(["--dry-run", "--json", hello.drvPath, stray])
      assert.strictEqual(run.code, 2)
      assert.include(run.stderr, `${stray}: it is not a derivation (a .drv), and the store records no deriver for it`)
      assert.deepStrictEqual((JSON.parse(run.stdout) as ReadonlyArray<{ drvPath: string }>).map((r) => r.drvPath), [
        hello.drvPath
      ])
    }))

  it.effect("exits 2 without a derivation, or for a bare word that is not a command", () =>
    Effect.gen(function*() {
      const none = yield* nsh(["--dry-run", "--json"])
      assert.strictEqual(none.code, 2)
      assert.include(none.stderr, "name at least one derivation")
      const word = yield* nsh(["hello.drv"])
      assert.strictEqual(word.code, 2)
      assert.include(word.stderr, "did you mean `nsh --dry-run hello.drv`")
      const unknown = yield* nsh(["--dry-run", "--frobnicate", hello.drvPath])
      assert.strictEqual(unknown.code, 2)
      assert.include(unknown.stderr, "unknown option '--frobnicate'")
    }))

  it.effect("reports a broken nsh.conf with exit 1, while --help still works", () =>
    Effect.gen(function*() {
      const broken = layers({
        dryRun: Layer.fail(new NshConfError({ file: "/etc/nix/nsh.conf", line: 3, reason: "expected an integer" }))
      })
      const run = yield* nsh(["--dry-run", hello.drvPath], { layers: broken })
      assert.strictEqual(run.code, 1)
      assert.include(run.stderr, "/etc/nix/nsh.conf:3: expected an integer")
      const help = yield* nsh(["--help"], { layers: broken })
      assert.strictEqual(help.code, 0)
    }))
})

describe("nsh --help and --version", () => {
  it.effect("lists every mode with an example, Nix's own `nsh <verbosity>` included, and the exit codes", () =>
    Effect.gen(function*() {
      const { code, stdout } = yield* nsh(["--help"])
      assert.strictEqual(code, 0)
      for (
        const expected of [
          "nsh <verbosity>",
          "build-hook = /path/to/nsh",
          "nsh --dry-run [--json] DRV…",
          "Example: nsh --dry-run --json",
          "nsh jobs [--all] [--json]",
          "nsh cancel --orphans",
          "nsh doctor [--job] [--json]",
          "EXIT CODES",
          "2  a usage error",
          "100  hook mode"
        ]
      ) assert.include(stdout, expected)
      assert.notInclude(stdout, "A user-defined piece of text")
    }))

  it.effect("has --help for every command", () =>
    Effect.gen(function*() {
      for (
        const [command, usage] of [
          ["jobs", "$ jobs [--all] [--json]"],
          ["cancel", "$ cancel [--orphans]"],
          ["doctor", "$ doctor [--job] [--json]"]
        ] as const
      ) {
        const { code, stdout } = yield* nsh([command, "--help"])
        assert.strictEqual(code, 0, command)
        assert.include(stdout, usage, command)
        assert.include(stdout, `Example: nsh ${command}`, command)
        assert.notInclude(stdout, "MODES", command)
      }
    }))

  it.effect("prints no colour unless asked to, and colour when asked", () =>
    Effect.gen(function*() {
      const plain = yield* nsh(["--help"], { colour: false })
      assert.notInclude(plain.stdout, esc)
      const coloured = yield* nsh(["--help"], { colour: true })
      assert.include(coloured.stdout, esc)
      const usageError = yield* nsh(["--frobnicate"], { colour: false })
      assert.strictEqual(usageError.code, 2)
      assert.include(usageError.stderr, "frobnicate")
      assert.notInclude(usageError.stderr, esc)
    }))

  it("colours only a terminal, and never with NO_COLOR set", () => {
    assert.isTrue(wantsColour(true, {}))
    assert.isTrue(wantsColour(true, { NO_COLOR: "" }))
    assert.isFalse(wantsColour(true, { NO_COLOR: "1" }))
    assert.isFalse(wantsColour(false, {}))
  })

  it.effect("prints the package's version", () =>
    Effect.gen(function*() {
      const { code, stdout } = yield* nsh(["--version"])
      assert.strictEqual(code, 0)
      assert.include(stdout, packageJson.version)
    }))
})

describe("nsh jobs", () => {
  const job = (jobId: number, over: Parameters<typeof jobInfo>[0]) =>
    jobInfo({ jobId, comment: `nsh:nsh-${String(jobId).padStart(16, "0")} ${hello.drvPath}`, ...over })
  const listed = [
    job(7, { state: "RUNNING", rawState: "RUNNING", batchHost: "node1", submitTime: 1000, startTime: 1010 }),
    job(12345, { state: "PENDING", rawState: "PENDING", reason: "Resources", submitTime: 1_000_000 - 3725 })
  ]
  const slurm = Effect.gen(function*() {
    const dir = yield* Effect.sync(() => `/tmp/nsh-cli-test-${process.pid}-${Math.random().toString(16).slice(2)}`)
    return Layer.mergeAll(
      SlurmApiScripted({ states: [], listed }),
      Layer.effect(Journal, makeJournal(dir)),
      config,
      NodeContext.layer
    ).pipe(Layer.provide(NodeContext.layer))
  })

  it.effect("prints a JSON array with --json", () =>
    Effect.gen(function*() {
      const run = yield* nsh(["jobs", "--json"], { layers: layers({ slurm: Layer.unwrapEffect(slurm) }) })
      assert.strictEqual(run.code, 0, run.stderr)
      const rows = JSON.parse(run.stdout) as ReadonlyArray<Record<string, unknown>>
      assert.deepStrictEqual(rows.map((r) => [r["jobId"], r["state"], r["reason"], r["node"], r["hook"]]), [
        [7, "RUNNING", "None", "node1", "unknown"],
        [12345, "PENDING", "Resources", "", "unknown"]
      ])
      assert.strictEqual(rows[0]!["drvPath"], hello.drvPath)
    }))

  it.effect("prints the table through the real command", () =>
    Effect.gen(function*() {
      const run = yield* nsh(["jobs"], { layers: layers({ slurm: Layer.unwrapEffect(slurm) }) })
      assert.strictEqual(run.code, 0, run.stderr)
      const [header, ...rows] = run.stdout.split("\n")
      assert.match(header!, /^JOBID +STATE +REASON +NODE +AGE +HOOK +DERIVATION$/)
      assert.match(rows[0]!, /^7 +RUNNING +None +node1 +\S+ +unknown +hello-2\.12$/)
      assert.match(rows[1]!, /^12345 +PENDING +Resources +- +\S+ +unknown +hello-2\.12$/)
    }))

  it("shows ages people read and the derivation's name", () => {
    const rows = [
      { jobId: 7, state: "RUNNING", reason: "None", node: "node1", submitTime: 1_000_000 - 42, startTime: 0 },
      { jobId: 12345, state: "PENDING", reason: "Resources", node: "", submitTime: 1_000_000 - 3725, startTime: 0 },
      { jobId: 9, state: "PENDING", reason: "Priority", node: "", submitTime: 0, startTime: 0 }
    ].map((r) => ({ ...r, drvPath: hello.drvPath, hook: "alive (pid 4)" }))
    assert.strictEqual(
      jobsTable(rows, 1_000_000),
      [
        "JOBID  STATE    REASON     NODE   AGE    HOOK           DERIVATION",
        "7      RUNNING  None       node1  42s    alive (pid 4)  hello-2.12",
        "12345  PENDING  Resources  -      1h02m  alive (pid 4)  hello-2.12",
        "9      PENDING  Priority   -      -      alive (pid 4)  hello-2.12"
      ].join("\n")
    )
  })
})
