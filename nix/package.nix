# nsh, the Nix Scheduler Hook. Attribute `nix-scheduler-hook`: nixpkgs' `nsh` is an unrelated shell.
{
  lib,
  buildNpmPackage,
  importNpmLock,
  callPackage,
  makeWrapper,
  nodejs_22,
  openssh,
}:
let
  root = ../.;
  packageJson = lib.importJSON (root + "/package.json");
  packageLock = lib.importJSON (root + "/package-lock.json");

  sourceWith =
    extra:
    lib.fileset.toSource {
      inherit root;
      fileset = lib.fileset.unions (
        [
          (root + "/package.json")
          (root + "/package-lock.json")
          (root + "/tsconfig.json")
          (root + "/scripts")
          (root + "/src")
          (root + "/nsh.conf.example")
        ]
        ++ extra
      );
    };

  # Shared by the package and its unit tests: one set of dependencies, from the lock as committed.
  npmArgs = {
    version = packageJson.version;
    nodejs = nodejs_22;
    npmDeps = importNpmLock {
      package = packageJson;
      inherit packageLock;
      packageSourceOverrides = callPackage ./npm-lock-sources.nix { nodejs = nodejs_22; } packageLock;
    };
    npmConfigHook = importNpmLock.npmConfigHook;
    # No dependency needs its install script: esbuild's binary comes from its platform package,
    # and ssh2's optional native addon (cpu-features) is left out of the bundle on purpose.
    npmRebuildFlags = [ "--ignore-scripts" ];
  };

  nix-scheduler-hook = buildNpmPackage (
    npmArgs
    // {
      pname = "nix-scheduler-hook";
      src = sourceWith [ ];
      nativeBuildInputs = [ makeWrapper ];

      # `npm run build` (the default npmBuildScript) writes the single bundle dist/nsh.mjs, which
      # needs no node_modules at run time; the wrapper replaces bin/nsh's node lookup.
      installPhase = ''
        runHook preInstall
        install -Dm444 dist/nsh.mjs "$out/lib/nix-scheduler-hook/nsh.mjs"
        install -Dm444 nsh.conf.example "$out/share/doc/nix-scheduler-hook/nsh.conf.example"
        makeWrapper ${nodejs_22}/bin/node "$out/bin/nsh" \
          --add-flags "$out/lib/nix-scheduler-hook/nsh.mjs" \
          --prefix PATH : ${lib.makeBinPath [ openssh ]}
        runHook postInstall
      '';

      passthru.tests.unit = buildNpmPackage (
        npmArgs
        // {
          pname = "nix-scheduler-hook-unit-tests";
          src = sourceWith [
            (root + "/test")
            (root + "/vitest.config.ts")
          ];
          # Tests resolve hosts with `ssh -G`.
          nativeBuildInputs = [ openssh ];
          buildPhase = ''
            runHook preBuild
            npx vitest run --project unit
            runHook postBuild
          '';
          installPhase = ''
            touch "$out"
          '';
        }
      );

      meta = {
        description = packageJson.description;
        license = lib.licenses.mit;
        mainProgram = "nsh";
        platforms = lib.platforms.linux;
      };
    }
  );
in
nix-scheduler-hook
