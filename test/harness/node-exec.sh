#!/usr/bin/env bash
# Run a command inside a test node's namespaces without ssh (own /nix, /tmp, /etc/nix, hostname).
# Usage: node-exec.sh node1 nix-store -q --references /nix/store/...
set -euo pipefail
NT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NT_SCRIPT=node-exec
# shellcheck source=lib.sh
. "$NT_DIR/lib.sh"
[ $# -ge 2 ] || nt_die "usage: $0 NODE COMMAND [ARGS...]"
node=$1
shift
nt_ns_mounted "$(nt_ns_dir "$node")/$node.mnt" || nt_die "$node has no namespace (is the cluster up? test/harness/cluster-up.sh)"
nt_node_exec "$node" "$@"
