/**
 * The batch script of an nsh job (the job protocol, /bin/sh): wait until the hook has copied the
 * derivation into the node's store, build it while the hook keeps renewing its lease, and print
 * `@nsh-end <nonce> <rc>` last. Every interpolated value is shell-quoted.
 */
import type { Settings } from "../config/Settings.js"
import type { BuildOptions } from "../dispatch/BuildOptions.js"
import { nixStoreCommand } from "../store/StoreCommands.js"
import { shellQuote } from "../util/ShellQuote.js"
import { jobFiles } from "./JobFiles.js"
import type { JobIds } from "./JobTag.js"

/** The job's exit code when the derivation never arrived or the lease lapsed (the hook is gone). */
export const LeaseLapsedExitCode = 3

/** The derivation's path in the node's store (store-dir), which may differ from the local one. */
export const nodeDrvPath = (drvPath: string, storeDir: string): string =>
  `${storeDir.replace(/\/+$/, "")}/${drvPath.slice(drvPath.lastIndexOf("/") + 1)}`

/** The realise flags that carry Nix's limits to the node (Nix does not enforce them on hook builds). */
const limitFlags = (options: BuildOptions): string =>
  [
    options.timeout > 0 ? ` --timeout ${shellQuote(String(options.timeout))}` : "",
    options.maxSilentTime > 0 ? ` --max-silent-time ${shellQuote(String(options.maxSilentTime))}` : ""
  ].join("")

/** The script for building `drvPath` (a local store path) as the job `ids.tag`. */
export const jobScript = (drvPath: string, settings: Settings, options: BuildOptions, ids: JobIds): string => {
  const files = jobFiles(settings.slurmStateDir, ids.tag)
  const q = shellQuote
  const nixStore = nixStoreCommand({ store: settings.remoteStore, binDir: settings.remoteNixBinDir }, [])
  return `#!/bin/sh
# nsh job: wait for the derivation, build it while the hook's lease is fresh, then
# print the end marker with the build's exit code.
state=${q(settings.slurmStateDir)}
drv=${q(nodeDrvPath(drvPath, settings.storeDir))}
lease=${q(files.lease)}
root=${q(files.root)}
lease_timeout=${q(String(settings.jobLeaseTimeout))}
nonce=${q(ids.nonce)}

nsh_nix_store() { ${nixStore} "$@"; }
# For the build, started in the background: exec, so that $! is nix-store itself and the kill
# below reaches it (a function's subshell would die alone, leaving nix-store building on).
nsh_exec_nix_store() { exec ${nixStore} "$@"; }

# After the end marker the job keeps its allocation until the hook has removed the lease (last
# of its files, once the outputs are back) or the lease lapsed: where a user may reach a node only
# while her job runs there and her processes die when it ends (pam_slurm_adopt), the hook's
# copies and clean-up over SSH need the job alive.
finish() {
  printf '@nsh-end %s %s\\n' "$nonce" "$1"
  while [ -e "$lease" ] && ! lease_lapsed; do sleep 0.2; done
  exit "$1"
}

# The lease counts as renewed whenever its mtime changes, timed by this node's clock alone (a
# shared file system's clock may differ). Before the first lease, the job's start counts.
lease_seen=
lease_renewed=$(date +%s)
lease_lapsed() {
  now=$(date +%s)
  mtime=$(stat -c %Y "$lease" 2>/dev/null)
  if [ "$mtime" != "$lease_seen" ]; then
    lease_seen=$mtime
    lease_renewed=$now
  fi
  [ $((now - lease_renewed)) -gt "$lease_timeout" ]
}

mkdir -p "$state" || { echo "nsh: cannot create the state directory $state on $(uname -n)"; finish 1; }

until nsh_nix_store --check-validity "$drv" >/dev/null 2>&1; do
  if lease_lapsed; then
    echo "nsh: giving up: $drv did not arrive in the store of $(uname -n) and the hook's lease was not renewed for $lease_timeout s (the nsh that submitted this job is gone)"
    finish ${LeaseLapsedExitCode}
  fi
  sleep 0.2
done

# stdout only lists the output paths; the build log is on stderr.
nsh_exec_nix_store --realise "$drv" --quiet --add-root "$root" --indirect --cores "\${SLURM_CPUS_ON_NODE:-0}"${
    limitFlags(options)
  } --option system-features ${q(settings.systemFeatures.join(" "))} >/dev/null &
build=$!
lapsed=
ticks=0
while kill -0 "$build" 2>/dev/null; do
  sleep 0.2
  ticks=$((ticks + 1))
  if [ $((ticks % 5)) -eq 0 ] && lease_lapsed; then
    echo "nsh: stopping the build: the hook's lease was not renewed for $lease_timeout s (the nsh that submitted this job is gone)"
    lapsed=1
    kill "$build" 2>/dev/null
    (sleep 10; kill -KILL "$build") >/dev/null 2>&1 &
    break
  fi
done
wait "$build"
rc=$?
[ -z "$lapsed" ] || rc=${LeaseLapsedExitCode}
finish "$rc"
`
}
