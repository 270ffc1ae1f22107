{
  description = "nsh, the Nix Scheduler Hook: runs each Nix build as its own Slurm job";

  # nixpkgs-unstable, not nixos-unstable: the flake's nixpkgs only builds the package (the NixOS
  # module builds it with the system's own pkgs). flake.lock pins one revision of it.
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixpkgs-unstable";

  outputs =
    { self, nixpkgs }:
    let
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in
    {
      packages = forAllSystems (
        pkgs:
        let
          package = pkgs.callPackage ./nix/package.nix { };
        in
        {
          nix-scheduler-hook = package;
          default = package;
        }
      );

      # Replaces nixpkgs' own `nix-scheduler-hook` (the C++ hook this one supersedes: same `nsh`
      # binary, same nsh.conf).
      overlays.default = final: _prev: {
        nix-scheduler-hook = final.callPackage ./nix/package.nix { };
      };

      nixosModules.default = import ./nix/module.nix;

      checks = forAllSystems (
        pkgs:
        let
          package = self.packages.${pkgs.stdenv.hostPlatform.system}.nix-scheduler-hook;
        in
        {
          inherit package;
          unit-tests = package.passthru.tests.unit;
        }
      );

      devShells = forAllSystems (pkgs: {
        default = pkgs.mkShell {
          packages = [
            pkgs.nodejs_22
            pkgs.openssh
          ];
          shellHook = ''
            echo "nsh: npm ci, then npx vitest run --project unit (e2e tests need root and the local cluster: npx vitest run --project e2e)"
          '';
        };
      });
    };
}
