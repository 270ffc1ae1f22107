/**
 * The Slurm TryHandler and its build program with every service doubled: SlurmApi plays the job's
 * states and records cancels, SshSession runs the "node's" commands locally, NixStore records the
 * copies it is asked for (test/store/copy.test.ts tests the real ones), and NixLog records what
 * the user sees. The test plays the job on the
 * node: it writes the job's log (with the end marker) and the built outputs.
 */
import { FileSystem } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import {
  Context,
  Duration,
  Effect,
  Fiber,
  identity,
  Layer,
  Option,
  Redacted,
  Ref,
  Scope,
  Stream,
  SubscriptionRef,
  TestClock
} from "effect"
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import type { Settings } from "../../src/config/Settings.js"
import { type BuildOptions, defaultBuildOptions } from "../../src/dispatch/BuildOptions.js"
import { ActivityType, NixLog, ResultType, Verbosity } from "../../src/dispatch/NixLog.js"
import { type AcceptedBuild, type BuildRequest, TryHandler } from "../../src/dispatch/TryHandler.js"
import { SlurmTryHandlerLive } from "../../src/runner/SlurmTryHandler.js"
import { Journal, makeJournal } from "../../src/safety/Journal.js"
import { WatchdogError } from "../../src/safety/Watchdog.js"
import type { JobInfo, JobSpec } from "../../src/slurm/JobSpec.js"
import {
  SlurmAuthError,
  type SlurmError,
  SlurmRequestError,
  SlurmSubmitUnanswered,
  SlurmUnreachable
} from "../../src/slurm/SlurmErrors.js"
import { SshChannelError, SshConnectError, type SshError } from "../../src/ssh/SshErrors.js"
import { type SshConnection, SshSession } from "../../src/ssh/SshSession.js"
import type { Derivation } from "../../src/store/Derivation.js"
import { StoreCommandError } from "../../src/store/StoreErrors.js"
import { type SshCall, SshCalls, SshSessionTest } from "../ssh/SshSessionTest.js"
import { fastClock } from "../support/FastClock.js"
import {
  awaitEvents,
  buildLogText,
  type LogEvent,
  LogEvents,
  messages,
  NixLogRecording
} from "../support/NixLogRecording.js"
import { NixStoreRecording, type NixStoreScript, type StoreCall, StoreCalls } from "../support/NixStoreRecording.js"
import { noProcessesLeft } from "../support/Processes.js"
import { TestConfig } from "../support/settings.js"
import {
  cancelled,
  endedAs,
  jobInfo,
  runningOn,
  SlurmApiScripted,
  type SlurmCall,
  SlurmCalls,
  submitted
} from "../support/SlurmApiScripted.js"
import { WatchdogCalls, WatchdogRecording } from "../support/WatchdogRecording.js"

const p = (hash: string, name: string) => `/nix/store/${hash.repeat(32)}-${name}`
const drvPath = p("0", "hello-2.12.drv")
const out = p("a", "hello-2.12")
const dev = p("b", "hello-2.12-dev")
const glibc = p("c", "glibc-2.37")
const src = p("d", "hello-2.12.tar.gz")
const jobId = 4242

const drv: Derivation = {
  drvPath,
  outputs: [
    { name: "out", path: out, hashAlgo: "", hash: "" },
    { name: "dev", path: dev, hashAlgo: "", hash: "" }
  ],
  inputDrvs: [],
  inputSrcs: [src],
  system: "x86_64-linux",
  builder: "/bin/sh",
  args: ["-c", "make install"],
  env: { name: "hello-2.12" },
  structuredAttrs: undefined
}

const request: BuildRequest = { amWilling: true, neededSystem: "x86_64-linux", drvPath, requiredFeatures: [] }

/** One test's state directory, in a temp dir, and the options Nix gave the build. */
interface World {
  readonly dir: string
  readonly stateDir: string
  readonly options: BuildOptions
}

const makeWorld = (options: Partial<BuildOptions> = {}) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const dir = yield* fs.makeTempDirectoryScoped({ prefix: "nsh-build-" })
    return {
      dir,
      stateDir: `${dir}/state`,
      options: { ...defaultBuildOptions, ...options, store: `${dir}/local` }
    } satisfies World
  }).pipe(Effect.provide(NodeContext.layer))

interface Scenario {
  /** The job's state at each poll; the last repeats. */
  readonly states: ReadonlyArray<JobInfo | SlurmError>
  /** The states of the jobs submitted again (after a node failure). */
  readonly resubmitted?: ReadonlyArray<JobInfo | SlurmError>
  readonly submitError?: SlurmError
  readonly cancel?: Effect.Effect<void, SlurmError>
  readonly failConnect?: (host: string) => SshError | undefined
  /** The node never answers the removal of the job files. */
  readonly hangRemoval?: boolean
  /** The node refuses every channel that would follow the log. */
  readonly refuseTail?: boolean
  readonly watchdogFails?: WatchdogError
  /** The watchdog process died during the build: `finished` fails. */
  readonly watchdogDied?: WatchdogError
  readonly settings?: Partial<Settings>
  /** The derivation the store holds at drvPath (default: `drv`). */
  readonly derivation?: Derivation
  /** How the store answers the copies (default: they succeed). */
  readonly store?: Omit<NixStoreScript, "derivations">
  /** Nix takes this long (on the build's clock) to read each chunk of the build log. */
  readonly nixReadsSlowly?: Duration.DurationInput
}

/** NixLogRecording whose build log takes `delay` to be taken, as when Nix does not read for a while. */
const withSlowBuildLog = (delay: Duration.DurationInput) =>
  Layer.effectContext(
    Effect.gen(function*() {
      const log = yield* NixLog
      const slow = NixLog.of({ ...log, buildLog: (chunk) => Effect.zipRight(Effect.sleep(delay), log.buildLog(chunk)) })
      return Context.make(NixLog, slow).pipe(Context.add(LogEvents, yield* LogEvents))
    })
  ).pipe(Layer.provide(NixLogRecording))

/** SshSessionTest whose connections are changed by `change`. */
const withConnections =
  (change: (conn: SshConnection) => SshConnection) => (inner: Layer.Layer<SshSession | SshCalls>) =>
    Layer.effectContext(
      Effect.gen(function*() {
        const ssh = yield* SshSession
        const changed = SshSession.of({ connect: (host) => Effect.map(ssh.connect(host), change) })
        return Context.make(SshSession, changed).pipe(Context.add(SshCalls, yield* SshCalls))
      })
    ).pipe(Layer.provide(inner))

/** SshSessionTest whose connections never answer `rm`. */
const withHangingRemoval = withConnections((conn) => ({
  ...conn,
  exec: (command, stdin) => (command.startsWith("rm ") ? Effect.never : conn.exec(command, stdin))
}))

/** SshSessionTest whose connections refuse to start `tail` (the log follower). */
const withRefusedTail = withConnections((conn) => ({
  ...conn,
  spawn: (command, stdin) =>
    command.startsWith("exec tail ")
      ? Effect.fail(new SshChannelError({ host: conn.host, command, reason: "channel open failure" }))
      : conn.spawn(command, stdin)
}))

type Doubles = TryHandler | SlurmCalls | LogEvents | SshCalls | WatchdogCalls | Journal | StoreCalls

/**
 * Runs `body` against the Slurm handler with every service doubled. The Slurm and SSH calls are
 * read after the handler's scope has closed, so a cancel at teardown is counted too.
 */
