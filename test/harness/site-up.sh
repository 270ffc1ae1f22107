#!/usr/bin/env bash
# The site profile of the test cluster (on-release.sh RELEASE --site): the cluster of cluster-up.sh
# made to look like an HPC site, where nsh runs as an ordinary user:
#   - alice (uid 1000, login shell tcsh), her home in /home, which the login side and node1 share
#     (the nodes' namespaces have only /nix, /tmp, /etc/nix and /scratch of their own); her own
#     SSH key with a certificate of the site's user CA beside it (node1's sshd accepts her only
#     by certificate), known_hosts and ~/.ssh/config, her own Slurm token file (mode 0600), and the
#     per-user way set up: ~/.config/nix/nix.conf (a chroot store in her home) and
#     ~/.config/nix/nsh.conf (remote-store: a chroot store of hers on node1's local /scratch);
#   - node1 runs a nix-daemon owning its /nix/store, which does not trust alice;
#   - pam_slurm_adopt's two rules on node1, reproduced (Debian's libpam-slurm-adopt needs
#     cgroups and PAM in sshd, neither of which these namespaces have): sshd asks
#     authorized-principals for the principal her certificate must name, which it gives only
#     while she has a running job on node1; Slurm's epilog (site-epilog) kills her processes on
#     node1 when her last job there ends;
#   - the login side's /etc/nix/nix.conf names bin/nsh as the build hook, and its nix-daemon
#     runs it as root with /etc/nix/nsh.conf and the service account nshsvc's token (the daemon way).
# Run as root inside a release root (on-release.sh does it); it runs cluster-up.sh itself.
set -euo pipefail
NT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NT_SCRIPT=site-up
# shellcheck source=lib.sh
. "$NT_DIR/lib.sh"
[ "$(id -u)" = 0 ] || nt_die "run as root"
REPO=$(cd "$NT_DIR/../.." && pwd)
SITE=/etc/nsh-site               # what the site's admins keep (root's): users' keys, the rules' scripts
LIBEXEC=/usr/local/libexec/nsh-site
SITE_USER=alice
SITE_UID=1000
SITE_HOME=/home/$SITE_USER

install -d -m 0755 "$SITE" "$LIBEXEC" /scratch

# ---------------------------------------------------------------- pam_slurm_adopt's rules
# SSH the way sites do it: node1's sshd trusts a user CA of the site's and lets alice in only
# with a certificate it signed (her plain key is in no authorized_keys). Rule 1 (sshd
# AuthorizedPrincipalsCommand, run as nobody; with a certificate sshd asks it, not
# AuthorizedKeysCommand): the user's principal only while a job of hers runs on this node, that
# is, slurmd has started its step here (a socket in its spool directory), not merely allocated
# it. Root is not governed (its plain key is in AuthorizedKeysFile; the daemon way SSHes as root).
[ -f "$SITE/user-ca" ] || ssh-keygen -q -t ed25519 -N '' -C "nsh-site user CA" -f "$SITE/user-ca"
cat >"$LIBEXEC/authorized-principals" <<EOF
#!/bin/sh
# pam_slurm_adopt's first rule (nsh test/harness/site-up.sh): print %u as the principal her
# certificate must name, only while she has a job running on this node.
node=\$(hostname)
for job in \$(squeue -h -u "\$1" -w "\$node" -t RUNNING -o %i 2>/dev/null); do
  for step in $NSH_TEST_STATE/slurmd/\$node/\${node}_\$job.*; do
    if [ -S "\$step" ]; then
      echo "\$1"
      exit 0
    fi
  done
done
echo "site-authorized-principals: \$1 has no running job on \$node" >&2
exit 0
EOF
# Rule 2 (Slurm Epilog, run as root by slurmd in the node's namespaces): when a user's last job on
# this node ends, every process of hers on this node is killed. The nodes share the machine's
# process table with the login side, so "on this node" is "in this mount namespace".
cat >"$LIBEXEC/epilog" <<EOF
#!/bin/sh
# pam_slurm_adopt's second rule (nsh test/harness/site-up.sh).
uid=\${SLURM_JOB_UID:-0}
[ "\$uid" -ge 1000 ] || exit 0
node=\$(hostname)
if squeue -h -u "\$SLURM_JOB_USER" -w "\$node" -t RUNNING -o %i 2>/dev/null | grep -qvx "\$SLURM_JOB_ID"; then
  echo "\$(date +%s) job \$SLURM_JOB_ID of \$SLURM_JOB_USER ended on \$node: kept her processes (another job of hers runs here)" >>$NSH_TEST_LOG/site-epilog.log
  exit 0
