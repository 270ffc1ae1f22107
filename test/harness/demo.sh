#!/usr/bin/env bash
# `npm run demo`: one real Nix build sent to Slurm by nsh, on the local test cluster.
#   1. brings the cluster up (test/harness/cluster-up.sh; installs its Debian packages if missing),
#   2. builds nsh's bundle if it is missing or older than the sources,
#   3. writes a temporary nsh.conf and a fresh 10-minute token file (the token is never printed),
#   4. runs nix-build of test/fixtures/demo/default.nix: a dependency built here, and a derivation
#      requiring `nsh` built on node1 as a Slurm job,
#   5. shows where each step happened, and checks it: the job's state in Slurm, the node it ran
#      on, the output valid in this machine's store, the inputs in node1's store,
#   6. leaves nothing behind: no job in the queue, no temporary files, no demo paths in either
#      store; a cluster it had to start is stopped again (NSH_DEMO_KEEP_CLUSTER=1 keeps it).
# Exits non-zero when any step fails. Run as root.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo"

step() { printf '\n%s\n' "$*"; }
ok() { printf '  ✓ %s\n' "$*"; }
problem() {
  printf '  ✗ %s\n' "$*" >&2
  exit 1
}

[ "$(id -u)" = 0 ] || {
  echo "npm run demo: run it as root (the test cluster starts daemons and creates namespaces)" >&2
  exit 1
}

