# Settings and helpers shared by cluster-up.sh, cluster-down.sh and node-exec.sh.
# Every value can be overridden from the environment (NSH_TEST_*) before calling them.
# shellcheck shell=bash

# Compute nodes: node1..nodeN, node<i> at 127.0.0.<10+i>.
NSH_TEST_NODE_COUNT=${NSH_TEST_NODE_COUNT:-1}
# Virtual CPUs and memory (MB) advertised per node (SlurmdParameters=config_overrides lets
# slurmd accept more than the machine's real cores).
NSH_TEST_NODE_CPUS=${NSH_TEST_NODE_CPUS:-4}
NSH_TEST_NODE_MEM_MB=${NSH_TEST_NODE_MEM_MB:-4096}

# The nodes' build users: a group of their own, apart from this machine's nixbld (cluster-up.sh).
NSH_TEST_NODE_BUILD_GROUP=${NSH_TEST_NODE_BUILD_GROUP:-nshtestbld}
# Extra lines for every node's nix.conf (e.g. "build-users-group =" to build as root there).
NSH_TEST_NODE_NIX_CONF=${NSH_TEST_NODE_NIX_CONF:-}
# Extra lines for every node's sshd_config and for slurm.conf (the site profile, site-up.sh).
NSH_TEST_NODE_SSHD_CONF=${NSH_TEST_NODE_SSHD_CONF:-}
NSH_TEST_SLURM_CONF=${NSH_TEST_SLURM_CONF:-}

# slurmctld runs in its own UTS namespace under this hostname, bound to this address.
NSH_TEST_CTL_HOST=${NSH_TEST_CTL_HOST:-slurmctl}
NSH_TEST_CTL_ADDR=${NSH_TEST_CTL_ADDR:-127.0.0.10}

# slurmrestd endpoint (nsh's defaults are localhost:6820).
NSH_TEST_REST_ADDR=${NSH_TEST_REST_ADDR:-127.0.0.1}
NSH_TEST_REST_PORT=${NSH_TEST_REST_PORT:-6820}
# slurmrestd's -s (openapi plugins) and -d (data parsers): empty = every one this Slurm has
# (nt_rest_openapi_plugins, nt_rest_data_parsers), computed when slurmrestd starts.
NSH_TEST_REST_PLUGINS=${NSH_TEST_REST_PLUGINS:-}
NSH_TEST_REST_DATA_PARSERS=${NSH_TEST_REST_DATA_PARSERS:-}
NSH_TEST_REST_USER=${NSH_TEST_REST_USER:-slurmrestd}

NSH_TEST_CLUSTER_NAME=${NSH_TEST_CLUSTER_NAME:-nshtest}

# Runtime files (pid files, namespace handles, ownership markers), state, logs.
NSH_TEST_RUN=${NSH_TEST_RUN:-/run/nsh-test}
NSH_TEST_SRV=${NSH_TEST_SRV:-/srv/nsh-test}   # node<i>'s private things: $NSH_TEST_SRV/node<i>/{nix,tmp,etc}
NSH_TEST_STATE=${NSH_TEST_STATE:-/var/lib/nsh-test}
NSH_TEST_LOG=${NSH_TEST_LOG:-/var/log/nsh-test}
NSH_TEST_JWT_KEY=$NSH_TEST_STATE/jwt/jwt_hs256.key

# Client key used by root to reach the nodes (referenced from ~/.ssh/config).
NSH_TEST_SSH_KEY=${NSH_TEST_SSH_KEY:-/root/.ssh/nsh_test_ed25519}

# Another copy of this lab (the team's shared lab) that may already run the same daemons on the
# same addresses: cluster-up adopts it when it answers, or stops it (by its pid files) when not.
NSH_TEST_FOREIGN_RUN=${NSH_TEST_FOREIGN_RUN:-/run/nshlab}

nt_node_names() {
  local i
  for ((i = 1; i <= NSH_TEST_NODE_COUNT; i++)); do echo "node$i"; done
}