const inCluster = <A, E>(world: World, scenario: Scenario, body: Effect.Effect<A, E, Doubles>) =>
  Effect.gen(function*() {
    const doubles = Layer.mergeAll(
      TestConfig({
        slurmStateDir: world.stateDir,
        slurmJwtToken: Option.some(Redacted.make("header.payload.signature")),
        slurmUserName: "alice",
        ...scenario.settings
      }),
      WatchdogRecording({ failStart: scenario.watchdogFails, died: scenario.watchdogDied }),
      Layer.effect(Journal, makeJournal(`${world.dir}/journal`)).pipe(Layer.provide(NodeContext.layer)),
      scenario.nixReadsSlowly === undefined ? NixLogRecording : withSlowBuildLog(scenario.nixReadsSlowly),
      SlurmApiScripted({
        jobId,
        states: scenario.states,
        ...(scenario.resubmitted ? { resubmitted: scenario.resubmitted } : {}),
        ...(scenario.submitError ? { submitError: scenario.submitError } : {}),
        ...(scenario.cancel ? { cancel: scenario.cancel } : {})
      }),
      NixStoreRecording({ derivations: [scenario.derivation ?? drv], ...scenario.store }),
      (scenario.hangRemoval ? withHangingRemoval : identity)(
        (scenario.refuseTail ? withRefusedTail : identity)(
          SshSessionTest(scenario.failConnect ? { failConnect: scenario.failConnect } : {})
        )
      ),
      NodeContext.layer
    )
    const [result, slurmRef, sshRef, watchdogRef, journal, storeRef] = yield* Effect.all([
      body,
      SlurmCalls,
      SshCalls,
      WatchdogCalls,
      Journal,
      StoreCalls
    ]).pipe(
      Effect.provide(SlurmTryHandlerLive.pipe(Layer.provideMerge(doubles))),
      // SshSessionTest starts processes with the context it was built in: a Scope there (the
      // test's) would own every process and outlive the build's scopes, hiding a missing kill.
      Effect.mapInputContext((context: Context.Context<never>) => Context.omit(Scope.Scope)(context))
    )
    return {
      result,
      slurm: yield* SubscriptionRef.get(slurmRef),
      ssh: yield* Ref.get(sshRef),
      watchdog: (yield* Ref.get(watchdogRef)).map((c) => c._tag),
      /** What the watchdog was told to remove on the node if the hook dies. */
      watchdogNodeFiles: (yield* Ref.get(watchdogRef)).flatMap((c) => c._tag === "Start" ? c.nodeFiles : []),
      /** The token file each watchdog was told to read again. */
      watchdogTokenFiles: (yield* Ref.get(watchdogRef)).flatMap((c) => c._tag === "Start" ? [c.tokenFile] : []),
      journal: (yield* journal.list).map((e) => e.tag),
      store: yield* Ref.get(storeRef)
    }
  })

/** Asks the handler; expects an Accept. Returns the build and the submitted job's tag and nonce. */
const accept = (world: World) =>
  Effect.gen(function*() {
    const handler = yield* TryHandler
    const answer = yield* handler.answer(request, world.options)
    if (answer._tag !== "Accept") return assert.fail(`expected Accept, got ${JSON.stringify(answer)}`)
    return { build: answer.build, ...idsOf((yield* submitted)[0]!) }
  })

/** The tag (from the comment) and nonce (from the script) of a submission. */
const idsOf = (spec: JobSpec) => ({
  tag: /^nsh:(nsh-[0-9a-f]{16}) /.exec(spec.comment)![1]!,
  nonce: /^nonce=([0-9a-f]{32})$/m.exec(spec.script)![1]!
})

/** Runs the accepted build with Nix's inputs, on a clock 10× faster than real time (grace periods, silence). */
const run = (build: AcceptedBuild, wanted: ReadonlyArray<string> = ["out"]) =>
  build.run([glibc, src], wanted).pipe(Effect.withClock(fastClock(10)))

/**
 * A daemon and a bounded join, for builds that never ended before their fix: a regression then
 * fails the test with that message instead of hanging it.
 */
const bounded = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.forkDaemon(effect).pipe(
    Effect.flatMap((fiber) =>
      Fiber.join(fiber).pipe(
        Effect.timeoutFail({ duration: "15 seconds", onTimeout: () => new Error("the build never ended") })
      )
    )
  )

/** Changes fields of a journal entry in its file, as another process (or host) would have written them. */
const rewriteEntry = (journal: Journal["Type"], tag: string, change: Record<string, unknown>) => {
  const entry = JSON.parse(readFileSync(journal.fileOf(tag), "utf8")) as Record<string, unknown>
  writeFileSync(journal.fileOf(tag), JSON.stringify({ ...entry, ...change }))
}

const marker = (nonce: string, rc: number) => `@nsh-end ${nonce} ${rc}\n`

/** The test as the job on the node: its log file, and the files the job script leaves. */
const nodeFiles = (world: World, tag: string) => {
  const files = {
    log: `${world.stateDir}/${tag}.log`,
    lease: `${world.stateDir}/${tag}.lease`,
    root: `${world.stateDir}/${tag}.root`,
    // nix-store --add-root names the root of every output but `out` after it.
    rootDev: `${world.stateDir}/${tag}.root-dev`
  }
  return {
    writeLog: (text: string) => Effect.sync(() => writeFileSync(files.log, text, { flag: "a" })),
    /** What the job's build left in the state dir: the outputs' GC roots. */
    built: Effect.sync(() => {
      writeFileSync(files.root, "")
      writeFileSync(files.rootDev, "")
    }),
    left: Effect.sync(() => Object.values(files).filter((f) => existsSync(f)))
  }
}

/** Accepts, plays a job that builds and prints its end marker, and runs the build: its exit code. */
const buildsOk = (world: World, wanted: ReadonlyArray<string> = ["out"]) =>
  Effect.gen(function*() {
    const { build, tag, nonce } = yield* accept(world)
    const node = nodeFiles(world, tag)
    yield* node.built
    yield* node.writeLog(`ok\n${marker(nonce, 0)}`)
    return yield* run(build, wanted)
  })

const errorMessages = Effect.map(messages, (all) => all.filter((m) => m.startsWith("0 ")))

const connects = (ssh: ReadonlyArray<SshCall>) => ssh.filter((c) => c._tag === "Connect").length
const disconnects = (ssh: ReadonlyArray<SshCall>) => ssh.filter((c) => c._tag === "Disconnect").length
const cancels = (slurm: ReadonlyArray<SlurmCall>) => slurm.flatMap((c) => (c._tag === "Cancel" ? [c.jobId] : []))
const copiesIn = (store: ReadonlyArray<StoreCall>) => store.filter((c) => c._tag === "CopyToNode")
const copiesOut = (store: ReadonlyArray<StoreCall>) => store.filter((c) => c._tag === "CopyFromNode")

const pendingThenRunning = [jobInfo(), jobInfo(), runningOn("node1")]