fi
self=\$(readlink /proc/self/ns/mnt)
killed=
for p in /proc/[0-9]*; do
  pid=\${p#/proc/}
  [ "\$(stat -c %u "\$p" 2>/dev/null)" = "\$uid" ] || continue
  [ "\$(readlink "\$p/ns/mnt" 2>/dev/null)" = "\$self" ] || continue
  comm=\$(cat "\$p/comm" 2>/dev/null)
  kill -KILL "\$pid" 2>/dev/null && killed="\$killed \$pid(\$comm)"
done
echo "\$(date +%s) job \$SLURM_JOB_ID of \$SLURM_JOB_USER (uid \$uid) ended on \$node: killed\${killed:- nothing}" >>$NSH_TEST_LOG/site-epilog.log
exit 0
EOF
chmod 0755 "$LIBEXEC/authorized-principals" "$LIBEXEC/epilog"

export NSH_TEST_NODE_SSHD_CONF="TrustedUserCAKeys $SITE/user-ca.pub
AuthorizedPrincipalsCommand $LIBEXEC/authorized-principals %u
AuthorizedPrincipalsCommandUser nobody"
# OpenSSH 9.8+ penalises a source address for failed logins (PerSourcePenalties): the refusals
# the site tests provoke from loopback would then lock every client out of node1 for a while,
# root's too. (sshd -T only checks the option here; the CA key stands in for a host key.)
if /usr/sbin/sshd -T -f /dev/null -h "$SITE/user-ca" -o PerSourcePenalties=no >/dev/null 2>&1; then
  NSH_TEST_NODE_SSHD_CONF+="
PerSourcePenalties no"
fi
export NSH_TEST_SLURM_CONF="Epilog=$LIBEXEC/epilog"
# A node's nix-daemon ignores `--option system-features` from users it does not trust (the job's
# nix-store --realise runs as the job's user): the node's own nix.conf lists what nsh routes there.
export NSH_TEST_NODE_NIX_CONF="extra-system-features = nsh"
bash "$NT_DIR/cluster-up.sh" >/dev/null

# ---------------------------------------------------------------- node1: its nix-daemon, /scratch
for n in $(nt_node_names); do
  install -d -m 0755 "$NSH_TEST_SRV/$n/scratch"
  nt_node_exec "$n" sh -c 'mountpoint -q /scratch || mount --bind "$1" /scratch' sh "$NSH_TEST_SRV/$n/scratch"
  if ! nt_node_exec "$n" test -S /nix/var/nix/daemon-socket/socket; then
    nt_no_inherited_fds nt_node_exec "$n" setsid nix-daemon </dev/null >>"$NSH_TEST_LOG/nix-daemon-$n.log" 2>&1 &
    for ((i = 0; i < 50; i++)); do
      nt_node_exec "$n" test -S /nix/var/nix/daemon-socket/socket && break
      sleep 0.1
    done
    nt_node_exec "$n" test -S /nix/var/nix/daemon-socket/socket || nt_die "the nix-daemon of $n did not start (see $NSH_TEST_LOG/nix-daemon-$n.log)"
    nt_log "started the nix-daemon of $n"
  fi
done

# ---------------------------------------------------------------- alice
getent passwd "$SITE_USER" >/dev/null ||
  useradd --uid "$SITE_UID" --create-home --home-dir "$SITE_HOME" --shell /usr/bin/tcsh "$SITE_USER"
# No password, but not locked: sshd (UsePAM no) refuses a locked account even with a key.
usermod -p '*' "$SITE_USER"
grep -qx /usr/bin/tcsh /etc/shells || echo /usr/bin/tcsh >>/etc/shells
# Debian lets the members of nix-users reach a nix-daemon (its socket's directory is theirs).
if getent group nix-users >/dev/null; then usermod -aG nix-users "$SITE_USER"; fi
as_alice() { setpriv --reuid "$SITE_UID" --regid "$SITE_UID" --init-groups env HOME="$SITE_HOME" "$@"; }
as_alice install -d -m 0700 "$SITE_HOME/.ssh" "$SITE_HOME/.config" "$SITE_HOME/.config/nix"
[ -f "$SITE_HOME/.ssh/id_ed25519" ] || as_alice ssh-keygen -q -t ed25519 -N '' -C "$SITE_USER@nsh-site" -f "$SITE_HOME/.ssh/id_ed25519"
# Her certificate from the site's CA, for principal alice, beside her key (where ssh looks for it).
ssh-keygen -q -s "$SITE/user-ca" -I "$SITE_USER@nsh-site" -n "$SITE_USER" -V -5m:+1d "$SITE_HOME/.ssh/id_ed25519.pub"
chown "$SITE_USER:$SITE_USER" "$SITE_HOME/.ssh/id_ed25519-cert.pub"
{
  echo "Host $(nt_node_names | paste -sd' ')"
  echo "    IdentityFile ~/.ssh/id_ed25519"
  echo "    IdentitiesOnly yes"
  echo "    BatchMode yes"
  echo "    StrictHostKeyChecking yes"
} | as_alice tee "$SITE_HOME/.ssh/config" >/dev/null
for n in $(nt_node_names); do
  echo "$n,$(nt_node_addr "$n") $(cut -d' ' -f1,2 "$NSH_TEST_SRV/$n/etc/ssh/ssh_host_ed25519_key.pub")"
done | as_alice tee "$SITE_HOME/.ssh/known_hosts" >/dev/null
# Her own Slurm token, as a site hands it out.
nt_token_for() { scontrol token username="$1" lifespan="${2:-86400}" | sed -n 's/^SLURM_JWT=//p'; }
nt_token_for "$SITE_USER" | as_alice sh -c 'umask 077 && cat >"$1"' sh "$SITE_HOME/.config/nix/slurm.jwt"
# Her node-local scratch, made by the site on each node.
for n in $(nt_node_names); do
  nt_node_exec "$n" install -d -o "$SITE_USER" -g "$SITE_USER" -m 0700 "/scratch/$SITE_USER"
done
# The per-user way: her own Nix with a chroot store in her home (the login side's store is
# root's), nsh as her with her own nsh.conf; on node1 builds go into her chroot store on /scratch,
# since its daemon does not trust her.
as_alice tee "$SITE_HOME/.config/nix/nix.conf" >/dev/null <<EOF
# alice's Nix (nsh test/harness/site-up.sh): her own store; read on node1 too (shared home).
store = $SITE_HOME/.local/share/nix/root
build-users-group =
substituters =
EOF
# Made before any build: Nix 2.26 opening a fresh store from two logins at once races creating
# its gcroots/profiles link ("File exists").
as_alice nix-store --init
# Nix 2.13 - 2.33 ignore build-hook in nix.conf (fixed in 2.34, NixOS/nix#15083); --option is
# honoured, so her shell passes it (harmless where nix.conf works).
as_alice tee "$SITE_HOME/.cshrc" >/dev/null <<EOF
# alice's tcsh start-up (nsh test/harness/site-up.sh).
alias nix-build 'nix-build --option build-hook $REPO/bin/nsh'
EOF
as_alice tee "$SITE_HOME/.config/nix/nsh.conf" >/dev/null <<EOF
# alice's nsh.conf (nsh test/harness/site-up.sh).
slurm-api-host = $NSH_TEST_REST_ADDR
slurm-api-port = $NSH_TEST_REST_PORT
slurm-jwt-token-file = ~/.config/nix/slurm.jwt
system-features = nsh
mandatory-system-features = nsh
remote-store = /scratch/$SITE_USER/nix
# /etc/nix/nsh.conf (read first) names the service account's state directory.
slurm-state-dir = ~/.local/state/nsh
EOF

# ---------------------------------------------------------------- the login side's Nix
nt_set_block /etc/nix/nix.conf append "build-hook = $REPO/bin/nsh
system-features = nsh" nsh-site

# The daemon way: the login side's nix-daemon (root, no HOME; build-hook on its command line as
# well, for the Nix versions that ignore it in nix.conf) runs nsh as root with
# /etc/nix/nsh.conf and the token of a service account, nshsvc (an ordinary account, so the
# epilog's rule holds for it too); its jobs keep their files in a state directory of nshsvc's on
# the shared file system. alice reaches it with `nix-build --store daemon`.
SVC_USER=nshsvc
SVC_STATE=/var/lib/$SVC_USER/state
getent passwd "$SVC_USER" >/dev/null ||
  useradd --uid 1001 --home-dir "/var/lib/$SVC_USER" --create-home --shell /usr/sbin/nologin "$SVC_USER"
install -d -o "$SVC_USER" -g "$SVC_USER" -m 0755 "$SVC_STATE"
(umask 077 && nt_token_for "$SVC_USER" >/etc/nix/nsh-slurm.jwt)
cat >/etc/nix/nsh.conf <<EOF
# The login node's nsh.conf (nsh test/harness/site-up.sh), for the hook the nix-daemon runs as
# root. Users' own nsh.conf files are read after it and override what they set.
slurm-api-host = $NSH_TEST_REST_ADDR
slurm-api-port = $NSH_TEST_REST_PORT
slurm-jwt-token-file = /etc/nix/nsh-slurm.jwt
slurm-state-dir = $SVC_STATE
system-features = nsh
mandatory-system-features = nsh
EOF
chmod 0644 /etc/nix/nsh.conf
if [ ! -S /nix/var/nix/daemon-socket/socket ]; then
  nt_no_inherited_fds env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    setsid nix-daemon --option build-hook "$REPO/bin/nsh" </dev/null >>"$NSH_TEST_LOG/nix-daemon-login.log" 2>&1 &
  for ((i = 0; i < 50; i++)); do
    [ -S /nix/var/nix/daemon-socket/socket ] && break
    sleep 0.1
  done
  [ -S /nix/var/nix/daemon-socket/socket ] || nt_die "the login side's nix-daemon did not start (see $NSH_TEST_LOG/nix-daemon-login.log)"
  nt_log "started the login side's nix-daemon"
fi
nt_log "site profile up: user $SITE_USER (tcsh), node1's nix-daemon, pam_slurm_adopt's rules, build-hook $REPO/bin/nsh"