nt_node_addr() { # node<i> -> 127.0.0.<10+i>
  local i=${1#node}
  echo "127.0.0.$((10 + i))"
}

# Where a node's namespace handles live: ours, else the adopted lab's (NT_NS_DIR overrides both).
nt_ns_dir() { # node
  if [ -n "${NT_NS_DIR:-}" ]; then
    echo "$NT_NS_DIR"
  elif nt_ns_mounted "$NSH_TEST_RUN/ns/$1.mnt"; then
    echo "$NSH_TEST_RUN/ns"
  else
    echo "$NSH_TEST_FOREIGN_RUN/ns"
  fi
}

# Run a command inside a node's mount + UTS namespaces (its own /nix, /tmp, /etc/nix, hostname).
nt_node_exec() {
  local node=$1 dir
  shift
  dir=$(nt_ns_dir "$node")
  nsenter --mount="$dir/$node.mnt" --uts="$dir/$node.uts" -- "$@"
}

nt_log() { printf '[%s] %s\n' "${NT_SCRIPT:-harness}" "$*" >&2; }
nt_die() {
  printf '[%s] ERROR: %s\n' "${NT_SCRIPT:-harness}" "$*" >&2
  exit 1
}

# pid in a pid file, printed only if that process is alive and its comm matches.
nt_pid() { # pidfile comm
  local f=$1 comm=$2 pid
  [ -s "$f" ] || return 1
  pid=$(tr -dc '0-9' <"$f")
  [ -n "$pid" ] && [ -r "/proc/$pid/comm" ] || return 1
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$comm" ] || return 1
  nt_pid_zombie "$pid" && return 1
  echo "$pid"
}

# An exited daemon can stay a zombie for a while until pid 1 reaps it: count it as gone.
nt_pid_zombie() { [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" = Z ]; }

# Inode of a namespace handle (a bind-mounted nsfs file or /proc/PID/ns/X).
nt_ns_inode() { stat -L -c %i "$1" 2>/dev/null; }

nt_ns_mounted() { # file -> true if it is a live nsfs handle
  [ "$(findmnt -n -o FSTYPE --mountpoint "$1" 2>/dev/null | tail -1)" = nsfs ]
}

# SIGTERM a pid, wait up to $3 seconds (default 10), then SIGKILL.
nt_stop_pid() { # pid what [timeout]
  local pid=$1 what=$2 t=${3:-10} i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < t * 10; i++)); do
    if ! kill -0 "$pid" 2>/dev/null || nt_pid_zombie "$pid"; then
      nt_log "stopped $what (pid $pid)"
      return 0
    fi
    sleep 0.1
  done
  nt_log "$what (pid $pid) ignored SIGTERM for ${t}s, sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
}

# Replace (or add, or with empty content remove) a block delimited by '# BEGIN <marker>' /
# '# END <marker>' in a file, writing in place (bind-mounted files such as /etc/hosts keep working).
nt_set_block() { # file prepend|append content [marker]
  local file=$1 mode=$2 content=$3 marker=${4:-nsh-test} rest
  [ -e "$file" ] || : >"$file"
  rest=$(awk -v b="# BEGIN $marker" -v e="# END $marker" \
    'index($0, b) == 1 {skip=1; next} index($0, e) == 1 {skip=0; next} !skip' "$file")
  {
    if [ -z "$content" ]; then
      if [ -n "$rest" ]; then printf '%s\n' "$rest"; fi
    elif [ "$mode" = prepend ]; then
      printf '# BEGIN %s (managed by nsh test/harness/cluster-up.sh)\n%s\n# END %s\n' "$marker" "$content" "$marker"
      if [ -n "$rest" ]; then printf '%s\n' "$rest"; fi
    else
      if [ -n "$rest" ]; then printf '%s\n' "$rest"; fi
      printf '# BEGIN %s (managed by nsh test/harness/cluster-up.sh)\n%s\n# END %s\n' "$marker" "$content" "$marker"
    fi
  } >"$file.nsh-test.tmp"
  cat "$file.nsh-test.tmp" >"$file"
  rm -f "$file.nsh-test.tmp"
}

# A JWT for the current user (scontrol token prints SLURM_JWT=...).
nt_token() { # [lifespan seconds]
  scontrol token lifespan="${1:-3600}" | sed -n 's/^SLURM_JWT=//p'
}

# slurmrestd's plugins, by the files this Slurm installed (openapi_v0_0_38.so -> openapi/v0.0.38).
nt_slurm_plugins() { # prefix (openapi | data_parser)
  local f
  for f in /usr/lib/*/slurm-wlm/"$1"_*.so; do
    [ -e "$f" ] || continue
    f=${f##*/"$1"_}
    f=${f%.so}
    echo "$1/$(tr _ . <<<"$f")"
  done | sort -u -V
}