describe("SlurmTryHandler + runBuild, happy path", () => {
  it.scopedLive("accepts naming the job, builds, streams the log without the marker, copies outputs back, cleans up, cancels nothing", () =>
    Effect.gen(function*() {
      const world = yield* makeWorld()
      const { journal, result, slurm, ssh, store, watchdog, watchdogNodeFiles } = yield* inCluster(
        world,
        { states: pendingThenRunning },
        Effect.gen(function*() {
          const { build, tag, nonce } = yield* accept(world)
          assert.strictEqual(build.machine, "slurm job 4242 (localhost)")
          const node = nodeFiles(world, tag)
          yield* node.built
          // A forged marker (wrong nonce) is log text; the real one may follow output without a newline.
          const forged = `@nsh-end ${"f".repeat(32)} 0\n`
          yield* node.writeLog(`building hello\n${forged}no newline`)
          yield* node.writeLog(marker(nonce, 0))
          const exit = yield* run(build)
          return { exit, log: yield* buildLogText, left: yield* node.left, errors: yield* errorMessages }
        })
      )
      assert.strictEqual(result.exit, 0)
      assert.deepStrictEqual(result.errors, [])
      assert.strictEqual(result.log, `building hello\n@nsh-end ${"f".repeat(32)} 0\nno newline\n`)

      // Inputs: Nix's inputs and the .drv, from the parent's store to the job's node.
      assert.deepStrictEqual(copiesIn(store), [
        {
          _tag: "CopyToNode",
          host: "node1",
          paths: [glibc, src, drvPath],
          localStore: world.options.store,
          substitute: false
        }
      ])
      // Outputs: only the wanted one, registered with its deriver.
      assert.deepStrictEqual(copiesOut(store), [
        { _tag: "CopyFromNode", host: "node1", outputs: [out], localStore: world.options.store, deriver: drvPath }
      ])

      // The node: lease renewed while it lasted, every job file removed at the end.
      assert.isTrue(ssh.some((c) => c._tag === "Exec" && c.command.includes("touch") && c.command.includes(".lease")))
      assert.deepStrictEqual(result.left, [])
      assert.deepStrictEqual(ssh.at(0), { _tag: "Connect", host: "node1" })
      assert.deepStrictEqual(ssh.at(-1), { _tag: "Disconnect", host: "node1" })
      assert.deepStrictEqual(cancels(slurm), [])
      // The watchdog was told the job needs nothing more: it exits without cancelling anything.
      assert.deepStrictEqual(watchdog, ["Start", "JobSubmitted", "NodeKnown", "Finished", "Closed"])
      // Had the hook died, the watchdog would have removed every output's GC root as well.
      assert.deepStrictEqual(
        watchdogNodeFiles.filter((f) => f.includes(".root")).map((f) => f.replace(/^.*\.root/, "")),
        [
          "",
          "-dev"
        ]
      )
      assert.deepStrictEqual(journal, [])
      yield* noProcessesLeft(world.dir)
    }))

  it.scopedLive("a watchdog that died during the build: the job, its files and the journal entry still go", () =>
    Effect.gen(function*() {
      const world = yield* makeWorld()
      const { journal, result, slurm, watchdog } = yield* inCluster(
        world,
        { states: pendingThenRunning, watchdogDied: new WatchdogError({ reason: "it exited" }) },
        Effect.gen(function*() {
          const exit = yield* buildsOk(world)
          return { exit, left: yield* nodeFiles(world, (yield* submitted).map(idsOf)[0]!.tag).left }
        })
      )
      assert.strictEqual(result.exit, 0)
      assert.deepStrictEqual(result.left, [])
      assert.deepStrictEqual(cancels(slurm), [])
      assert.deepStrictEqual(watchdog, ["Start", "JobSubmitted", "NodeKnown", "Closed"])
      assert.deepStrictEqual(journal, [], "the journal entry of a finished build stayed for the reaper")
    }))

  it.scopedLive("with no wanted outputs named, copies them all", () =>
    Effect.gen(function*() {
      const world = yield* makeWorld()
      const { result, store } = yield* inCluster(
        world,
        { states: [runningOn("node1")] },
        buildsOk(world, [])
      )
      assert.strictEqual(result, 0)
      assert.deepStrictEqual(copiesOut(store).map((c) => c._tag === "CopyFromNode" && c.outputs), [[out, dev]])
    }))
})

describe("SlurmTryHandler, max-jobs", () => {
  it.scopedLive("answers postpone while max-jobs live hooks' jobs are in the journal, submitting nothing, and submits below it", () =>
    Effect.gen(function*() {
      const world = yield* makeWorld()
      const { result, slurm } = yield* inCluster(
        world,
        { states: [runningOn("node1")], settings: { maxJobs: 2 } },
        Effect.gen(function*() {
          const journal = yield* Journal
          const handler = yield* TryHandler
          // Two submissions of live hooks (this process) on this machine.
          yield* journal.begin({ tag: "nsh-00000000000000a1", drvPath: p("1", "one.drv"), outputs: [] })
          yield* journal.begin({ tag: "nsh-00000000000000a2", drvPath: p("2", "two.drv"), outputs: [] })
          const atCap = yield* handler.answer(request, world.options)
          const submitsAtCap = (yield* submitted).length
          const talk = yield* messages
          // One of them ends: room for one more.
          yield* journal.remove("nsh-00000000000000a2")
          const below = yield* handler.answer(request, world.options)
          yield* journal.remove("nsh-00000000000000a1")
          return { atCap, submitsAtCap, talk, below: below._tag }
        })
      )
      assert.deepStrictEqual(result.atCap, {
        _tag: "Postpone",
        reason: "max-jobs (2) of nsh's Slurm jobs are pending or running"
      })
      assert.strictEqual(result.submitsAtCap, 0)
      assert.isTrue(result.talk.some((m) => m.includes(`nsh: postponing '${drvPath}'`)), result.talk.join("\n"))
      assert.strictEqual(result.below, "Accept")
      assert.lengthOf(slurm.filter((c) => c._tag === "Submit"), 1)
    }))

  it.scopedLive("does not count the journal entries of hooks that are gone", () =>
    Effect.gen(function*() {
      const world = yield* makeWorld()
      const { result } = yield* inCluster(
        world,
        { states: [runningOn("node1")], settings: { maxJobs: 1 } },
        Effect.gen(function*() {
          const journal = yield* Journal
          yield* journal.begin({ tag: "nsh-00000000000000b1", drvPath: p("1", "one.drv"), outputs: [] })
          const live = yield* (yield* TryHandler).answer(request, world.options)
          // The entry as a dead hook left it: another pid, which no process has now.
          rewriteEntry(journal, "nsh-00000000000000b1", { hookPid: 2 ** 22 + 1 })
          const answer = yield* (yield* TryHandler).answer(request, world.options)
          yield* journal.remove("nsh-00000000000000b1")
          return [live._tag, answer._tag]
        })
      )
      assert.deepStrictEqual(result, ["Postpone", "Accept"])
    }))

  it.scopedLive("does not count another login host's entries, live or not, nor a PID namespace's of the same host name", () =>
    Effect.gen(function*() {
      const world = yield* makeWorld()
      const { result } = yield* inCluster(
        world,
        { states: [runningOn("node1")], settings: { maxJobs: 1 } },
        Effect.gen(function*() {
          const journal = yield* Journal
          // Entries as this process (alive) would write them, moved to login2 and to another
          // namespace on this host name: the pid and start time say "alive", yet they are not ours.
          const elsewhere = [
            ["nsh-00000000000000c1", { host: "login2" }],
            ["nsh-00000000000000c2", { pidNamespace: "pid:[4026532999]" }]
          ] as const
          for (const [tag, moved] of elsewhere) {
            yield* journal.begin({ tag, drvPath: p("1", "one.drv"), outputs: [] })
            rewriteEntry(journal, tag, moved)
          }
          const answer = yield* (yield* TryHandler).answer(request, world.options)
          for (const [tag] of elsewhere) yield* journal.remove(tag)
          return answer._tag
        })
      )
      assert.strictEqual(result, "Accept")
    }))
})

describe("SlurmTryHandler + runBuild, builders-use-substitutes", () => {
  it.scopedLive("lets the node substitute the inputs when Nix's builders-use-substitutes is set", () =>
    Effect.gen(function*() {
      const world = yield* makeWorld({ buildersUseSubstitutes: true })
      const { result, store } = yield* inCluster(
        world,
        { states: [runningOn("node1")] },
        buildsOk(world)
      )
      assert.strictEqual(result, 0)
      assert.deepStrictEqual(copiesIn(store).map((c) => c._tag === "CopyToNode" && c.substitute), [true])
    }))
})

