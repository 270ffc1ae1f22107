// The direction of imports in src/, written down once: each folder may import only the folders
// listed for it (and itself). The entry points at the top of src/ (bin.ts, Cli.ts, HookMain.ts,
// snapshot.ts) may import anything; nothing in a folder may import them. `npm run deps:check`.
const allowed = {
  util: [],
  config: ["util"],
  ssh: ["util", "config"],
  slurm: ["util", "config"],
  store: ["util", "config", "ssh"],
  dispatch: ["util", "config"],
  hook: ["util", "config", "dispatch"],
  job: ["util", "config", "dispatch", "slurm", "ssh", "store"],
  safety: ["util", "config", "job", "slurm", "ssh", "store"],
  runner: ["util", "config", "dispatch", "job", "safety", "slurm", "ssh", "store"],
  cli: ["util", "config", "dispatch", "job", "safety", "slurm", "ssh", "store"],
  layers: ["util", "config", "dispatch", "hook", "job", "runner", "safety", "slurm", "ssh", "store"]
}

const folderRules = Object.entries(allowed).map(([folder, may]) => ({
  name: `${folder}-imports-only-below`,
  comment: `src/${folder}/ may import only ${may.length === 0 ? "nothing else in src/" : may.map((f) => `src/${f}/`).join(", ")}`,
  severity: "error",
  from: { path: `^src/${folder}/` },
  to: { path: "^src/", pathNot: [`^src/(${[folder, ...may].join("|")})/`] }
}))

module.exports = {
  forbidden: [
    ...folderRules,
    {
      name: "known-folders-only",
      comment: "every folder of src/ has a place in the table above",
      severity: "error",
      from: { path: "^src/[^/]+/", pathNot: `^src/(${Object.keys(allowed).join("|")})/` },
      to: {}
    },
    {
      name: "no-circular",
      severity: "error",
      from: {},
      to: { circular: true }
    }
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    exclude: { path: "^(node_modules|dist|test)/" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" }
  }
}
