# devShells.default: what scripts/install-deps.sh installs on Debian, from nixpkgs: the build
# inputs of exo-ipex (CMake, pkg-config, Level Zero, OpenCL, oneDNN, cJSON, check, PCRE2), PoCL
# and clinfo, and a Python with the binding's dependencies and pytest.
# Inside: cmake -S . -B build && cmake --build build -j, then build/bin/exo-run.
# The whole suite is `nix build .#exo-ipex` (doCheck): some test files name Debian paths
# (/usr/bin/python3, /etc/OpenCL/vendors/pocl.icd) that only the package's postPatch rewrites.
{ pkgs }:

pkgs.mkShell {
  inputsFrom = [ pkgs.exo-ipex ];
  packages = [
    pkgs.pocl
    pkgs.clinfo
    pkgs.spirv-tools
    pkgs.spirv-llvm-translator
    (pkgs.python3.withPackages (ps: [
      ps.numpy
      ps.jinja2
      ps.pyzmq
      ps.pytest
    ]))
  ];
  # The binding from this checkout; it finds build*/lib/libexocore.so itself (_library.py).
  shellHook = ''
    export PYTHONPATH="$PWD/bindings/python''${PYTHONPATH:+:$PYTHONPATH}"
  '';
}