describe("SlurmTryHandler + runBuild, collect-garbage", () => {
  it.scopedLive("removes the GC root before collecting garbage on the node, the lease only after it", () =>
    Effect.gen(function*() {
      const world = yield* makeWorld()
      // What is left in the state dir when the collection starts: the root must be gone, the
      // lease still there (its removal ends the job, and with it the user's access to the node).
      const atCollection: Array<ReadonlyArray<string>> = []
      const leaseAtCollection: Array<boolean> = []
      const { result, store } = yield* inCluster(
        world,
        {
          states: [runningOn("node1")],
          settings: { collectGarbage: true },
          store: {
            collectGarbage: () =>
              Effect.sync(() => {
                const files = readdirSync(world.stateDir)
                atCollection.push(files.filter((f) => f.includes(".root")))
                leaseAtCollection.push(files.some((f) => f.endsWith(".lease")))
              })
          }
        },
        Effect.gen(function*() {
          const { build, tag, nonce } = yield* accept(world)
          const node = nodeFiles(world, tag)
          yield* node.built
          yield* node.writeLog(marker(nonce, 0))
          return { exit: yield* run(build), left: yield* node.left }
        })
      )
      assert.strictEqual(result.exit, 0)
      assert.deepStrictEqual(result.left, [])
      assert.deepStrictEqual(store.at(-1), { _tag: "CollectGarbage", host: "node1" })
      assert.deepStrictEqual(atCollection, [[]])
      assert.deepStrictEqual(leaseAtCollection, [true])
    }))
})

