#!/usr/bin/env bash
# `npm run bench`: every benchmark of nsh against the local test cluster, one run each, printed
# and written to bench/results/<date>.md (git-ignored). Figures are reported, never asserted.
# Run as root; the cluster is brought up with test/harness/cluster-up.sh (left running).
# Usage: bench/run-all.sh [name...]   (names: hook-startup overhead queue copy log-latency rest-requests polling)
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || {
  echo "npm run bench: run it as root (the test cluster starts daemons and uses namespaces)" >&2
  exit 1
}

all=(hook-startup overhead queue copy log-latency rest-requests polling)
(($#)) && all=("$@")

echo "bringing up the test cluster (test/harness/cluster-up.sh)" >&2
bash test/harness/cluster-up.sh >/dev/null
if [ ! -s dist/nsh.mjs ] || [ -n "$(find src scripts/build.mjs -newer dist/nsh.mjs -print -quit)" ]; then
  echo "building the bundle (node scripts/build.mjs)" >&2
  node scripts/build.mjs
fi
export NSH_BENCH_CLUSTER_READY=1

mkdir -p bench/results
out="bench/results/$(date +%Y-%m-%d).md"
started=$(date +%s)
{
  echo "## nsh benchmarks, $(date '+%Y-%m-%d %H:%M %Z')"
  echo
  node --input-type=module -e '
    import { machine } from "./bench/lib/common.mjs"
    const m = machine()
    console.log(`Machine: ${m.cpus} CPUs (${m.model}), Node.js ${m.node}, ${m.nix}, ${m.slurm}, load average ${m.load} at start.`)'
  echo "Cluster: test/harness (node1 in a namespace on this machine, 4 Slurm CPUs); commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo ' + uncommitted changes')."
  echo
} | tee "$out"

failed=()
for name in "${all[@]}"; do
  echo "── $name" >&2
  t0=$(date +%s)
  if node "bench/$name.mjs" | tee -a "$out"; then
    echo "   ($name took $(($(date +%s) - t0)) s)" >&2
  else
    failed+=("$name")
    printf '### %s\n\nFAILED (see the terminal output of this run).\n\n' "$name" | tee -a "$out"
  fi
done

echo "Total: $(($(date +%s) - started)) s." | tee -a "$out"
echo "Results written to $out" >&2
if ((${#failed[@]})); then
  echo "failed: ${failed[*]}" >&2
  exit 1
fi
