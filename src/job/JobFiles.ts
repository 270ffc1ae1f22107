/**
 * The files one job keeps on its node, in slurm-state-dir, named by the job's unique tag so two
 * builds of the same derivation never share (or clobber) a file.
 */
export interface JobFiles {
  /** The job's stdout+stderr: the build log. */
  readonly log: string
  /** Touched by the hook while it lives; the job gives up when it goes stale. */
  readonly lease: string
  /** GC root of the `out` output (see `allJobFiles` for the others), removed once they are copied back. */
  readonly root: string
}

export const jobFiles = (stateDir: string, tag: string): JobFiles => {
  const base = `${stateDir.replace(/\/+$/, "")}/${tag}`
  return { log: `${base}.log`, lease: `${base}.lease`, root: `${base}.root` }
}

/**
 * Every file the job may have left behind, for a derivation with these output names. `nix-store
 * --realise --add-root R` names the root of `out` R and that of any other output `R-<output>`
 * (nix-store.cc, realisePath); `--indirect` adds only a link in gcroots/auto, which dangles (and
 * is collected) once R is gone.
 */
export const allJobFiles = (files: JobFiles, outputs: ReadonlyArray<string>): ReadonlyArray<string> => [
  files.log,
  files.lease,
  files.root,
  ...outputs.filter((name) => name !== "out").map((name) => `${files.root}-${name}`)
]
