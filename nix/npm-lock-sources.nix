# The tarball of every package in a package-lock.json written without `resolved` URLs (npm's
# omit-lockfile-registry-resolved), as importNpmLock's `packageSourceOverrides`.
#
# Why not plain importNpmLock or buildNpmPackage + npmDepsHash (nixpkgs, read 2026):
# - importNpmLock fetches an entry only when it has `resolved`; without it, an entry stays as it
#   is (so `npm install --offline` in its config hook finds no tarball) and package.json's direct
#   dependencies fail evaluation (`packages."node_modules/<name>".resolved` is missing).
# - prefetch-npm-deps (behind npmDepsHash) keeps only entries whose `resolved` is a URL, so the
#   cache would be empty; and npmDepsHash is itself a hash of a network download.
# - fetchurl needs the URL, which would commit a registry host name (we commit none), and
#   nixpkgs has no `mirror://npm` yet.
# So each tarball is a fixed-output derivation whose hash is the lock's own `integrity` (npm's
# integrity is the SRI hash of the tarball, exactly what a flat fixed output is checked against):
# `npm pack <name>@<version>` downloads it from npm's configured registry (its built-in default,
# or `npm_config_registry` from the daemon's environment), and Nix rejects any other bytes.
{
  lib,
  stdenvNoCC,
  nodejs,
}:
let
  fetchNpmTarball =
    {
      name,
      version,
      integrity,
    }:
    stdenvNoCC.mkDerivation {
      # A store name allows neither `@` nor `/` (scoped packages).
      name = "${builtins.replaceStrings [ "@" "/" ] [ "" "-" ] name}-${version}.tgz";
      nativeBuildInputs = [ nodejs ];
      outputHash = integrity;
      outputHashMode = "flat";
      impureEnvVars = lib.fetchers.proxyImpureEnvVars ++ [ "npm_config_registry" ];
      preferLocalBuild = true;
      buildCommand = ''
        export HOME="$TMPDIR" npm_config_cache="$TMPDIR/npm-cache"
        export npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false npm_config_progress=false
        mkdir "$TMPDIR/pack" && cd "$TMPDIR/pack"
        npm pack --ignore-scripts --loglevel=warn ${lib.escapeShellArg "${name}@${version}"}
        mv ./*.tgz "$out"
      '';
    };

  # npm's os/cpu fields: an allow list, or a block list when every entry starts with `!`.
  allows =
    field: hostValue: module:
    let
      list = module.${field} or [ ];
    in
    list == [ ]
    || (
      if lib.all (lib.hasPrefix "!") list then
        !(lib.elem "!${hostValue}" list)
      else
        lib.elem hostValue list
    );

  # npm skips optional packages built for another platform without fetching them; fetching them
  # anyway would only download binaries for other systems. libc is not checked: both variants
  # are fetched rather than second-guess npm's libc detection inside the build sandbox.
  runsHere =
    module:
    allows "os" stdenvNoCC.hostPlatform.node.platform module
    && allows "cpu" stdenvNoCC.hostPlatform.node.arch module;

  # The root entry (""), workspace links, bundled packages (inside their parent's tarball) and
  # entries with their own `resolved` (importNpmLock fetches those) need no tarball from here.
  needsTarball =
    path: module:
    path != ""
    && !(module.link or false)
    && !(module.inBundle or false)
    && !(module ? resolved)
    && runsHere module;

  tarballFor =
    path: module:
    if module ? integrity then
      fetchNpmTarball {
        # `name` is set for aliases (`npm:`); otherwise the path's last node_modules/ segment.
        name = module.name or (builtins.head (builtins.match ".*node_modules/(.*)" path));
        inherit (module) version integrity;
      }
    else
      throw "package-lock.json: '${path}' has neither `resolved` nor `integrity`, so it cannot be fetched reproducibly; regenerate the lock file with `npm install`.";
in
packageLock: lib.mapAttrs tarballFor (lib.filterAttrs needsTarball packageLock.packages)
