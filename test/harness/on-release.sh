#!/usr/bin/env bash
# Run a command as root inside a Debian root of another release, with the test cluster of that
# release up, isolated from this machine:
#   on-release.sh RELEASE [--site] [--] COMMAND [ARGS...]      RELEASE: bookworm | trixie | sid
#   e.g. on-release.sh sid -- npx vitest run --project e2e
#        on-release.sh trixie -- npm run demo
#        on-release.sh bookworm --site -- su - alice -c 'nix-build ...'
# --site brings the cluster up in the site profile (site-up.sh: an ordinary user alice with tcsh,
# node1's nix-daemon, pam_slurm_adopt's rules) instead of plain cluster-up.sh.
#
# The root is made on first use (debootstrap --variant=minbase, then apt-get install of the
# release's lines of release-packages.txt, with a policy-rc.d exiting 101 so no package starts a
# daemon) and cached in $NSH_RELEASE_CACHE/roots/RELEASE (default /var/cache/nsh-test); a stamp
# holding the package list's hash remakes it when that list changes. node_modules is installed
# per release (npm ci --ignore-scripts with that release's npm; bookworm's Node is 18, so bookworm
# uses this machine's Node) and cached beside it: the checkout's own node_modules is never touched.
#
# Each run gets new mount, PID, network, UTS and IPC namespaces. Inside them: a tmpfs overlay over
# the cached root (nothing a run writes survives it, and two runs share nothing), the checkout at
# its own path as an overlay too (its dist/ is rebuilt by the release's Node; writes stay in the
# run) with the release's node_modules bound over it, pivot_root into that root, only loopback
# (lo up, plus 127.0.0.2: glibc's AI_ADDRCONFIG ignores 127.0.0.1, and slurmctld 26.05 then
# cannot resolve its own name). There cluster-up.sh brings the cluster up (unless
# NSH_RELEASE_CLUSTER=0) and COMMAND runs from the checkout. When COMMAND ends, the namespace's
# init exits and the kernel kills every daemon; the mounts and addresses go with the namespaces.
# Killing this script (SIGTERM, SIGINT, SIGHUP or SIGKILL) kills that init the same way.
# Exit status: COMMAND's.
set -euo pipefail
NT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NT_SCRIPT=on-release
# shellcheck source=lib.sh
. "$NT_DIR/lib.sh"