describe("SlurmTryHandler + runBuild, a phase fails", () => {
  it.scopedLive("submit fails: declines (Nix builds elsewhere), says why, leaves no job", () =>
    Effect.gen(function*() {
      const world = yield* makeWorld()
      const refused = new SlurmRequestError({ operation: "submit", status: 400, errors: ["Invalid partition name"] })
      const { journal, result, slurm, ssh, watchdog } = yield* inCluster(
        world,
        { states: [jobInfo()], submitError: refused },
        Effect.gen(function*() {
          const handler = yield* TryHandler
          const answer = yield* handler.answer(request, world.options)
          return { answer, errors: yield* errorMessages }
        })
      )
      assert.deepStrictEqual(result.answer, { _tag: "Decline", reason: refused.message })
      assert.deepStrictEqual(result.errors, [`0 nsh: not building '${drvPath}' on the cluster: ${refused.message}`])
      assert.deepStrictEqual(slurm.map((c) => c._tag), ["Submit"])
      assert.deepStrictEqual(ssh, [])
      // A refused submit queued nothing: the watchdog has nothing to look for, no journal entry stays.
      assert.deepStrictEqual(watchdog, ["Start", "Finished", "Closed"])
      assert.deepStrictEqual(journal, [])
    }))

  it.scopedLive("a derivation setting a field it may not set fails its build (never declined to the login node), submits nothing", () =>
    Effect.gen(function*() {
      const world = yield* makeWorld()
      const identity = { ...drv, env: { ...drv.env, extraSlurmParams: JSON.stringify({ user_id: "0" }) } }
      const { journal, result, slurm, ssh, watchdog } = yield* inCluster(
        world,
        { states: [jobInfo()], derivation: identity },
        Effect.gen(function*() {
          const answer = yield* (yield* TryHandler).answer(request, world.options)
          if (answer._tag !== "Accept") return assert.fail(`expected Accept, got ${JSON.stringify(answer)}`)
          return { exit: yield* run(answer.build), errors: yield* errorMessages }
        })
      )
      assert.strictEqual(result.exit, 1)
      assert.strictEqual(result.errors.length, 1)
      assert.include(result.errors[0], `nsh: refusing to build '${drvPath}': cannot submit ${drvPath}`)
      assert.include(result.errors[0], `the derivation's extraSlurmParams sets "user_id"`)
      assert.include(result.errors[0], "slurm-derivation-params")
      assert.deepStrictEqual(slurm, [])
      assert.deepStrictEqual(ssh, [])
      assert.deepStrictEqual(watchdog, [])
      assert.deepStrictEqual(journal, [])
    }))

  it.scopedLive("tells the watchdog the token file to read again, and no file when the token is not from one", () =>
    Effect.gen(function*() {
      const world = yield* makeWorld()
      const tokenFile = `${world.dir}/slurm.jwt`
      writeFileSync(tokenFile, "header.payload.signature\n")
      const fromFile = yield* inCluster(
        world,
        {
          states: [jobInfo()],
          submitError: new SlurmRequestError({ operation: "submit", status: 400, errors: ["x"] }),
          settings: { slurmJwtTokenFile: tokenFile }
        },
        TryHandler.pipe(Effect.flatMap((handler) => handler.answer(request, world.options)))
      )
      assert.deepStrictEqual(fromFile.watchdogTokenFiles, [tokenFile])
      const fromConf = yield* inCluster(
        world,
        {
          states: [jobInfo()],
          submitError: new SlurmRequestError({ operation: "submit", status: 400, errors: ["x"] })
        },
        TryHandler.pipe(Effect.flatMap((handler) => handler.answer(request, world.options)))
      )
      assert.deepStrictEqual(fromConf.watchdogTokenFiles, [undefined])
    }))

  it.scoped("an unanswered submit postpones and is left to the watchdog, which looks for a late job", () =>
    Effect.gen(function*() {
      const world = yield* makeWorld()
      const lost = new SlurmSubmitUnanswered({
        error: new SlurmUnreachable({ url: "http://localhost:6820", reason: "no answer within 20s", passing: true })
      })
      const { journal, result, watchdog } = yield* inCluster(
        world,
        { states: [jobInfo()], submitError: lost },
        TryHandler.pipe(Effect.flatMap((handler) => handler.answer(request, world.options)))
      )
      assert.deepStrictEqual(result, { _tag: "Postpone", reason: lost.message })
      assert.deepStrictEqual(watchdog, ["Start", "Closed"])
      assert.strictEqual(journal.length, 1, "the watchdog removes it once it has looked")
    }))

  it.scoped("a passing fault postpones (said once), and declines with the reason once postpone-timeout has passed", () =>
    Effect.gen(function*() {
      const world = yield* makeWorld()
      const gone = new SlurmUnreachable({ url: "http://localhost:6820", reason: "connection refused", passing: true })
      const { result, slurm, watchdog, journal } = yield* inCluster(
        world,
        { states: [jobInfo()], submitError: gone, settings: { postponeTimeout: 120 } },
        Effect.gen(function*() {
          const handler = yield* TryHandler
          const answers = [yield* handler.answer(request, world.options)]
          yield* TestClock.adjust("119 seconds")
          answers.push(yield* handler.answer(request, world.options))
          yield* TestClock.adjust("1 second")
          answers.push(yield* handler.answer(request, world.options))
          return { answers, said: yield* messages }
        })
      )
      assert.deepStrictEqual(result.answers.map((a) => a._tag), ["Postpone", "Postpone", "Decline"])
      assert.deepStrictEqual(result.answers[2], {
        _tag: "Decline",
        reason: `${gone.message} (still so after postponing for 120 s)`
      })
      const postponing = `nsh: postponing '${drvPath}' (Nix asks again; at most 120 s): ${gone.message}`
      assert.deepStrictEqual(result.said.filter((m) => m.includes("nsh: postponing")), [
        `${Verbosity.warn} ${postponing}`,
        `${Verbosity.talkative} ${postponing}`
      ])
      assert.deepStrictEqual(slurm.map((c) => c._tag), ["Submit", "Submit", "Submit"])
      // Connection refused: nothing can have been queued, so nothing is left to look for.
      assert.deepStrictEqual(watchdog, Array.from({ length: 3 }, () => ["Start", "Finished", "Closed"]).flat())
      assert.deepStrictEqual(journal, [])
    }))

  it.scoped("an unreadable token file postpones; postpone-timeout = 0 declines at once", () =>
    Effect.gen(function*() {
      const world = yield* makeWorld()
      const tokenFile = `${world.dir}/token`
      const answer = (postponeTimeout: number) =>
        inCluster(
          world,
          {
            states: [jobInfo()],
            settings: { slurmJwtToken: Option.none(), slurmJwtTokenFile: tokenFile, postponeTimeout }
          },
          TryHandler.pipe(Effect.flatMap((handler) => handler.answer(request, world.options)))
        )
      const postponed = yield* answer(300)
      assert.strictEqual(postponed.result._tag, "Postpone")
      assert.include(
        postponed.result._tag === "Postpone" ? postponed.result.reason : "",
        `'${tokenFile}' (no such file)`
      )
      assert.deepStrictEqual(postponed.slurm, [])
      assert.deepStrictEqual(postponed.journal, [], "no journal entry without a watchdog")
      assert.strictEqual((yield* answer(0)).result._tag, "Decline")
    }))

  it.scoped("the watchdog cannot start: postpones, submits nothing, leaves no journal entry", () =>
    Effect.gen(function*() {
      const world = yield* makeWorld()
      const broken = new WatchdogError({ reason: "cannot spawn node" })
      const { journal, result, slurm } = yield* inCluster(
        world,
        { states: [jobInfo()], watchdogFails: broken },
        TryHandler.pipe(Effect.flatMap((handler) => handler.answer(request, world.options)))
      )
      assert.deepStrictEqual(result, { _tag: "Postpone", reason: broken.message })
      assert.deepStrictEqual(slurm, [])
      assert.deepStrictEqual(journal, [])
    }))

  it.scopedLive("the .drv cannot be read: declines, submits nothing", () =>
    Effect.gen(function*() {
      const world = yield* makeWorld()
      const { result, slurm } = yield* inCluster(
        world,
        { states: [jobInfo()] },
        TryHandler.pipe(
          Effect.flatMap((handler) => handler.answer({ ...request, drvPath: p("e", "gone.drv") }, world.options))
        )
      )
      assert.deepStrictEqual(result, {
        _tag: "Decline",
        reason: `cannot read derivation ${p("e", "gone.drv")}: no such file`
      })
      assert.deepStrictEqual(slurm, [])
    }))

  it.scopedLive("the job fails before it ran: exit 1 naming the job's state, no SSH, no cancel", () =>
    Effect.gen(function*() {
      const world = yield* makeWorld()
      const failed = endedAs("FAILED", { reason: "NonZeroExitCode", exit: { _tag: "Exited", code: 1 } })
      const { result, slurm, ssh } = yield* inCluster(
        world,
        { states: [jobInfo(), failed] },
        Effect.gen(function*() {
          const { build } = yield* accept(world)
          return { exit: yield* run(build), errors: yield* errorMessages }
        })
      )
      assert.strictEqual(result.exit, 1)
      assert.deepStrictEqual(result.errors, [
        "0 nsh: Slurm job 4242 on node1 failed: FAILED (NonZeroExitCode), exit code 1"
      ])
      assert.deepStrictEqual(ssh, [])
      assert.deepStrictEqual(cancels(slurm), [])
    }))

  it.scopedLive("the job completes between two polls: its log and outputs are fetched from its node, no cancel", () =>
    Effect.gen(function*() {
      const world = yield* makeWorld()
      const completed = endedAs("COMPLETED", { exit: { _tag: "Exited", code: 0 } })
      const { result, slurm, store } = yield* inCluster(
        world,
        { states: [jobInfo(), completed] },
        Effect.gen(function*() {
          const { build, tag, nonce } = yield* accept(world)
          const node = nodeFiles(world, tag)
          yield* node.built
          yield* node.writeLog(`already valid\n${marker(nonce, 0)}`)
          return { exit: yield* run(build), errors: yield* errorMessages, log: yield* buildLogText }
        })
      )
      assert.strictEqual(result.exit, 0)
      assert.deepStrictEqual(result.errors, [])
      assert.strictEqual(result.log, "already valid\n")
      assert.deepStrictEqual(copiesOut(store).map((c) => c.host), ["node1"])
      assert.deepStrictEqual(cancels(slurm), [])
    }))

  it.scopedLive("the job completes before nsh saw it run, on no known node: not a success without outputs", () =>
    Effect.gen(function*() {
      const world = yield* makeWorld()
      const { result } = yield* inCluster(
        world,
        { states: [jobInfo(), endedAs("COMPLETED", { batchHost: "", exit: { _tag: "Exited", code: 0 } })] },
        Effect.gen(function*() {
          const { build } = yield* accept(world)
          return { exit: yield* run(build), errors: yield* errorMessages }
        })
      )
      assert.strictEqual(result.exit, 1)
      assert.deepStrictEqual(result.errors, ["0 nsh: Slurm job 4242 ended before the build reported a result"])
    }))

  it.scopedLive("a job stuck in the queue: exit 1 and the job is cancelled once", () =>
    Effect.gen(function*() {
      const world = yield* makeWorld()
      const { result, slurm } = yield* inCluster(
        world,
        { states: [jobInfo({ reason: "PartitionConfig" })] },
        Effect.gen(function*() {
          const { build } = yield* accept(world)
          return { exit: yield* run(build), errors: yield* errorMessages }
        })
      )
      assert.strictEqual(result.exit, 1)
      assert.deepStrictEqual(result.errors, ["0 nsh: Slurm job 4242 cannot start: PartitionConfig; cancelling it"])
      assert.deepStrictEqual(cancels(slurm), [jobId])
    }))

  it.scopedLive("SSH connect fails: exit 1 naming the node, the job cancelled once", () =>
    Effect.gen(function*() {
      const world = yield* makeWorld()
      const { result, slurm, ssh } = yield* inCluster(
        world,
        {
          states: pendingThenRunning,
          failConnect: (host) => new SshConnectError({ host, reason: "connection refused" })
        },
        Effect.gen(function*() {
          const { build } = yield* accept(world)
          return { exit: yield* run(build), errors: yield* errorMessages }
        })
      )
      assert.strictEqual(result.exit, 1)
      assert.deepStrictEqual(result.errors, ["0 nsh: cannot connect to node1 over SSH: connection refused"])
      assert.deepStrictEqual(ssh, [])
      assert.deepStrictEqual(cancels(slurm), [jobId])
    }))

  it.scopedLive("copying inputs fails: exit 1 naming the command and the node, the job cancelled once, disconnected", () =>
    Effect.gen(function*() {
      const world = yield* makeWorld()
      const { result, slurm, ssh } = yield* inCluster(
        world,
        {
          states: pendingThenRunning,
          store: {
            copyToNode: () =>
              Effect.fail(
                new StoreCommandError({
                  where: "node1",
                  command: "nix-store --import",
                  exitCode: 1,
                  stderr: "the node's store refused it"
                })
              )
          }
        },
        Effect.gen(function*() {
          const { build, tag } = yield* accept(world)
          return { exit: yield* run(build), errors: yield* errorMessages, left: yield* nodeFiles(world, tag).left }
        })
      )
      assert.strictEqual(result.exit, 1)
      assert.deepStrictEqual(result.errors, [
        "0 nsh: nix-store --import failed on node1 (exit 1): the node's store refused it"
      ])
      assert.deepStrictEqual(cancels(slurm), [jobId])
      assert.deepStrictEqual([connects(ssh), disconnects(ssh)], [1, 1])
      assert.deepStrictEqual(result.left, [])
      yield* noProcessesLeft(world.dir)
    }))

  it.scopedLive("a node that does not answer the clean-up does not hold up the end", () =>
    Effect.gen(function*() {
      const world = yield* makeWorld()
      const { result } = yield* inCluster(
        world,
        {
          states: pendingThenRunning,
          hangRemoval: true,
          store: {
            copyToNode: () =>
              Effect.fail(
                new StoreCommandError({
                  where: "node1",
                  command: "nix-store --import",
                  exitCode: 1,
                  stderr: "the node's store refused it"
                })
              )
          }
        },
        Effect.gen(function*() {
          const { build } = yield* accept(world)
          // A daemon and a bounded join: a regression then fails the test instead of hanging it.
          const fiber = yield* Effect.forkDaemon(run(build))
          return yield* Fiber.join(fiber).pipe(
            Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new Error("the build did not end") })
          )
        })
      )
      assert.strictEqual(result, 1)
    }))

  const failedBuild = (rc: number, expected: number) =>
    it.scopedLive(`the build fails (nix-store exit ${rc}): exit ${expected}, the log forwarded, no cancel (the job ended by itself)`, () =>
      Effect.gen(function*() {
        const world = yield* makeWorld()
        const { result, slurm, watchdog, journal, store } = yield* inCluster(
          world,
          { states: pendingThenRunning },
          Effect.gen(function*() {
            const { build, tag, nonce } = yield* accept(world)
            yield* nodeFiles(world, tag).writeLog(`error: builder failed\n${marker(nonce, rc)}`)
            return {
              exit: yield* run(build),
              errors: yield* errorMessages,
              log: yield* buildLogText,
              left: yield* nodeFiles(world, tag).left
            }
          })
        )
        assert.strictEqual(result.exit, expected)
        assert.strictEqual(result.log, "error: builder failed\n")
        assert.deepStrictEqual(result.errors, [
          `0 nsh: the build of '${drvPath}' failed on node1 (Slurm job 4242, nix-store exit code ${rc})`
        ])
        assert.deepStrictEqual(cancels(slurm), [])
        assert.include(watchdog, "Finished")
        assert.deepStrictEqual(journal, [])
        assert.deepStrictEqual(copiesOut(store), [])
        assert.deepStrictEqual(result.left, [])
      }))
  failedBuild(100, 100)
  failedBuild(102, 100)
  failedBuild(101, 101)
  failedBuild(1, 1)

  it.scopedLive("the job hits its time limit without a marker: exit 101, the partial last line forwarded, no cancel", () =>
    Effect.gen(function*() {
      const world = yield* makeWorld()
      const { result, slurm } = yield* inCluster(
        world,
        { states: [runningOn("node1"), endedAs("TIMEOUT", { reason: "TimeLimit" })] },
        Effect.gen(function*() {
          const { build, tag } = yield* accept(world)
          yield* nodeFiles(world, tag).writeLog("compiling\nslurmstepd: *** JOB CANCELLED DUE TO TIME LIMIT ***")
          return { exit: yield* run(build), errors: yield* errorMessages, log: yield* buildLogText }
        })
      )
      assert.strictEqual(result.exit, 101)
      assert.strictEqual(result.log, "compiling\nslurmstepd: *** JOB CANCELLED DUE TO TIME LIMIT ***")
      assert.strictEqual(result.errors.length, 1)
      assert.match(
        result.errors[0]!,
        /^0 nsh: Slurm job 4242 on node1 hit its Slurm time limit: TIMEOUT \(TimeLimit\); raise Nix's timeout/
      )
      assert.deepStrictEqual(cancels(slurm), [])
    }))

  it.scopedLive("the job runs out of memory: exit 1 with a hint to ask for more memory, no cancel", () =>
    Effect.gen(function*() {
      const world = yield* makeWorld()
      const { result, slurm } = yield* inCluster(
        world,
        { states: [runningOn("node1"), endedAs("OUT_OF_MEMORY", { reason: "OutOfMemory" })] },
        Effect.gen(function*() {
          const { build, tag } = yield* accept(world)
          yield* nodeFiles(world, tag).writeLog("linking\n")
          return { exit: yield* run(build), errors: yield* errorMessages }
        })
      )
      assert.strictEqual(result.exit, 1)
      assert.strictEqual(result.errors.length, 1)
      assert.match(
        result.errors[0]!,
        /ran out of memory: OUT_OF_MEMORY \(OutOfMemory\); ask for more with extraSlurmParams, e\.g\. memory_per_node/
      )
      assert.deepStrictEqual(cancels(slurm), [])
    }))

  it.scopedLive("copying outputs fails: exit 1 naming the command, nothing registered", () =>
    Effect.gen(function*() {
      const world = yield* makeWorld()
      const { result, slurm } = yield* inCluster(
        world,
        {
          states: pendingThenRunning,
          store: {
            copyFromNode: () =>
              Effect.fail(
                new StoreCommandError({
                  where: "this machine",
                  command: "nix-store --restore",
                  exitCode: 1,
                  stderr: "no space left on device"
                })
              )
          }
        },
        Effect.gen(function*() {
          const { build, tag, nonce } = yield* accept(world)
          const node = nodeFiles(world, tag)
          yield* node.built
          yield* node.writeLog(marker(nonce, 0))
          return { exit: yield* run(build), errors: yield* errorMessages, left: yield* node.left }
        })
      )
      assert.strictEqual(result.exit, 1)
      assert.deepStrictEqual(result.errors, [
        "0 nsh: nix-store --restore failed on this machine (exit 1): no space left on device"
      ])
      assert.deepStrictEqual(cancels(slurm), [])
      assert.deepStrictEqual(result.left, [])
    }))
})

