/**
 * A SshSession double for unit tests: commands run locally with `sh -c` (or get a scripted
 * answer), and every connect, command and disconnect is recorded in order.
 */
import { Command, CommandExecutor } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { Chunk, Context, Effect, Layer, Ref, type Scope, Stream } from "effect"
import { SshChannelError, type SshError } from "../../src/ssh/SshErrors.js"
import { type ExecResult, type RemoteProcess, SshSession } from "../../src/ssh/SshSession.js"

/** One thing the code under test asked of the session. */
export type SshCall =
  | { readonly _tag: "Connect" | "Disconnect"; readonly host: string }
  | { readonly _tag: "Exec" | "Spawn"; readonly host: string; readonly command: string }

/** A canned answer; absent fields mean exit 0, no signal, no output. */
export interface Scripted {
  readonly exitCode?: number
  readonly signal?: string
  readonly stdout?: string | Uint8Array
  readonly stderr?: string | Uint8Array
}

/** How the double answers: scripted per command, or by running it locally. */
export interface SshSessionTestOptions {
  /** Answers a command (given its whole stdin), or undefined to run it locally with `sh -c`. */
  readonly script?: (
    call: { readonly host: string; readonly command: string; readonly stdin: Uint8Array }
  ) => Scripted | undefined
  /** Makes connect fail for some hosts. */
  readonly failConnect?: (host: string) => SshError | undefined
}

/** The calls recorded by SshSessionTest, oldest first. */
export class SshCalls extends Context.Tag("test/SshCalls")<SshCalls, Ref.Ref<ReadonlyArray<SshCall>>>() {}

const bytes = (data: string | Uint8Array | undefined) =>
  typeof data === "string" ? new TextEncoder().encode(data) : (data ?? new Uint8Array())

const collect = <E>(stream: Stream.Stream<Uint8Array, E>) =>
  Stream.runCollect(stream).pipe(Effect.map((chunks) => new Uint8Array(Buffer.concat(Chunk.toReadonlyArray(chunks)))))

const make = (options: SshSessionTestOptions) =>
  Effect.gen(function*() {
    const calls = yield* Ref.make<ReadonlyArray<SshCall>>([])
    // Only the executor: the whole context would carry the caller's Scope and keep processes alive.
    const executor = yield* CommandExecutor.CommandExecutor
    const record = (call: SshCall) => Ref.update(calls, (all) => [...all, call])

    const start = (
      host: string,
      command: string,
      stdin: Stream.Stream<Uint8Array, unknown> | undefined
    ): Effect.Effect<RemoteProcess, SshError, Scope.Scope> => {
      const fail = (error: unknown) =>
        new SshChannelError({ host, command, reason: error instanceof Error ? error.message : String(error) })
      return Effect.gen(function*() {
        const input = stdin ?? Stream.empty
        const scripted = options.script === undefined
          ? undefined
          : yield* collect(input).pipe(
            Effect.mapError(fail),
            Effect.map((all) => options.script!({ host, command, stdin: all }))
          )
        if (scripted !== undefined) {
          return {
            stdout: Stream.make(bytes(scripted.stdout)),
            stderr: Stream.make(bytes(scripted.stderr)),
            exit: Effect.succeed({ exitCode: scripted.exitCode ?? 0, signal: scripted.signal })
          } satisfies RemoteProcess
        }
        const proc = yield* Command.start(Command.make("sh", "-c", command)).pipe(
          Effect.mapError(fail),
          Effect.provideService(CommandExecutor.CommandExecutor, executor)
        )
        yield* Stream.run(input, proc.stdin).pipe(Effect.ignore, Effect.forkScoped)
        return {
          stdout: Stream.mapError(proc.stdout, fail),
          stderr: Stream.mapError(proc.stderr, fail),
          exit: proc.exitCode.pipe(
            Effect.map((exitCode) => ({ exitCode, signal: undefined })),
            Effect.mapError(fail)
          )
        } satisfies RemoteProcess
      })
    }

    const session = SshSession.of({
      connect: (host) =>
        Effect.gen(function*() {
          const refused = options.failConnect?.(host)
          if (refused !== undefined) return yield* Effect.fail(refused)
          yield* Effect.acquireRelease(record({ _tag: "Connect", host }), () => record({ _tag: "Disconnect", host }))
          return {
            host,
            exec: (command, stdin) =>
              Effect.scoped(
                Effect.gen(function*() {
                  yield* record({ _tag: "Exec", host, command })
                  const proc = yield* start(host, command, stdin)
                  const [stdout, stderr, exit] = yield* Effect.all([
                    collect(proc.stdout),
                    collect(proc.stderr),
                    proc.exit
                  ], {
                    concurrency: "unbounded"
                  })
                  return { ...exit, stdout, stderr } satisfies ExecResult
                })
              ),
            spawn: (command, stdin) =>
              Effect.zipRight(record({ _tag: "Spawn", host, command }), start(host, command, stdin))
          }
        })
    })
    return Context.make(SshSession, session).pipe(Context.add(SshCalls, calls))
  })

/** SshSession double plus the SshCalls it records. */
export const SshSessionTest = (options: SshSessionTestOptions = {}): Layer.Layer<SshSession | SshCalls> =>
  Layer.effectContext(make(options)).pipe(Layer.provide(NodeContext.layer))
