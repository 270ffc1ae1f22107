#!/usr/bin/env bash
# Puts the nixpkgs that flake.lock pins into this machine's Nix store, where Nix takes a locked
# `github` input from instead of downloading it (a path named `source` whose NAR hash is the
# lock's narHash, as Nix's own fetcher would have added it). Then test/e2e/flake.test.ts evaluates
# the flake offline against that real nixpkgs, with the lock as committed:
#   nixpkgs-source.sh NIXPKGS_GIT_DIR | GITHUB_TARBALL
# NIXPKGS_GIT_DIR: a clone of NixOS/nixpkgs that has the locked revision. `git archive` of a
# commit is the tree GitHub's tarball of it unpacks to (both leave out export-ignore paths).
# GITHUB_TARBALL: GitHub's tarball of the locked revision (…/archive/REV.tar.gz).
# A tree whose NAR hash is not the lock's narHash is refused. A GC root in
# $NSH_RELEASE_CACHE (default /var/cache/nsh-test) keeps the path from the garbage collector.
# Inside a release root (test/harness/on-release.sh) the store is the root's and lasts one run:
# run this script in the same on-release command as the tests, with a source inside the checkout.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CACHE=${NSH_RELEASE_CACHE:-/var/cache/nsh-test}
nixc() { nix --extra-experimental-features nix-command "$@"; }

[ $# -eq 1 ] && [ -e "$1" ] || { echo "usage: $0 NIXPKGS_GIT_DIR|GITHUB_TARBALL (of the revision flake.lock pins)" >&2; exit 2; }
locked=$(node -e '
  const l = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).nodes.nixpkgs.locked
  console.log(l.rev, l.narHash)' "$REPO/flake.lock")
read -r rev narHash <<<"$locked"

tmp=$(mktemp -d)
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
mkdir "$tmp/source"
if [ -d "$1" ]; then
  git --git-dir="$1" cat-file -e "$rev^{commit}" 2>/dev/null ||
    { echo "nixpkgs-source: $1 has no commit $rev (the one flake.lock pins); fetch it there first." >&2; exit 1; }
  git --git-dir="$1" archive --format=tar "$rev" | tar -x -C "$tmp/source"
else
  tar -xzf "$1" -C "$tmp/source" --strip-components=1
fi

got=$(nixc hash path "$tmp/source")
if [ "$got" != "$narHash" ]; then
  echo "nixpkgs-source: $1 gives a tree with NAR hash $got, but flake.lock pins nixpkgs $rev with $narHash; give a clone holding that commit, or GitHub's tarball of it." >&2
  exit 1
fi
path=$(nix-store --add "$tmp/source")
expected=$(nix-store --print-fixed-path --recursive sha256 "$(nixc hash to-base16 "$narHash")" source)
[ "$path" = "$expected" ] || { echo "nixpkgs-source: added $path, but Nix looks for $expected" >&2; exit 1; }
mkdir -p "$CACHE"
nix-store --add-root "$CACHE/nixpkgs-$rev" --indirect --realise "$path" >/dev/null
echo "$path"
