# exo_ipex, the Python binding and EXO's engine adapter (bindings/python), pure Python over
# ctypes. It finds libexocore through the store path of exo-ipex: that path becomes the default
# of EXO_IPEX_LIBRARY, which a user's EXO_IPEX_LIBRARY still overrides (docs/exo-integration.md).
{
  buildPythonPackage,
  python,
  exo-ipex,
  numpy,
  jinja2,
  pyzmq,
  pytestCheckHook,
  stdenv,
}:

buildPythonPackage {
  pname = "exo-ipex";
  inherit (exo-ipex) version src;
  # bindings/python has no pyproject.toml: the package is a directory, installed as one.
  pyproject = false;

  # --replace-fail: if _library.py stops reading EXO_IPEX_LIBRARY this way, the build says so
  # instead of shipping a binding that cannot find its library.
  postPatch = ''
    substituteInPlace bindings/python/exo_ipex/_library.py \
      --replace-fail 'env = os.environ.get("EXO_IPEX_LIBRARY")' \
                     'env = os.environ.get("EXO_IPEX_LIBRARY", "${exo-ipex}/lib/libexocore.so")'
  '';

  dontConfigure = true;
  dontBuild = true;
  installPhase = ''
    runHook preInstall
    mkdir -p $out/${python.sitePackages}
    cp -r bindings/python/exo_ipex $out/${python.sitePackages}/
    runHook postInstall
  '';

  # numpy and jinja2 for the engine adapter and chat templates; pyzmq for pipelines across
  # processes (imported only when a pipeline link is opened).
  dependencies = [
    numpy
    jinja2
    pyzmq
  ];

  pythonImportsCheck = [
    "exo_ipex"
    "exo_ipex.exo_engine"
  ];

  # The binding's own suite against the installed library: it reads the fixtures and the default
  # model from the source tree (tests/data, models/); a C compiler is there for test_layout.
  # Tests that need EXO's reference sources or a sanitizer build skip themselves.
  nativeCheckInputs = [
    pytestCheckHook
    stdenv.cc
  ];
  preCheck = ''
    export HOME=$TMPDIR
  '';
  pytestFlags = [
    "-p"
    "no:cacheprovider"
  ];
  enabledTestPaths = [ "bindings/python/tests" ];

  meta = removeAttrs exo-ipex.meta [ "mainProgram" ] // {
    description = "Python binding of exo-ipex and its EXO engine adapter";
  };
}