/** The copy activity's first progress report: bytes are flowing. */
const copying = (direction: "inputs to" | "outputs from") => (events: ReadonlyArray<LogEvent>) => {
  const activity = events.find((e) =>
    e._tag === "Start" && e.type === ActivityType.copyPaths && e.text.startsWith(`copying ${direction}`)
  )
  return activity !== undefined &&
    events.some((e) =>
      e._tag === "Result" && e.id === (activity as { id: number }).id && e.type === ResultType.progress
    )
}

/** The watchdog's socket closed without `finished`: a real one now cancels and cleans up too. */
const assertLeftToWatchdog = (watchdog: ReadonlyArray<string>, journal: ReadonlyArray<string>, tag: string) => {
  assert.include(watchdog, "Closed")
  assert.notInclude(watchdog, "Finished")
  assert.deepStrictEqual(journal, [tag])
}

describe("SlurmTryHandler + runBuild, interrupted", () => {
  /**
   * Starts the build, waits for `reached`, interrupts it, and checks what every phase must leave:
   * the right job cancelled exactly once (or not at all once it ended), every connection closed.
   */
  const interrupted = (
    world: World,
    reached: (node: ReturnType<typeof nodeFiles>, nonce: string) => Effect.Effect<void, Error, Doubles>,
    states: ReadonlyArray<JobInfo> = pendingThenRunning,
    store: Scenario["store"] = {}
  ) =>
    inCluster(
      world,
      { states, store },
      Effect.gen(function*() {
        const { build, tag, nonce } = yield* accept(world)
        const node = nodeFiles(world, tag)
        const fiber = yield* Effect.fork(run(build))
        yield* reached(node, nonce)
        const exit = yield* Fiber.interrupt(fiber)
        assert.isTrue(exit._tag === "Failure", "the build was interrupted")
        return { tag, left: yield* node.left, cancelledAtOnce: yield* cancelled }
      })
    )

  it.scopedLive("while waiting for the allocation: one cancel of the job, nothing connected", () =>
    Effect.gen(function*() {
      const world = yield* makeWorld()
      const { result, slurm, ssh, watchdog, journal } = yield* interrupted(
        world,
        () =>
          SlurmCalls.pipe(
            Effect.flatMap((calls) =>
              calls.changes.pipe(
                Stream.filter((all) => all.filter((c) => c._tag === "GetJob").length >= 3),
                Stream.take(1),
                Stream.runDrain
              )
            ),
            Effect.asVoid
          ),
        [jobInfo({ reason: "Resources" })]
      )
      // Cancelled by the build's own finalizers, not only at the handler's teardown.
      assert.deepStrictEqual(result.cancelledAtOnce, [jobId])
      assert.deepStrictEqual(cancels(slurm), [jobId])
      assert.deepStrictEqual(ssh, [])
      assertLeftToWatchdog(watchdog, journal, result.tag)
    }))

  it.scopedLive("a cancel that never answers does not hold up the end: it is given up after its budget", () =>
    Effect.gen(function*() {
      const world = yield* makeWorld()
      const { result, slurm } = yield* inCluster(
        world,
        { states: [jobInfo({ reason: "Resources" })], cancel: Effect.never },
        Effect.gen(function*() {
          const { build } = yield* accept(world)
          // A daemon, and a disconnected wait: a regression then fails the test instead of hanging it.
          const fiber = yield* Effect.forkDaemon(run(build))
          yield* awaitEvents((events) =>
            events.some((e) => e._tag === "Start" && e.text.startsWith("Slurm job 4242: PENDING"))
          )
          return yield* Fiber.interrupt(fiber).pipe(
            Effect.disconnect,
            Effect.timeoutFail({
              duration: "10 seconds",
              onTimeout: () => new Error("the interrupted build did not end")
            })
          )
        })
      )
      assert.isTrue(result._tag === "Failure")
      assert.deepStrictEqual(cancels(slurm), [jobId])
    }))

  it.scopedLive("while copying inputs: one cancel, the connection closed, job files removed", () =>
    Effect.gen(function*() {
      const world = yield* makeWorld()
      const { result, slurm, ssh, watchdog, journal } = yield* interrupted(
        world,
        () => Effect.asVoid(awaitEvents(copying("inputs to"))),
        pendingThenRunning,
        { copyToNode: () => Effect.never }
      )
      assert.deepStrictEqual(result.cancelledAtOnce, [jobId])
      assert.deepStrictEqual(cancels(slurm), [jobId])
      assert.deepStrictEqual([connects(ssh), disconnects(ssh)], [1, 1])
      assert.deepStrictEqual(ssh.at(-1), { _tag: "Disconnect", host: "node1" })
      assert.deepStrictEqual(result.left, [])
      assertLeftToWatchdog(watchdog, journal, result.tag)
      yield* noProcessesLeft(world.dir)
    }))

  it.scopedLive("while the job builds and its log streams: one cancel, the connection closed, the log's tail stopped", () =>
    Effect.gen(function*() {
      const world = yield* makeWorld()
      const { result, slurm, ssh, watchdog, journal } = yield* interrupted(
        world,
        (node) =>
          node.writeLog("compiling hello.c\n").pipe(
            Effect.zipRight(
              awaitEvents((events) =>
                events.some((e) => e._tag === "BuildLog" && Buffer.from(e.bytes).toString().includes("compiling"))
              )
            ),
            Effect.asVoid
          )
      )
      assert.deepStrictEqual(result.cancelledAtOnce, [jobId])
      assert.deepStrictEqual(cancels(slurm), [jobId])
      assert.deepStrictEqual([connects(ssh), disconnects(ssh)], [1, 1])
      assert.deepStrictEqual(result.left, [])
      assertLeftToWatchdog(watchdog, journal, result.tag)
      yield* noProcessesLeft(world.dir)
    }))

  it.scopedLive("while copying outputs: the connection closed, the transfer killed, no cancel (the job printed its end marker)", () =>
    Effect.gen(function*() {
      const world = yield* makeWorld()
      const { result, slurm, ssh, watchdog, journal } = yield* interrupted(
        world,
        (node, nonce) =>
          Effect.gen(function*() {
            yield* node.built
            yield* node.writeLog(`done\n${marker(nonce, 0)}`)
            yield* awaitEvents(copying("outputs from"))
          }),
        pendingThenRunning,
        { copyFromNode: () => Effect.never }
      )
      assert.deepStrictEqual(cancels(slurm), [])
      assert.deepStrictEqual([connects(ssh), disconnects(ssh)], [1, 1])
      assert.deepStrictEqual(result.left, [])
      // The job ended and its files are gone: nothing is left for the watchdog to do.
      assert.deepStrictEqual(watchdog, ["Start", "JobSubmitted", "NodeKnown", "Finished", "Closed"])
      assert.deepStrictEqual(journal, [])
      yield* noProcessesLeft(world.dir)
    }))
})

