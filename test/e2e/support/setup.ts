/** Every e2e file (vitest.config.ts's setupFiles): the cluster is healthy before it, and put back after each test. */
import { afterEach, beforeAll } from "vitest"
import { assertClusterHealthy, restoreCluster } from "./health.js"

beforeAll(() => assertClusterHealthy("before this file"), 90_000)

afterEach(async () => {
  await restoreCluster()
  await assertClusterHealthy("after this test (it did not put the cluster back)")
}, 90_000)
