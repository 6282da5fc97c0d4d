"""Finding libexocore: the one place that decides which shared library the binding loads.

Search order (first hit wins):
  1. EXO_IPEX_LIBRARY: a path to libexocore.so (or a directory holding it).
  2. An install: lib/ next to the package, walking up from it (prefix/lib/python3/dist-packages/
     exo_ipex -> prefix/lib/libexocore.so).
  3. A source tree: ../../build*/lib relative to bindings/python, newest build first. Builds
     instrumented with AddressSanitizer are skipped: loading one into a plain interpreter makes
     the ASan runtime end the process.
  4. ctypes.util.find_library("exocore") (the system's linker paths).
The core finds its plugins next to itself (lib/exo/plugins), so no plugin path is needed.
"""
import ctypes
import ctypes.util
import glob
import os

_LIB_NAMES = ("libexocore.so", "libexocore.so.0")


def _in_dir(directory):
    for name in _LIB_NAMES:
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            return path
    return None


def _is_sanitized(path):
    """True when the library links the ASan/UBSan runtime (its dynamic section names it)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return True
    return b"libasan.so" in data or b"libubsan.so" in data or b"__asan_init" in data


def candidates():
    """Every place the library could come from, in search order (for error messages too)."""
    out = []
    env = os.environ.get("EXO_IPEX_LIBRARY")
    if env:
        out.append(("EXO_IPEX_LIBRARY", _in_dir(env) if os.path.isdir(env) else env))
    here = os.path.dirname(os.path.abspath(__file__))
    # An install: walk up a few levels looking for lib/libexocore.so.
    d = here
    for _ in range(5):
        d = os.path.dirname(d)
        hit = _in_dir(os.path.join(d, "lib"))
        if hit:
            out.append(("install", hit))
            break
    # A source tree: bindings/python/exo_ipex -> repo root.
    root = os.path.dirname(os.path.dirname(os.path.dirname(here)))
    builds = []
    for lib_dir in glob.glob(os.path.join(root, "build*", "lib")):
        hit = _in_dir(lib_dir)
        if hit and not _is_sanitized(hit):
            builds.append(hit)
    builds.sort(key=lambda p: os.path.getmtime(p), reverse=True)
    out.extend(("build tree", b) for b in builds)
    system = ctypes.util.find_library("exocore")
    if system:
        out.append(("system", system))
    return out


def load():
    """Loads libexocore; raises OSError naming every place that was tried."""
    tried = []
    for origin, path in candidates():
        if not path:
            tried.append(f"{origin}: no libexocore.so there")
            continue
        try:
            return ctypes.CDLL(path), path
        except OSError as e:
            tried.append(f"{origin}: {path}: {e}")
            if origin == "EXO_IPEX_LIBRARY":
                break  # an explicit choice that fails is an error, not a hint
    raise OSError("exo_ipex: libexocore not found; set EXO_IPEX_LIBRARY to the built library. Tried: "
                  + ("; ".join(tried) if tried else "nothing (no build tree, no install, not on the linker path)"))