describe("SlurmTryHandler + runBuild, a job lost through no fault of the build", () => {
  const nodeFailed = endedAs("NODE_FAIL", { reason: "NodeDown" })

  it.scopedLive("a node failure: the job is cancelled, the build submitted again, and the next job builds it", () =>
    Effect.gen(function*() {
      const world = yield* makeWorld()
      const { result, slurm, store } = yield* inCluster(
        world,
        { states: [runningOn("node1"), nodeFailed], resubmitted: [runningOn("node1")] },
        Effect.gen(function*() {
          const { build } = yield* accept(world)
          const fiber = yield* Effect.fork(run(build))
          yield* SlurmCalls.pipe(
            Effect.flatMap((calls) =>
              calls.changes.pipe(
                Stream.filter((all) => all.filter((c) => c._tag === "Submit").length === 2),
                Stream.take(1),
                Stream.runDrain
              )
            )
          )
          const again = idsOf((yield* submitted)[1]!)
          const node = nodeFiles(world, again.tag)
          yield* node.built
          yield* node.writeLog(`second time lucky\n${marker(again.nonce, 0)}`)
          return { exit: yield* Fiber.join(fiber), messages: yield* messages, log: yield* buildLogText }
        })
      )
      assert.strictEqual(result.exit, 0)
      assert.include(
        result.messages,
        "1 nsh: Slurm job 4242 ended with NODE_FAIL (NodeDown); submitting the build again (attempt 2 of 3)"
      )
      assert.strictEqual(result.log, "second time lucky\n")
      assert.strictEqual(copiesOut(store).length, 1)
      assert.deepStrictEqual(cancels(slurm), [jobId])
    }))

  it.scopedLive("gives up after three jobs lost: exit 1, each job cancelled once", () =>
    Effect.gen(function*() {
      const world = yield* makeWorld()
      const { result, slurm } = yield* inCluster(
        world,
        { states: [runningOn("node1"), nodeFailed] },
        Effect.gen(function*() {
          const { build } = yield* accept(world)
          return { exit: yield* run(build), errors: yield* errorMessages }
        })
      )
      assert.strictEqual(result.exit, 1)
      assert.deepStrictEqual(result.errors, [
        "0 nsh: Slurm job 4244 ended with NODE_FAIL (NodeDown); giving up after 3 attempts"
      ])
      assert.strictEqual(slurm.filter((c) => c._tag === "Submit").length, 3)
      assert.deepStrictEqual(cancels(slurm), [jobId, jobId + 1, jobId + 2])
    }))
})

describe("SlurmTryHandler + runBuild, Nix's limits", () => {
  it.scopedLive("max-build-log-size: forwards exactly the limit, exit 1, the job cancelled once", () =>
    Effect.gen(function*() {
      const world = yield* makeWorld({ maxBuildLogSize: 100 })
      const line = "0123456789abcdefghi\n" // 20 bytes
      const { result, slurm } = yield* inCluster(
        world,
        { states: pendingThenRunning },
        Effect.gen(function*() {
          const { build, tag } = yield* accept(world)
          yield* nodeFiles(world, tag).writeLog(line.repeat(12))
          return { exit: yield* run(build), errors: yield* errorMessages, log: yield* buildLogText }
        })
      )
      assert.strictEqual(result.exit, 1)
      assert.strictEqual(result.log, line.repeat(5))
      assert.deepStrictEqual(result.errors, ["0 nsh: killed after writing more than 100 bytes of log output"])
      assert.deepStrictEqual(cancels(slurm), [jobId])
      yield* noProcessesLeft(world.dir)
    }))

  it.scopedLive("max-silent-time: a silent build times out with exit 101, the job cancelled once", () =>
    Effect.gen(function*() {
      const world = yield* makeWorld({ maxSilentTime: 1 })
      const { result, slurm } = yield* inCluster(
        world,
        { states: pendingThenRunning },
        Effect.gen(function*() {
          const { build, tag } = yield* accept(world)
          yield* nodeFiles(world, tag).writeLog("waiting for the network\n")
          return { exit: yield* run(build), errors: yield* errorMessages }
        })
      )
      assert.strictEqual(result.exit, 101)
      assert.deepStrictEqual(result.errors, [`0 nsh: building of '${drvPath}' timed out after 1 seconds of silence`])
      assert.deepStrictEqual(cancels(slurm), [jobId])
      yield* noProcessesLeft(world.dir)
    }))
})

