# checks.module: services.exo-intel evaluated in a minimal NixOS system. Evaluation fails on an
# undefined option or a type error; the values the module promises are compared here and a
# mismatch fails the check with the value found. Builds nothing of the system itself.
{
  pkgs,
  nixpkgs,
  module,
}:

let
  inherit (pkgs) lib;
  sys = nixpkgs.lib.nixosSystem {
    modules = [
      module
      {
        nixpkgs.pkgs = pkgs;
        services.exo-intel.enable = true;
        services.exo-intel.device = "level_zero:0";
        boot.loader.grub.enable = false;
        fileSystems."/".device = "none";
        system.stateVersion = "25.11";
      }
    ];
  };
  cfg = sys.config;
  service = cfg.systemd.services.exo-intel;
  expect = name: ok: value: if ok then "${name}: ok" else throw "checks.module: ${name} is ${builtins.toJSON value}";
  results = [
    (expect "ZES_ENABLE_SYSMAN" (service.environment.ZES_ENABLE_SYSMAN == "1") service.environment)
    (expect "EXO_DEVICE" (service.environment.EXO_DEVICE == "level_zero:0") service.environment)
    (expect "render group" (builtins.elem "render" cfg.users.users.exo.extraGroups) cfg.users.users.exo.extraGroups)
    (expect "SupplementaryGroups" (builtins.elem "render" service.serviceConfig.SupplementaryGroups)
      service.serviceConfig.SupplementaryGroups)
    (expect "intel-compute-runtime" (builtins.elem pkgs.intel-compute-runtime cfg.hardware.graphics.extraPackages)
      (map (p: p.name) cfg.hardware.graphics.extraPackages))
    (expect "level-zero" (builtins.elem pkgs.level-zero cfg.hardware.graphics.extraPackages)
      (map (p: p.name) cfg.hardware.graphics.extraPackages))
    (expect "ExecStart" (lib.hasPrefix "${pkgs.exo-intel}/bin/exo" service.serviceConfig.ExecStart)
      service.serviceConfig.ExecStart)
  ];
in
pkgs.writeText "exo-intel-module-check" (lib.concatLines results)
