/**
 * Settings for tests: nsh's defaults with overrides, wrapped as a Config layer.
 */
import { Option } from "effect"
import { Config } from "../../src/config/Config.js"
import type { LoadedSettings, Settings } from "../../src/config/Settings.js"

export const testSettings = (overrides: Partial<Settings> = {}): Settings => ({
  jobScheduler: "slurm",
  system: "x86_64-linux",
  systemFeatures: ["nsh"],
  mandatorySystemFeatures: [],
  storeDir: "/nix/store",
  remoteStore: "auto",
  remoteNixBinDir: "",
  collectGarbage: false,
  sshTransport: "auto",
  slurmStateDir: "/tmp/nsh-test-state",
  slurmApiUrl: "",
  slurmApiHost: "localhost",
  slurmApiPort: 6820,
  slurmApiCaFile: "",
  slurmApiAuth: "x-slurm",
  slurmApiVersion: "auto",
  slurmJwtToken: Option.none(),
  slurmJwtTokenFile: "",
  slurmUserName: "",
  slurmFeatureParams: {},
  slurmExtraSubmissionParams: {},
  slurmDerivationParams: ["default"],
  slurmDefaultTimeLimit: 1440,
  jobLeaseTimeout: 60,
  slurmOutageTimeout: 300,
  maxJobs: 0,
  postponeTimeout: 300,
  ...overrides
})

export const testLoaded = (overrides: Partial<Settings> = {}): LoadedSettings => ({
  settings: testSettings(overrides),
  sources: new Map(),
  files: [],
  absent: [],
  warnings: []
})

/** A Config layer holding the defaults plus overrides. */
export const TestConfig = (overrides: Partial<Settings> = {}) => Config.fromLoaded(testLoaded(overrides))