describe("SlurmTryHandler + runBuild, max-silent-time on builds that are not silent", () => {
  /** A build under max-silent-time 1 that the node ends by its marker after `play`: it must not be taken for silent. */
  const notSilent = (
    scenario: Partial<Scenario>,
    play: (node: ReturnType<typeof nodeFiles>, nonce: string) => Effect.Effect<void>
  ) =>
    Effect.gen(function*() {
      const world = yield* makeWorld({ maxSilentTime: 1 })
      const { result, slurm } = yield* inCluster(
        world,
        { states: pendingThenRunning, ...scenario },
        Effect.gen(function*() {
          const { build, tag, nonce } = yield* accept(world)
          const node = nodeFiles(world, tag)
          yield* node.built
          yield* Effect.fork(play(node, nonce))
          return { exit: yield* run(build), errors: yield* errorMessages, log: yield* buildLogText }
        })
      )
      assert.strictEqual(result.exit, 0, JSON.stringify(result.errors))
      assert.deepStrictEqual(result.errors, [])
      assert.deepStrictEqual(cancels(slurm), [])
      yield* noProcessesLeft(world.dir)
      return result.log
    })

  it.scopedLive("a build talking for longer than max-silent-time (plus slack) ends by its marker, exit 0", () =>
    Effect.gen(function*() {
      // Before: the silence watcher ended after its second check whatever the log did (it tested the schedule's count).
      const log = yield* notSilent({}, (node, nonce) =>
        // 1.5 s of real time, 15 s on the build's clock: well past 1 s of silence plus the 5 s slack.
        Effect.forEach(
          Array.from({ length: 50 }, (_, i) => i),
          (i) => node.writeLog(`line ${i}\n`).pipe(Effect.zipRight(Effect.sleep("30 millis"))),
          { discard: true }
        ).pipe(Effect.zipRight(node.writeLog(marker(nonce, 0)))))
      assert.include(log, "line 49\n")
    }))

  it.scopedLive("waiting for Nix to take the log is not the build's silence: it ends by its marker, exit 0", () =>
    Effect.gen(function*() {
      // 10 s (on the build's clock) per chunk: past 1 s of silence plus the 5 s slack.
      const log = yield* notSilent(
        { nixReadsSlowly: "10 seconds" },
        (node, nonce) => node.writeLog(`one line\n${marker(nonce, 0)}`)
      )
      assert.strictEqual(log, "one line\n")
    }))
})

describe("SlurmTryHandler + runBuild, Nix's timeout", () => {
  it.scopedLive("a build that keeps talking past the timeout while its nix-store does not stop it: exit 101 with Nix's message, the job cancelled once", () =>
    Effect.gen(function*() {
      // max-silent-time is set too: the chatter keeps it from firing, so only the timeout can end this build.
      const world = yield* makeWorld({ timeout: 1, maxSilentTime: 1 })
      const { result, slurm } = yield* inCluster(
        world,
        { states: pendingThenRunning },
        Effect.gen(function*() {
          const { build, tag } = yield* accept(world)
          const node = nodeFiles(world, tag)
          // The "node" never prints the end marker (its nix-store ignores --timeout) and talks every 20 ms of real time.
          yield* Effect.fork(
            Effect.forever(node.writeLog("still going\n").pipe(Effect.zipRight(Effect.sleep("20 millis"))))
          )
          return { exit: yield* bounded(run(build)), errors: yield* errorMessages, log: yield* buildLogText }
        })
      )
      assert.strictEqual(result.exit, 101)
      assert.deepStrictEqual(result.errors, [`0 nsh: building of '${drvPath}' timed out after 1 seconds`])
      assert.include(result.log, "still going\n")
      assert.deepStrictEqual(cancels(slurm), [jobId])
      yield* noProcessesLeft(world.dir)
    }))
})

describe("SlurmTryHandler + runBuild, a watcher fails while the others go on", () => {
  it.scopedLive("the token expires while tail -F goes on: exit 1 saying why, the job cancelled once", () =>
    Effect.gen(function*() {
      const world = yield* makeWorld()
      const expired = new SlurmAuthError({ host: "localhost:6820", reason: "Token expired" })
      const { result, slurm } = yield* inCluster(
        world,
        { states: [...pendingThenRunning, runningOn("node1"), expired] },
        Effect.gen(function*() {
          const { build, tag } = yield* accept(world)
          yield* nodeFiles(world, tag).writeLog("still compiling\n")
          return { exit: yield* bounded(run(build)), errors: yield* errorMessages }
        })
      )
      // (Whether "still compiling" reached the log before the token expired is a race; the tail's end is checked below.)
      assert.strictEqual(result.exit, 1)
      assert.deepStrictEqual(result.errors, [
        "0 nsh: cannot follow Slurm job 4242: the Slurm token was rejected by localhost:6820: Token expired " +
        "(get a new one with `scontrol token` and put it in SLURM_JWT or slurm-jwt-token-file); cancelling the job"
      ])
      assert.deepStrictEqual(cancels(slurm), [jobId])
      yield* noProcessesLeft(world.dir)
    }))

  it.scopedLive("slurmrestd unreachable for slurm-outage-timeout while tail -F goes on: exit 1 saying so, the job cancelled once", () =>
    Effect.gen(function*() {
      const world = yield* makeWorld()
      const down = new SlurmUnreachable({ url: "http://localhost:6820", reason: "connection refused", passing: true })
      const { result, slurm } = yield* inCluster(
        world,
        { states: [...pendingThenRunning, runningOn("node1"), down], settings: { slurmOutageTimeout: 10 } },
        Effect.gen(function*() {
          const { build, tag } = yield* accept(world)
          yield* nodeFiles(world, tag).writeLog("still compiling\n")
          return { exit: yield* bounded(run(build)), errors: yield* errorMessages }
        })
      )
      assert.strictEqual(result.exit, 1)
      assert.deepStrictEqual(result.errors, [
        "0 nsh: cannot follow Slurm job 4242: slurmrestd at http://localhost:6820 was unreachable for 10 s " +
        "(slurm-outage-timeout; last: connection refused); should it stay away, the job stops by itself about 60 s " +
        "from now, its lease no longer renewed; cancelling the job"
      ])
      assert.deepStrictEqual(cancels(slurm), [jobId])
      yield* noProcessesLeft(world.dir)
    }))

  it.scopedLive("the log cannot be followed while the job runs on: exit 1 naming the node, the job cancelled once", () =>
    Effect.gen(function*() {
      const world = yield* makeWorld()
      const { result, slurm } = yield* inCluster(
        world,
        { states: pendingThenRunning, refuseTail: true },
        Effect.gen(function*() {
          const { build } = yield* accept(world)
          return { exit: yield* bounded(run(build)), errors: yield* errorMessages }
        })
      )
      assert.strictEqual(result.exit, 1)
      assert.strictEqual(result.errors.length, 1, JSON.stringify(result.errors))
      assert.match(
        result.errors[0]!,
        /^0 nsh: cannot follow the log of Slurm job 4242 on node1: SSH command on node1 failed: channel open failure \(exec tail .*\); cancelling the job$/
      )
      assert.deepStrictEqual(cancels(slurm), [jobId])
      yield* noProcessesLeft(world.dir)
    }))
})
