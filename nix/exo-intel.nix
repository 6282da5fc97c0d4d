# exo-intel: EXO with the exo-ipex engine ("Intel IPEX"), made the way EXO's flake makes its
# variants (python/parts.nix, mkApp): EXO's Python environment, run by a writeShellApplication
# whose runtimeEnv names the directories EXO reads (EXO_DASHBOARD_DIR, EXO_RESOURCES_DIR), with
# EXO_IPEX_LIBRARY set beside them to this flake's libexocore.
#
# EXO at b5375f8 does not know the engine yet: docs/exo-ipex.patch is the change it needs
# (Backend.Ipex, IpexRingInstance, the bootstrap branch, placement, the info gatherer, the
# model cards). EXO's environment installs its own, unpatched `exo` package, so the patched
# sources go first on PYTHONPATH (ahead of site-packages, also for the runner subprocesses,
# which inherit it) and the patched resources replace EXO's model cards. The dashboard is EXO's
# prebuilt one: it runs the engine but labels its instances without the patch's "Intel IPEX".
{
  lib,
  stdenv,
  applyPatches,
  writeShellApplication,
  python313Packages,
  exo, # EXO's flake package (packages.<system>.exo: mkApp with passthru.venv)
  exoDashboard, # EXO's flake package packages.<system>.dashboard
  exoSrc, # EXO's source at the revision the patch applies to
  exo-ipex,
}:

let
  # EXO's environment is built on python313 from the same nixpkgs (this flake's exo input follows
  # its nixpkgs), so these pure-Python and extension packages match its interpreter.
  pyPkgs = python313Packages;
  exoPatched = applyPatches {
    name = "exo-src-with-ipex";
    src = exoSrc;
    patches = [ ../docs/exo-ipex.patch ];
  };
  pythonPath = lib.concatStringsSep ":" [
    "${exoPatched}/src"
    "${pyPkgs.exo-ipex}/${pyPkgs.python.sitePackages}"
    # pyzmq carries pipelines across processes; EXO's environment does not have it.
    "${pyPkgs.pyzmq}/${pyPkgs.python.sitePackages}"
  ];
  libPath = lib.makeLibraryPath [ stdenv.cc.cc.lib ];
in
writeShellApplication {
  name = "exo";
  runtimeEnv = {
    EXO_DASHBOARD_DIR = exoDashboard;
    EXO_RESOURCES_DIR = "${exoPatched}/resources";
    EXO_IPEX_LIBRARY = "${exo-ipex}/lib/libexocore.so";
  };
  # ZES_ENABLE_SYSMAN=1 gives Sysman telemetry (GPU memory, utilisation, power) on Level Zero
  # devices; the plugin sets it itself when unset, this only makes it visible. A caller's value wins.
  text = ''
    export ZES_ENABLE_SYSMAN="''${ZES_ENABLE_SYSMAN:-1}"
    export PYTHONPATH="${pythonPath}''${PYTHONPATH:+:$PYTHONPATH}"
    LD_LIBRARY_PATH="${libPath}''${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" exec ${exo.passthru.venv}/bin/exo "$@"
  '';
  passthru = {
    inherit exoPatched exo-ipex;
    inherit (exo.passthru) venv;
  };
  meta = {
    description = "EXO with the exo-ipex engine for Intel GPUs and CPUs";
    platforms = [ "x86_64-linux" ];
    mainProgram = "exo";
  };
}
