# NixOS module: makes nsh the nix-daemon's build hook and writes /etc/nix/nsh.conf.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  inherit (lib) mkEnableOption mkIf mkOption types;

  cfg = config.services.nix-scheduler-hook;
  renderConf = import ./render-conf.nix;

  settingValue = types.oneOf [
    types.bool
    types.int
    types.str
    (types.listOf types.str)
    (types.attrsOf types.anything)
  ];

  conf =
    cfg.settings
    // lib.optionalAttrs (cfg.tokenFile != null) { slurm-jwt-token-file = cfg.tokenFile; };

  isStorePath = p: builtins.isString p && lib.hasPrefix "${builtins.storeDir}/" p;
in
{
  options.services.nix-scheduler-hook = {
    enable = mkEnableOption "nsh, the Nix build hook that runs each build as its own Slurm job";

    package = mkOption {
      type = types.package;
      # Not `pkgs.nix-scheduler-hook`: without this flake's overlay that is a different program.
      default = pkgs.callPackage ./package.nix { };
      defaultText = lib.literalMD "this flake's `nix-scheduler-hook` package";
      description = "The nsh package; its `bin/nsh` becomes `nix.settings.build-hook`.";
    };

    settings = mkOption {
      type = types.attrsOf (types.nullOr settingValue);
      default = { };
      example = {
        slurm-api-host = "slurm-head";
        slurm-state-dir = "/home/nixbuild/.local/state/nsh";
        system-features = [
          "nsh"
          "big-parallel"
        ];
        slurm-extra-submission-params = {
          partition = "nix";
        };
      };
      description = ''
        nsh.conf settings, written to /etc/nix/nsh.conf: lists are space-separated, bools
        true/false, attrsets (slurm-extra-submission-params) JSON; null leaves a setting out.
        The file is in the world-readable Nix store: never put the Slurm token here, use
        `tokenFile`.
      '';
    };

    tokenFile = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "/run/secrets/slurm-jwt";
      description = ''
        File holding the slurmrestd JWT (`scontrol token` output is accepted), written to nsh.conf
        as `slurm-jwt-token-file`. A path string outside the Nix store, readable by root (the
        nix-daemon runs the hook as root); the file itself is never copied into the store.
      '';
    };
  };

  config = mkIf cfg.enable {
    assertions = [
      {
        assertion = !(cfg.settings ? slurm-jwt-token);
        message = "services.nix-scheduler-hook.settings.slurm-jwt-token would put the Slurm JWT into the world-readable Nix store; set services.nix-scheduler-hook.tokenFile to a file outside the store (e.g. /run/secrets/slurm-jwt) instead.";
      }
      {
        assertion = !(isStorePath (conf.slurm-jwt-token-file or null));
        message = "The Slurm token file ${toString (conf.slurm-jwt-token-file or "")} is in the Nix store, which everyone can read; set services.nix-scheduler-hook.tokenFile to a file outside the store, as a string (\"/run/secrets/slurm-jwt\", not ./slurm-jwt).";
      }
      {
        assertion = cfg.tokenFile == null || lib.hasPrefix "/" cfg.tokenFile;
        message = "services.nix-scheduler-hook.tokenFile must be an absolute path (got '${toString cfg.tokenFile}').";
      }
      {
        assertion = !(cfg.tokenFile != null && cfg.settings ? slurm-jwt-token-file);
        message = "Set either services.nix-scheduler-hook.tokenFile or settings.slurm-jwt-token-file, not both.";
      }
    ];

    environment.etc."nix/nsh.conf".text =
      "# Written by the NixOS module services.nix-scheduler-hook; change the NixOS configuration instead.\n"
      + renderConf conf;

    # Nix before 2.34 may ignore build-hook from nix.conf (NixOS/nix#15083); pass
    # `--option build-hook` there.
    nix.settings.build-hook = lib.getExe cfg.package;

    # For `nsh jobs`, `nsh cancel --orphans` and `nsh --dry-run`.
    environment.systemPackages = [ cfg.package ];
  };
}
