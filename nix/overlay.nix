# The overlay: exo-ipex, and exo_ipex in every Python package set (python3Packages.exo-ipex,
# python313Packages.exo-ipex, ...), the way llama.cpp's flake exposes llama-cpp through its
# overlay. exo-intel needs EXO's own flake and is added by the flake's overlays.intel.
{ src, version }:
final: prev: {
  exo-ipex = final.callPackage ./package.nix { inherit src version; };

  pythonPackagesExtensions = prev.pythonPackagesExtensions ++ [
    (pyfinal: _pyprev: {
      exo-ipex = pyfinal.callPackage ./python.nix { inherit (final) exo-ipex; };
    })
  ];
}
