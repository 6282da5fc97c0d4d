# exo-ipex: libexocore, the plugins (cpu_amx, opencl, level_zero), the tools, the headers, the
# pkg-config file, the CMake package and the default model, built with CMake as
# scripts/run.sh builds it, and checked with the CTest suite in the sandbox (doCheck).
{
  lib,
  stdenv,
  src,
  version,
  writeShellScript,
  cmake,
  pkg-config,
  python3,
  level-zero,
  ocl-icd,
  opencl-headers,
  oneDNN,
  cjson,
  check,
  pcre2,
  llvmPackages,
  spirv-llvm-translator,
  spirv-tools,
  pocl,
}:

let
  # The kernels are compiled to SPIR-V with the LLVM that pocl and spirv-llvm-translator are built
  # with in this nixpkgs, so the round-trip bitcode the tests hand to PoCL is one PoCL reads. The
  # unwrapped clang is used because the cc-wrapper adds host hardening flags
  # (-fzero-call-used-regs, -fstack-protector...) that a spir64 target rejects; the wrapper's
  # resource-root still gives it clang's own OpenCL headers.
  clangSpir = writeShellScript "clang-spir" ''
    exec ${llvmPackages.clang-unwrapped}/bin/clang -resource-dir=${llvmPackages.clang}/resource-root "$@"
  '';
  llvmSpirv = "${spirv-llvm-translator}/bin/llvm-spirv";
  spirvVal = "${spirv-tools}/bin/spirv-val";

  # What the suite's Python-driven tests import (tests/python, tests/heldout, tests/probe,
  # tests/run, tests/tokenizer_fuzz). The CMake files name Debian's /usr/bin/python3.
  testPython = python3.withPackages (ps: [
    ps.numpy
    ps.pytest
    ps.pyzmq
    ps.jinja2
  ]);
in
stdenv.mkDerivation {
  pname = "exo-ipex";
  inherit version src;

  nativeBuildInputs = [
    cmake
    pkg-config
  ];

  buildInputs = [
    level-zero
    ocl-icd
    opencl-headers
    oneDNN
    cjson
    check
    pcre2
  ];

  cmakeFlags = [
    # nixpkgs' CMake hook passes absolute install dirs; the project derives relative paths from
    # them (the relocatable pkg-config file, RPATH $ORIGIN/../lib), so give it the relative ones.
    (lib.cmakeFeature "CMAKE_INSTALL_BINDIR" "bin")
    (lib.cmakeFeature "CMAKE_INSTALL_LIBDIR" "lib")
    (lib.cmakeFeature "CMAKE_INSTALL_INCLUDEDIR" "include")
    (lib.cmakeFeature "CMAKE_INSTALL_DATADIR" "share")
    # The hook also turns the build RPATH off; the tests run from the build tree, where the build
    # mirrors the install layout and relies on it.
    (lib.cmakeBool "CMAKE_SKIP_BUILD_RPATH" false)
    (lib.cmakeBool "EXO_BUILD_TESTS" true)
    # find_program looks for Debian's names (clang-15, llvm-spirv-15); a cache entry set here
    # is used as is, which keeps the CMake files unchanged.
    (lib.cmakeFeature "EXO_CLANG_CL" "${clangSpir}")
    (lib.cmakeFeature "EXO_LLVM_SPIRV" llvmSpirv)
    (lib.cmakeFeature "EXO_SPIRV_VAL" spirvVal)
    (lib.cmakeFeature "EXO_L0_TEST_CLANG" "${clangSpir}")
    (lib.cmakeFeature "EXO_L0_TEST_LLVM_SPIRV" llvmSpirv)
    (lib.cmakeFeature "EXO_L0_TEST_SPIRV_VAL" spirvVal)
    (lib.cmakeFeature "EXO_HELDOUT_PYTHON" "${testPython.interpreter}")
  ];

  # The tests name Debian's interpreter and Debian's PoCL ICD file; in the sandbox they are the
  # store's. Only test files are touched: the library and the tools are built as in CI.
  postPatch = ''
    for f in tests/*/CMakeLists.txt; do
      substituteInPlace "$f" --replace-quiet /usr/bin/python3 ${testPython.interpreter}
    done
    substituteInPlace tests/CMakeLists.txt \
      --replace-fail /etc/OpenCL/vendors/pocl.icd ${pocl}/etc/OpenCL/vendors/pocl.icd
  '';

  # The plugins dlopen their loaders (libze_loader.so.1, libOpenCL.so.1) by name at probe time
  # and never link them, so nothing puts them in a RUNPATH: add them. level-zero's loader
  # carries /run/opengl-driver/lib (addDriverRunpath), where NixOS puts Intel's GPU driver, and
  # nixpkgs' ocl-icd reads /run/opengl-driver/etc/OpenCL/vendors, where it puts the ICD.
  postFixup = ''
    for p in $out/lib/exo/plugins/libexo-plugin-level_zero.so $out/lib/exo/plugins/libexo-plugin-opencl.so; do
      patchelf --add-rpath ${lib.makeLibraryPath [ level-zero ocl-icd ]} "$p"
    done
  '';

  doCheck = true;
  nativeCheckInputs = [
    testPython
    pocl
  ];
  # What stays out in the sandbox: the libFuzzer runs (label fuzz: a minute per parser and a
  # clang with compiler-rt's libFuzzer, which is CI's job in scripts/test.sh). Everything else
  # runs: GPU tests skip themselves (exit 77) where no device exists, the OpenCL ones run on
  # PoCL, the Level Zero ones on the project's test driver under the real loader.
  checkPhase = ''
    runHook preCheck
    export HOME=$TMPDIR
    ctest --output-on-failure -j$NIX_BUILD_CORES --timeout 900 -LE fuzz
    runHook postCheck
  '';

  meta = {
    description = "C runtime for LLM inference on Intel hardware (Level Zero, OpenCL, CPU), embedded by EXO";
    platforms = [ "x86_64-linux" ];
    mainProgram = "exo-run";
  };
}