REPO=$(cd "$NT_DIR/../.." && pwd)
CACHE=${NSH_RELEASE_CACHE:-/var/cache/nsh-test}
PKGLIST=$NT_DIR/release-packages.txt
MIRROR=${NSH_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${NSH_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
ROOT_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# The release's packages, one a line.
release_packages() { # release
  awk -v r="@$1" '/^[[:space:]]*(#|$)/ {next}
    { n = 0; hit = 0; for (i = 2; i <= NF; i++) if ($i ~ /^@/) { n++; if ($i == r) hit = 1 } }
    n == 0 || hit { print $1 }' "$PKGLIST"
}

# ---------------------------------------------------------------- inside the namespaces
# (these modes are this script calling itself through unshare; not for direct use)

# Host (bookworm) Node for the bookworm root: bind this machine's node and npm in, where a
# Debian package puts them (/usr/bin: builders that test npm have PATH=/usr/bin:/bin).
bind_host_node() { # root
  local r=$1 node npmdir
  node=$(readlink -f "$(command -v node)")
  npmdir=$(cd "$(dirname "$(readlink -f "$(command -v npm)")")/.." && pwd)
  install -d "$r/usr/lib/node_modules/npm"
  [ -e "$r/usr/bin/node" ] || touch "$r/usr/bin/node"
  mount --bind -o ro "$node" "$r/usr/bin/node"
  mount --bind -o ro "$npmdir" "$r/usr/lib/node_modules/npm"
  ln -sfn ../lib/node_modules/npm/bin/npm-cli.js "$r/usr/bin/npm"
  ln -sfn ../lib/node_modules/npm/bin/npx-cli.js "$r/usr/bin/npx"
}

# Mount namespace with the host's network, chrooted: package installs and npm ci need the
# registries. /proc, /dev, /sys are mounted only in this namespace.
if [ "${1:-}" = __setup ]; then
  shift
  r=$1 release=$2
  shift 2
  mount -t proc proc "$r/proc"
  mount --rbind /dev "$r/dev"
  mount -t sysfs sysfs "$r/sys"
  cp -L /etc/resolv.conf "$r/etc/resolv.conf"
  # The registries as this machine reaches them: its CA bundle may hold a proxy's CA.
  ca=/etc/ssl/certs/ca-certificates.crt
  if [ -s "$ca" ] && [ -d "$r/etc/ssl/certs" ]; then
    [ -e "$r$ca" ] || touch "$r$ca"
    mount --bind -o ro "$ca" "$r$ca"
  fi
  [ "$release" = bookworm ] && [ -e "$r/usr/bin/apt-get" ] && [ "${NT_HOST_NODE:-}" = 1 ] && bind_host_node "$r"
  exec chroot "$r" /usr/bin/env -i PATH="$ROOT_PATH" HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive \
    npm_config_update_notifier=false npm_config_cafile="$ca" NODE_EXTRA_CA_CERTS="$ca" "$@"
fi

# PID 1 of the run's namespaces, still seeing this machine's file system (privately).
if [ "${1:-}" = __run ]; then
  shift
  root=$1 release=$2 nm=$3
  shift 3
  ip link set lo up
  ip addr add 127.0.0.2/8 dev lo
  hostname "nsh-$release"
  m=$CACHE/mnt # an empty directory on this machine; in here it holds this run's tmpfs
  mount -t tmpfs -o mode=0755 nsh-run "$m"
  mkdir -p "$m/upper" "$m/work" "$m/root" "$m/repo-upper" "$m/repo-work"
  mount -t overlay nsh-root -o "lowerdir=$root,upperdir=$m/upper,workdir=$m/work" "$m/root"
  r=$m/root
  mount -t proc proc "$r/proc"
  mount -t sysfs sysfs "$r/sys"
  # slurmd (22.05 and 26.05 alike) exits at start without a cgroup file system, even with
  # proctrack/linuxproc ("No filesystem mounted on /sys/fs/cgroup"; node1 then stays unknown*):
  # this machine's, as slurmd on the host sees it.
  if mountpoint -q /sys/fs/cgroup; then mount --rbind /sys/fs/cgroup "$r/sys/fs/cgroup"; fi
  mount --rbind /dev "$r/dev"
  mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$r/dev/pts"
  mount --bind "$r/dev/pts/ptmx" "$r/dev/ptmx"
  mount -t tmpfs -o mode=1777 shm "$r/dev/shm"
  mkdir -p "$r$REPO"
  mount -t overlay nsh-repo -o "lowerdir=$REPO,upperdir=$m/repo-upper,workdir=$m/repo-work" "$r$REPO"
  # A worktree's node_modules may be a symlink to another checkout's, absent in the root: replace
  # it in the overlay only (the checkout keeps it), or the bind below would follow it.
  if [ -L "$r$REPO/node_modules" ]; then rm "$r$REPO/node_modules"; fi
  mkdir -p "$r$REPO/node_modules"
  mount --bind "$nm" "$r$REPO/node_modules"
  [ "$release" = bookworm ] && bind_host_node "$r"
  # bookworm's minbase has no /etc/hosts (trixie's netbase ships one): localhost must resolve.
  grep -qw localhost "$r/etc/hosts" 2>/dev/null || printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >>"$r/etc/hosts"
  printf '127.0.1.1\tnsh-%s\n' "$release" >>"$r/etc/hosts"
  cd "$r"
  mkdir -p .oldroot
  pivot_root . .oldroot
  cd /
  umount -l /.oldroot
  rmdir /.oldroot
  # A clean environment, as for a login: only what the caller chose to pass on.
  env=(PATH="$ROOT_PATH" HOME=/root USER=root LOGNAME=root SHELL=/bin/bash LANG=C.UTF-8 NSH_RELEASE="$release")
  while IFS= read -r v; do env+=("$v"); done < <(env | grep -E '^(CI|TERM|NO_COLOR|FORCE_COLOR|NSH_[A-Z0-9_]*|NIX_[A-Z0-9_]*)=' || true)
  exec /usr/bin/env -i "${env[@]}" /bin/bash "$REPO/test/harness/on-release.sh" __inside "$@"
fi

# In the release root: the cluster, then COMMAND. This shell is the namespace's init: when it
# exits, everything else in the namespace is killed.
if [ "${1:-}" = __inside ]; then
  shift
  cd "$REPO"
  # This root's own store (the submit side's), made on first use by Nix otherwise; cluster-up.sh
  # compares it with the node's.
  [ -d /nix/store ] || nix-store --init
  if [ "${NSH_RELEASE_CLUSTER:-1}" != 0 ]; then
    t0=$(date +%s)
    up=cluster-up.sh
    [ "${NSH_SITE:-0}" = 1 ] && up=site-up.sh
    # </dev/null: its ssh checks would eat the stdin meant for COMMAND.
    if ! bash "$NT_DIR/$up" </dev/null >/dev/null; then
      # The logs go with the run: show their ends now.
      for f in /var/log/nsh-test/*.log /var/log/munge/munged.log; do
        [ -s "$f" ] && { printf -- '--- %s\n' "$f"; tail -n 15 "$f"; } >&2
      done
      nt_die "$up failed in $NSH_RELEASE"
    fi
    nt_log "$NSH_RELEASE: cluster up in $(($(date +%s) - t0)) s: slurm $(sinfo -V | awk '{print $2}'), $(nix-store --version), node $(node --version)"
  fi
  rc=0
  "$@" || rc=$?
  exit "$rc"
fi

# ---------------------------------------------------------------- on this machine
# One function, called on the last line: bash parses it whole before running it, so editing this
# file while a run prepares a root does not derail that run.
main() {
  usage() { nt_die "usage: $0 bookworm|trixie|sid [--site] [--] COMMAND [ARGS...]"; }
  [ $# -ge 1 ] || usage
  release=$1
  shift
  case $release in bookworm | trixie | sid) ;; *) usage ;; esac
  export NSH_SITE=0
  if [ "${1:-}" = --site ]; then NSH_SITE=1 && shift; fi
  [ "${1:-}" = -- ] && shift
  [ $# -ge 1 ] || usage
  [ "$(id -u)" = 0 ] || nt_die "run as root (it makes a Debian root, mounts and namespaces)"
  for bin in unshare setpriv pivot_root ip flock sha256sum; do
    command -v "$bin" >/dev/null || nt_die "$bin is missing (util-linux, iproute2, coreutils)"
  done

  root=$CACHE/roots/$release
  nm_dir=$CACHE/node_modules/$release
  install -d -m 0755 "$CACHE" "$CACHE/roots" "$CACHE/node_modules" "$CACHE/mnt"
  # One preparation at a time per release (runs themselves share nothing and need no lock).
  exec 9>"$CACHE/roots/.$release.lock"
  flock 9

  # ---------------------------------------------------------------- the root
  root_stamp=$( { echo "release $release"; release_packages "$release"; } | sha256sum | cut -d' ' -f1)
  make_root() {
    local new=$root.new t0 pkgs
    t0=$(date +%s)
    command -v debootstrap >/dev/null || {
      nt_log "installing debootstrap"
      { DEBIAN_FRONTEND=noninteractive apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap; } </dev/null >&2 ||
        nt_die "apt-get install debootstrap failed"
    }
    rm -rf "$new"
    nt_log "making the $release root in $root (debootstrap --variant=minbase, then apt-get; a few minutes)"
    debootstrap --variant=minbase "$release" "$new" "$MIRROR" </dev/null >"$CACHE/roots/$release.debootstrap.log" 2>&1 ||
      nt_die "debootstrap $release failed (see $CACHE/roots/$release.debootstrap.log)"
    {
      echo "deb $MIRROR $release main"
      if [ "$release" != sid ]; then
        echo "deb $MIRROR $release-updates main"
        echo "deb $SECURITY_MIRROR $release-security main"
      fi
    } >"$new/etc/apt/sources.list"
    # The registry may serve a frozen copy of sid whose Release file is past its Valid-Until.
    printf 'Acquire::Check-Valid-Until "false";\n' >"$new/etc/apt/apt.conf.d/90nsh-test"
    printf '#!/bin/sh\n# Made by nsh test/harness/on-release.sh: packages never start daemons in this root.\nexit 101\n' >"$new/usr/sbin/policy-rc.d"
    chmod 0755 "$new/usr/sbin/policy-rc.d"
    mapfile -t pkgs < <(release_packages "$release")
    nt_log "$release: apt-get install ${pkgs[*]}"
    unshare --mount --pid --fork --kill-child --propagation private -- bash "$NT_DIR/on-release.sh" __setup "$new" "$release" \
      sh -c 'apt-get update -q && apt-get install -y -q --no-install-recommends "$@" && apt-get clean' sh "${pkgs[@]}" \
      </dev/null >>"$CACHE/roots/$release.debootstrap.log" 2>&1 ||
      nt_die "apt-get install in the $release root failed (see $CACHE/roots/$release.debootstrap.log)"
    rm -f "$new/etc/resolv.conf"
    echo "$root_stamp" >"$new/.nsh-stamp"
    if [ -e "$root" ]; then rm -rf "$root"; fi
    mv "$new" "$root"
    nt_log "made the $release root in $(($(date +%s) - t0)) s"
  }
  if [ "$(cat "$root/.nsh-stamp" 2>/dev/null)" != "$root_stamp" ]; then make_root; fi

  # ---------------------------------------------------------------- node_modules
  # Installed in a copy of package.json + package-lock.json (npm ci then never sees a mount point or
  # the checkout), with --ignore-scripts: the only install scripts are ssh2's optional native
  # crypto and cpu-features, which need a compiler, and npm 12 skips dependencies' scripts anyway;
  # so every release runs ssh2's pure-JS crypto, as this machine does. The bundle is built by
  # globalSetup / demo.sh in the run.
  node_ver() {
    if [ "$release" = bookworm ]; then node --version; else chroot "$root" node --version; fi
  }
  nm_stamp=$( { node_ver; cat "$REPO/package.json" "$REPO/package-lock.json"; } | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$nm_dir/.nsh-stamp" 2>/dev/null)" != "$nm_stamp" ]; then
    t0=$(date +%s)
    nt_log "$release: npm ci (node $(node_ver))"
    rm -rf "$nm_dir"
    install -d "$nm_dir"
    cp "$REPO/package.json" "$REPO/package-lock.json" "$nm_dir/"
    NT_HOST_NODE=1 unshare --mount --pid --fork --kill-child --propagation private -- bash -c \
      'mount --bind "$1" "$2/mnt" && shift 2 && exec "$@"' sh "$nm_dir" "$root" \
      bash "$NT_DIR/on-release.sh" __setup "$root" "$release" \
      sh -c 'cd /mnt && npm ci --ignore-scripts --no-audit --no-fund' </dev/null >&2 ||
      nt_die "npm ci for $release failed"
    echo "$nm_stamp" >"$nm_dir/.nsh-stamp"
    nt_log "$release: node_modules installed in $(($(date +%s) - t0)) s"
  fi

  exec 9>&-
  # The new namespaces. unshare ignores SIGTERM and SIGINT while it waits, so this shell stays
  # the parent: a signal here SIGKILLs unshare, and if this shell is SIGKILLed itself unshare gets
  # SIGKILL too (its parent-death signal); either way unshare's end SIGKILLs the namespace's
  # init (--kill-child), and the kernel then kills everything in it.
  local child rc=0
  setpriv --pdeathsig KILL -- unshare --mount --pid --net --uts --ipc --fork --kill-child=SIGKILL --propagation private -- \
    bash "$NT_DIR/on-release.sh" __run "$root" "$release" "$nm_dir/node_modules" "$@" <&0 &
  child=$!
  trap 'kill -KILL "$child" 2>/dev/null; wait "$child" 2>/dev/null; exit 143' TERM
  trap 'kill -KILL "$child" 2>/dev/null; wait "$child" 2>/dev/null; exit 130' INT
  trap 'kill -KILL "$child" 2>/dev/null; wait "$child" 2>/dev/null; exit 129' HUP
  wait "$child" || rc=$?
  exit "$rc"
}

main "$@"
