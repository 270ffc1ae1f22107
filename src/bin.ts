/**
 * The composition root: builds the layers and runs the CLI. Nothing else runs effects.
 */
console.error("nsh: not built yet")
process.exit(1)
