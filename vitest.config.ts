import { defineConfig } from "vitest/config"

// Two projects: `unit` runs anywhere in seconds; `e2e` needs root and the local cluster
// (test/harness/cluster-up.sh, run by its globalSetup); .ci/run runs it per Debian release inside
// test/harness/on-release.sh.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["test/**/*.test.ts"],
          exclude: ["test/e2e/**", "test/site/**"],
          testTimeout: 20_000
        }
      },
      {
        // Inside the harness's site profile only (on-release.sh RELEASE --site), as root; the
        // tests act as the profile's ordinary user alice. The profile brought the cluster up.
        test: {
          name: "site",
          include: ["test/site/**/*.test.ts"],
          globalSetup: ["test/site/globalSetup.ts"],
          testTimeout: 300_000,
          hookTimeout: 300_000,
          pool: "forks",
          poolOptions: { forks: { singleFork: true } }
        }
      },
      {
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          // Brings the harness cluster up (and down), rebuilds the bundle, provides facts + a token.
          globalSetup: ["test/e2e/globalSetup.ts"],
          // Per file: the shared cluster is healthy before it and put back after each test.
          setupFiles: ["test/e2e/support/setup.ts"],
          testTimeout: 300_000,
          hookTimeout: 300_000,
          // One real cluster, one real Nix store: e2e files must not race each other.
          pool: "forks",
          poolOptions: { forks: { singleFork: true } }
        }
      }
    ]
  }
})
