/**
 * One `nsh doctor` check's outcome, and how the list of them is shown: ✓/✗ per line, the fix
 * under a failed one, and one JSON document with `--json`.
 */

/** Passed; failed (with the fix); or not run (no --job, or an earlier check it needs failed). */
export type CheckStatus = "pass" | "fail" | "skip"

export interface CheckResult {
  /** Stable, for --json and tests: nsh.conf, token, slurmrestd, job, ssh, nix, state-dir. */
  readonly name: string
  readonly status: CheckStatus
  /** One line: what was found. */
  readonly summary: string
  /** Further findings (warnings, versions), one per line. */
  readonly details: ReadonlyArray<string>
  /** What to do; set when failed. */
  readonly fix?: string
}

export const pass = (name: string, summary: string, details: ReadonlyArray<string> = []): CheckResult => ({
  name,
  status: "pass",
  summary,
  details
})

export const fail = (name: string, summary: string, fix: string, details: ReadonlyArray<string> = []): CheckResult => ({
  name,
  status: "fail",
  summary,
  details,
  fix
})

export const skip = (name: string, summary: string): CheckResult => ({ name, status: "skip", summary, details: [] })

/** Whether the doctor passes: nothing failed (skipped checks do not count against it). */
export const allPassed = (results: ReadonlyArray<CheckResult>): boolean => results.every((r) => r.status !== "fail")

const mark = { pass: "✓", fail: "✗", skip: "-" } as const

/** The report for people. */
export const renderChecks = (results: ReadonlyArray<CheckResult>): string => {
  const width = Math.max(...results.map((r) => r.name.length))
  const lines = results.flatMap((r) => [
    `${mark[r.status]} ${r.name.padEnd(width)}  ${r.summary}`,
    ...r.details.map((d) => `  ${" ".repeat(width)}  ${d}`),
    ...(r.fix === undefined ? [] : [`  ${" ".repeat(width)}  fix: ${r.fix}`])
  ])
  const failed = results.filter((r) => r.status === "fail").length
  return [
    ...lines,
    "",
    failed === 0 ? "all checks passed" : `${failed} check${failed === 1 ? "" : "s"} failed`
  ].join("\n")
}

/** The report as one JSON document. */
export const checksJson = (results: ReadonlyArray<CheckResult>) => ({ ok: allPassed(results), checks: results })
