/**
 * Every e2e file (vitest.config.ts's setupFiles): the shared cluster is healthy before it, put back
 * after each test, and healthy again after it, so a file that broke the cluster fails itself.
 */
import { afterAll, afterEach, beforeAll } from "vitest"
import { assertClusterHealthy, restoreCluster } from "./health.js"

beforeAll(() => assertClusterHealthy("before this file"), 90_000)

afterEach(() => restoreCluster(), 30_000)

afterAll(() => assertClusterHealthy("after this file (a test did not put it back)"), 90_000)
