/**
 * Reading the slurmrestd fixtures: real 22.05 captures and synthetic bodies of later versions.
 */
import { readFileSync } from "node:fs"

const read = (path: string) => readFileSync(new URL(`../../fixtures/slurm/${path}`, import.meta.url), "utf8")

/** A body captured from the lab's slurmrestd 22.05.8 (`06-submit-ok.json`, `04-….txt`, ...). */
export const sample = (file: string): unknown => JSON.parse(read(`samples-22.05/${file}`))

/** The raw text of a 22.05 capture (plain-text answers). */
export const sampleText = (file: string): string => read(`samples-22.05/${file}`)

/** A hand-written body of a later version (`v0.0.42-job-failed-exit3.json`). */
export const synthetic = (file: string): unknown => JSON.parse(read(`synthetic/${file}`))