# Slurm <= 23.02 serves each version from its own openapi/v0.0.3x plugin; 23.11 and later serve
# them through openapi/slurmctld, one data parser each. openapi/dbv* and openapi/slurmdbd need
# slurmdbd (there is none here) and make slurmrestd exit at start.
nt_rest_openapi_plugins() {
  nt_slurm_plugins openapi | grep -vE '^openapi/(dbv|slurmdbd$)' | paste -sd, -
}
nt_rest_data_parsers() { nt_slurm_plugins data_parser | paste -sd, -; }

# The API versions this slurmrestd serves, oldest first (v0.0.38 ...), and the newest of them.
nt_rest_versions() {
  local parsers
  parsers=${NSH_TEST_REST_DATA_PARSERS:-$(nt_rest_data_parsers)}
  if [ -n "$parsers" ]; then
    tr , '\n' <<<"$parsers" | sed -n 's|^data_parser/||p'
  fi
  tr , '\n' <<<"${NSH_TEST_REST_PLUGINS:-$(nt_rest_openapi_plugins)}" | sed -n 's|^openapi/\(v[0-9.]*\)$|\1|p'
}
nt_rest_newest_version() { nt_rest_versions | sort -u -V | tail -1; }

# HTTP status of an authenticated GET /ping in the newest version served (000 when nothing answers).
nt_rest_ping() {
  local token
  token=$(nt_token 300 2>/dev/null) || token=""
  curl -s -m 5 -o /dev/null -w '%{http_code}' -H "X-SLURM-USER-NAME: root" -H "X-SLURM-USER-TOKEN: $token" \
    "http://$NSH_TEST_REST_ADDR:$NSH_TEST_REST_PORT/slurm/$(nt_rest_newest_version)/ping" 2>/dev/null || true
}

# True when every node is up in Slurm, reachable as `ssh node<i>` and has its own Nix store.
nt_nodes_ok() {
  local n state host_store node_store
  host_store=$(stat -c %d:%i /nix/store)
  for n in $(nt_node_names); do
    state=$(sinfo -h -N -n "$n" -o '%T' 2>/dev/null | head -1)
    case $state in idle | mixed | allocated | completing) ;; *) return 1 ;; esac
    [ "$(ssh -o ConnectTimeout=5 "$n" hostname 2>/dev/null)" = "$n" ] || return 1
    ssh "$n" nix-store --version >/dev/null 2>&1 || return 1
    node_store=$(nt_node_exec "$n" stat -c %d:%i /nix/store 2>/dev/null) || return 1
    [ "$node_store" != "$host_store" ] || return 1
  done
}

# Runs a daemon's start command holding none of our caller's descriptors above 2: a daemon that
# inherits one keeps it open for good (the pipe a CI runner reads to its end, a caller's flock).
nt_no_inherited_fds() {
  (
    for fd in /proc/$BASHPID/fd/*; do
      fd=${fd##*/}
      if [ "$fd" -gt 2 ]; then eval "exec $fd>&-" 2>/dev/null || true; fi
    done
    # A shell function cannot be exec'd; the daemons write their own pid files.
    if declare -F "$1" >/dev/null; then "$@"; else exec "$@"; fi
  )
}