work="" job="" started_cluster=no
paths=()
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$job" ] && [ -n "$(squeue -h -j "$job" 2>/dev/null)" ]; then scancel "$job" 2>/dev/null || true; fi
  if ((${#paths[@]})); then
    nix-store --delete "${paths[@]}" >/dev/null 2>&1 || true
    bash test/harness/node-exec.sh node1 nix-store --delete "${paths[@]}" >/dev/null 2>&1 || true
  fi
  [ -n "$work" ] && rm -rf "$work"
  if [ "$started_cluster" = yes ] && [ "${NSH_DEMO_KEEP_CLUSTER:-}" != 1 ]; then
    bash test/harness/cluster-down.sh >/dev/null 2>&1 || true
    printf '\nStopped the test cluster again (NSH_DEMO_KEEP_CLUSTER=1 keeps it running).\n'
  fi
  if [ "$rc" = 0 ]; then printf '\nDemo done: nothing left behind.\n'; else printf '\nDemo failed (exit %s).\n' "$rc" >&2; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

printf 'nsh demo: a Nix build sent to Slurm by nsh, on a test cluster on this machine\n'

# ------------------------------------------------------------------ 1. cluster
step "1. Test cluster"
mkdir -p "$HOME/.cache"
# Under $HOME, which the test node shares (its /tmp is its own): nsh's job files go here too.
work=$(mktemp -d "$HOME/.cache/nsh-demo.XXXXXX")
chmod 700 "$work"
was_up=no
if command -v scontrol >/dev/null 2>&1 && scontrol ping 2>/dev/null | grep -q 'is UP'; then was_up=yes; fi
# Whatever cluster-up starts is stopped again at the end (cluster-down leaves an adopted lab alone).
if [ "$was_up" = no ]; then
  started_cluster=yes
  echo "  … starting it with test/harness/cluster-up.sh (the first time it installs Debian packages)"
fi
if ! bash test/harness/cluster-up.sh >/dev/null 2>"$work/cluster-up.log"; then
  sed 's/^/    /' "$work/cluster-up.log" >&2
  problem "test/harness/cluster-up.sh failed (its output is above)"
fi
ok "Slurm with slurmrestd at http://127.0.0.1:6820 and compute node node1 ($([ "$was_up" = yes ] && echo "already running" || echo "started"))"
ok "node1 has its own Nix store, reached with \`ssh node1\`"

# ------------------------------------------------------------------ 2. bundle
step "2. nsh"
if [ ! -s dist/nsh.mjs ] || [ -n "$(find src scripts/build.mjs -newer dist/nsh.mjs -print -quit)" ]; then
  node scripts/build.mjs || problem "node scripts/build.mjs failed"
  ok "built the bundle: bin/nsh runs dist/nsh.mjs"
else
  ok "bin/nsh (bundle dist/nsh.mjs is up to date)"
fi

# ------------------------------------------------------------------ 3. nsh.conf
state="$work/state"
# scontrol writes `SLURM_JWT=...` straight into the file, which nsh accepts: the token is never shown.
(umask 077 && scontrol token lifespan=600 >"$work/token") || problem "scontrol token failed"
cat >"$work/nsh.conf" <<EOF
# Temporary nsh.conf of npm run demo (removed at the end).
system-features = nsh
mandatory-system-features = nsh
slurm-api-host = 127.0.0.1
slurm-jwt-token-file = $work/token
slurm-state-dir = $state
EOF
chmod 600 "$work/nsh.conf"
ok "temporary nsh.conf: derivations that require \`nsh\` go to Slurm; token valid 10 minutes (not shown)"

# ------------------------------------------------------------------ 4. nix-build
step "3. nix-build test/fixtures/demo/default.nix  (build-hook = bin/nsh)"
nonce="$(date +%s)-$$-$RANDOM"
# The demo's .drv files and outputs, deleted from both stores on exit.
paths+=($(nix-instantiate test/fixtures/demo/default.nix --argstr nonce "$nonce" 2>/dev/null | xargs -r nix-store -qR)) ||
  problem "cannot evaluate test/fixtures/demo/default.nix"
paths+=($(printf '%s\n' "${paths[@]}" | grep '\.drv$' | xargs -r nix-store -q --outputs))
start=$(date +%s%N)
set +e
NSH_CONF="$work/nsh.conf" nix-build test/fixtures/demo/default.nix --argstr nonce "$nonce" --no-out-link -v \
  --option build-hook "$repo/bin/nsh" --option build-users-group '' --option substituters '' \
  --option system-features nsh 2>&1 >"$work/out" | tee "$work/log" | sed -u 's/^/    │ /'
rc=${PIPESTATUS[0]}
set -e
elapsed=$(awk -v a="$start" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
[ "$rc" = 0 ] || problem "nix-build failed with exit code $rc (its output is above)"
out=$(grep '^/nix/store/' "$work/out" | tail -1)
ok "nix-build succeeded in $elapsed s"

# ------------------------------------------------------------------ 5. where it happened
step "4. Where each step happened"
greeting=$(readlink "$out/greeting") || problem "the output has no link to the greeting"
here=$(hostname)
[ "$(cat "$greeting/built-on")" = "$here" ] || problem "the greeting was built on $(cat "$greeting/built-on"), not here"
ok "the dependency ${greeting#/nix/store/} was built here, on $here (nsh declined it: it does not require \`nsh\`)"

job=$(grep -oE 'as Slurm job [0-9]+' "$work/log" | grep -oE '[0-9]+$' | head -1) || true
[ -n "$job" ] || problem "nsh did not report a Slurm job"
info=$(scontrol show job -o "$job")
field() { grep -oE "(^| )$1=[^ ]*" <<<"$info" | head -1 | cut -d= -f2-; }
[ "$(field JobState)" = COMPLETED ] || problem "Slurm job $job is $(field JobState), not COMPLETED"
ok "Slurm job $job ($(field JobName)): $(field JobState) on $(field NodeList), exit code $(field ExitCode), run time $(field RunTime)"

built_on=$(cat "$out/built-on")
[ "$built_on" = node1 ] || problem "the output says it was built on '$built_on', not node1"
grep -q 'nsh-demo: building hello on node1' "$work/log" || problem "the build log from node1 did not reach nix-build"
ok "the build ran on $built_on: its log line came back live, and \`hostname\` in the output says $built_on"

nix-store --verify-path "$out" 2>/dev/null || problem "$out is not valid in this machine's store"
ok "output $out is valid in this machine's store: \"$(cat "$out/text")\""

bash test/harness/node-exec.sh node1 nix-store --check-validity "$greeting" 2>/dev/null ||
  problem "node1's store does not have the input $greeting"
ok "node1's own store received the input ${greeting#/nix/store/} (and the .drv files), copied by nsh over SSH"

# ------------------------------------------------------------------ 6. nothing left behind
step "5. Nothing left behind"
[ -z "$(squeue -h -j "$job" 2>/dev/null)" ] || problem "Slurm job $job is still in the queue"
ok "no job of ours in the queue"
# nsh's watchdog may still be removing the journal entry for a moment after nix-build returns.
for _ in $(seq 30); do
  left=$(bash test/harness/node-exec.sh node1 find "$state" -type f 2>/dev/null)
  [ -z "$left" ] && break
  sleep 0.1
done
[ -z "$left" ] || problem "nsh left files in its state directory (seen from node1): $left"
ok "no files left in nsh's state directory (job log, lease, GC root on node1; journal here)"
ok "the temporary nsh.conf, token and the demo's store paths (here and on node1) are removed on exit"
