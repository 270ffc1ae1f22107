/**
 * What the build needs to know from the Nix that asked for it, independent of how Nix
 * delivered it (today: the build hook's settings block).
 */
export interface BuildOptions {
  /** Seconds; 0 = no limit. Nix does not enforce it on hook builds: nsh must. */
  readonly timeout: number
  /** Seconds without log output; 0 = no limit. Enforced by nsh on the streamed log. */
  readonly maxSilentTime: number
  /** Bytes; 0 = no limit. */
  readonly maxBuildLogSize: number
  readonly buildersUseSubstitutes: boolean
  /** Nix's `cores` (0 = all); the job's allocation decides on the node. */
  readonly cores: number
  /** The parent's store (`auto`, or e.g. a chroot store); every local nix-store call uses it. */
  readonly store: string
  /** Nix's verbosity from argv (2.4+ numbering: 0 error … 4 talkative … 7 vomit). */
  readonly verbosity: number
}

export const defaultBuildOptions: BuildOptions = {
  timeout: 0,
  maxSilentTime: 0,
  maxBuildLogSize: 0,
  buildersUseSubstitutes: false,
  cores: 0,
  store: "auto",
  verbosity: 3
}
