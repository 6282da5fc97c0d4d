"""The ctypes structs match the C compiler's layout of exo.h (size and every member offset)."""
import ctypes
import ctypes as C
import os
import shutil
import subprocess

import pytest

from conftest import REPO
from exo_ipex import _capi


def test_api_version():
    """Structs are stamped with the public API's version, and the library implements that API."""
    assert _capi.EXO_API_VERSION == (1 << 16) | 0
    s = _capi.ShardOptions.new()
    assert (s.hdr.size, s.hdr.version) == (ctypes.sizeof(_capi.ShardOptions), _capi.EXO_API_VERSION)
    api = ctypes.c_uint32()
    text = _capi.lib().exo_version(ctypes.byref(api)).decode()
    assert api.value >> 16 == _capi.EXO_API_MAJOR and api.value & 0xffff >= _capi.EXO_API_MINOR
    assert text.count(".") == 2 and all(part.isdigit() for part in text.split(".")), text


def test_struct_layouts_match_c(tmp_path):
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        pytest.skip("no C compiler to compare layouts with")
    lines = ['#include <stddef.h>', '#include <stdio.h>', '#include "exo.h"', "int main(void) {"]
    expected = []
    for cls, cname in _capi.STRUCTS.items():
        lines.append(f'printf("%zu\\n", sizeof({cname}));')
        expected.append((cname, "sizeof", ctypes.sizeof(cls)))
        for field, *_ in cls._fields_:
            lines.append(f'printf("%zu\\n", offsetof({cname}, {field}));')
            expected.append((cname, field, getattr(cls, field).offset))
    lines.append("return 0; }")
    src = tmp_path / "layout.c"
    src.write_text("\n".join(lines))
    exe = tmp_path / "layout"
    subprocess.run([cc, "-std=gnu11", "-I", os.path.join(REPO, "core", "include"), "-I", os.path.join(REPO, "abi"),
                    str(src), "-o", str(exe)], check=True)
    got = [int(x) for x in subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout.split()]
    mismatches = [(c, f, py, cc_) for (c, f, py), cc_ in zip(expected, got) if py != cc_]
    assert len(got) == len(expected)
    assert not mismatches, mismatches


def test_option_defaults_match_the_c_initialisers(tmp_path):
    """new() of an options struct sets what its EXO_<NAME>_INIT sets: every number member of
    the C initialiser equals the Python default (a new non-zero default in exo.h must reach the
    binding, or Python callers get the zeroed meaning, e.g. log level ERROR)."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        pytest.skip("no C compiler to compare defaults with")
    inits = {_capi.RuntimeOptions: ("exo_runtime_options", "EXO_RUNTIME_OPTIONS_INIT"),
             _capi.ShardOptions: ("exo_shard_options", "EXO_SHARD_OPTIONS_INIT"),
             _capi.Sampling: ("exo_sampling", "EXO_SAMPLING_INIT"),
             _capi.GenerateOptions: ("exo_generate_options", "EXO_GENERATE_OPTIONS_INIT")}
    lines = ['#include <stdio.h>', '#include "exo.h"', "int main(void) {"]
    expected = []
    for cls, (cname, macro) in inits.items():
        var = cname + "_v"
        lines.append(f"{cname} {var} = {macro};")
        # The size is the layout's; of the version only the major must agree (the binding
        # stamps the version it was written for, which may lag a minor behind the header).
        lines.append(f'printf("%u %u\\n", {var}.hdr.size, {var}.hdr.version >> 16);')
        py = cls.new()
        expected.append((cname, "hdr", f"{py.hdr.size} {py.hdr.version >> 16}"))
        for field, ctype in cls._fields_:
            if ctype in (C.c_float, C.c_double):
                lines.append(f'printf("%.9g\\n", (double){var}.{field});')
                expected.append((cname, field, f"{getattr(py, field):.9g}"))
            elif ctype in (C.c_int32, C.c_uint32, C.c_int64, C.c_uint64):
                lines.append(f'printf("%lld\\n", (long long){var}.{field});')
                expected.append((cname, field, str(getattr(py, field))))
    lines.append("return 0; }")
    src = tmp_path / "defaults.c"
    src.write_text("\n".join(lines))
    exe = tmp_path / "defaults"
    subprocess.run([cc, "-std=gnu11", "-I", os.path.join(REPO, "core", "include"), "-I", os.path.join(REPO, "abi"),
                    str(src), "-o", str(exe)], check=True)
    got = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout.splitlines()
    assert len(got) == len(expected)
    mismatches = [(c, f, py, c_) for (c, f, py), c_ in zip(expected, got) if py != c_]
    assert not mismatches, mismatches
    assert _capi.RuntimeOptions.new().log_level == -1 and _capi.GenerateOptions.new().add_bos == -1


def c_struct_members(path):
    """{struct name: [member names]} of every `typedef struct NAME { ... } NAME;` in a header."""
    import re
    text = open(path).read()
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    out = {}
    for name, body in re.findall(r"typedef\s+struct\s+(\w+)\s*\{(.*?)\}\s*\1\s*;", text, flags=re.S):
        members = []
        for decl in body.split(";"):
            decl = decl.strip()
            if not decl:
                continue
            if "(" in decl:  # a function pointer member: (*name)(...)
                members.append(re.search(r"\(\s*\*\s*(\w+)\s*\)", decl).group(1))
                continue
            type_and_first, *rest = decl.split(",")  # uint32_t start_layer, end_layer
            for d in [type_and_first] + rest:
                members.append(re.search(r"(\w+)\s*(\[[^\]]*\]\s*)*$", d.strip()).group(1))
        out[name] = members
    return out


def test_every_public_struct_and_member_is_mirrored():
    """The layout test compares the members the binding knows; this one finds those it does
    not: a struct of exo.h without a ctypes twin, or a member the twin lacks (a new member can
    hide in trailing padding, where sizeof alone would not see it)."""
    c = c_struct_members(os.path.join(REPO, "core", "include", "exo.h"))
    c.update({k: v for k, v in c_struct_members(os.path.join(REPO, "abi", "exo_types.h")).items()
              if k in ("exo_device_report", "exo_device_telemetry")})
    assert {"exo_sampled_token", "exo_batch_entry", "exo_model_info", "exo_shard_options"} <= set(c)
    mirrored = {cname: [f for f, *_ in cls._fields_] for cls, cname in _capi.STRUCTS.items()}
    assert set(c) == set(mirrored), set(c) ^ set(mirrored)
    for name, members in c.items():
        assert mirrored[name] == members, name


def test_status_names_match_the_library():
    lib = _capi.lib()
    known = {c: lib.exo_status_name(c).decode() for c in range(-64, 64)}
    known = {c: n for c, n in known.items() if n != "EXO_ERR_UNKNOWN"}
    assert known == _capi.STATUS_NAMES
