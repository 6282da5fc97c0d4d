# NixOS module: services.exo-intel runs exo-intel (EXO with the exo-ipex engine) as a system
# service, with Intel's GPU runtime in place:
#  - hardware.graphics.extraPackages: intel-compute-runtime (the Level Zero driver and the
#    OpenCL ICD for Arc, Flex, Max and integrated Xe GPUs) and level-zero; NixOS links them into
#    /run/opengl-driver, which the Level Zero loader (addDriverRunpath) and nixpkgs' ocl-icd
#    (its vendors directory) read, so the ICD is registered without OCL_ICD_VENDORS;
#  - the service user in the `render` group (and `video`), which owns /dev/dri/renderD*;
#  - ZES_ENABLE_SYSMAN=1, so Sysman gives the GPU's memory, utilisation, temperature and power
#    (the memory is what EXO's placement sizes shards by on a discrete card).
# Which device runs is decided at run time, not here: the runtime ranks Level Zero, then OpenCL,
# then the CPU, and EXO offers the engine only on a node where an Intel device is usable.
# `self` is this flake: the package defaults to its exo-intel for the host's system.
self:
{
  config,
  lib,
  pkgs,
  ...
}:

let
  cfg = config.services.exo-intel;
  system = pkgs.stdenv.hostPlatform.system;
in
{
  options.services.exo-intel = {
    enable = lib.mkEnableOption "EXO with the exo-ipex engine for Intel GPUs and CPUs";

    package = lib.mkOption {
      type = lib.types.package;
      default = self.packages.${system}.exo-intel;
      defaultText = lib.literalExpression "exo-ipex.packages.\${system}.exo-intel";
      description = "The exo-intel package the service runs.";
    };

    user = lib.mkOption {
      type = lib.types.str;
      default = "exo";
      description = "The user the service runs as (created when left at the default).";
    };

    group = lib.mkOption {
      type = lib.types.str;
      default = "exo";
      description = "The service user's primary group (created when left at the default).";
    };

    dataDir = lib.mkOption {
      type = lib.types.path;
      default = "/var/lib/exo";
      description = "HOME of the service: EXO keeps its models under ~/.local/share/exo/models.";
    };

    device = lib.mkOption {
      type = lib.types.nullOr lib.types.str;
      default = null;
      example = "level_zero:0";
      description = "EXO_DEVICE: the device to run on (plugin[:index]); null picks the best-ranked one.";
    };

    extraArgs = lib.mkOption {
      type = lib.types.listOf lib.types.str;
      default = [ ];
      description = "Arguments passed to exo.";
    };

    environment = lib.mkOption {
      type = lib.types.attrsOf lib.types.str;
      default = { };
      example = {
        EXO_LOG_LEVEL = "info";
      };
      description = "Extra environment of the service (README.md, Environment).";
    };

    openFirewall = lib.mkOption {
      type = lib.types.bool;
      default = false;
      description = "Open EXO's API port (52415) in the firewall.";
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = system == "x86_64-linux";
        message = "services.exo-intel: exo-ipex is built for x86_64-linux only (Level Zero, AVX-512, AMX).";
      }
    ];

    hardware.graphics = {
      enable = true;
      extraPackages = [
        pkgs.intel-compute-runtime
        pkgs.level-zero
      ];
    };

    users.users = lib.mkIf (cfg.user == "exo") {
      exo = {
        isSystemUser = true;
        group = cfg.group;
        home = cfg.dataDir;
        createHome = true;
        extraGroups = [
          "render"
          "video"
        ];
      };
    };
    users.groups = lib.mkIf (cfg.group == "exo") { exo = { }; };

    systemd.services.exo-intel = {
      description = "EXO with the exo-ipex engine (Intel IPEX)";
      wantedBy = [ "multi-user.target" ];
      wants = [ "network-online.target" ];
      after = [ "network-online.target" ];
      environment = {
        HOME = cfg.dataDir;
        ZES_ENABLE_SYSMAN = "1";
      }
      // lib.optionalAttrs (cfg.device != null) { EXO_DEVICE = cfg.device; }
      // cfg.environment;
      serviceConfig = {
        ExecStart = lib.escapeShellArgs ([ (lib.getExe cfg.package) ] ++ cfg.extraArgs);
        User = cfg.user;
        Group = cfg.group;
        # Also for a user the module did not create: the render nodes need the group either way.
        SupplementaryGroups = [
          "render"
          "video"
        ];
        WorkingDirectory = cfg.dataDir;
        StateDirectory = lib.mkIf (cfg.dataDir == "/var/lib/exo") "exo";
        Restart = "on-failure";
        RestartSec = 5;
      };
    };

    networking.firewall.allowedTCPPorts = lib.mkIf cfg.openFirewall [ 52415 ];
  };
}
