"""The ctypes structs match the C compiler's layout of exo.h (size and every member offset)."""
import ctypes
import os
import shutil
import subprocess

import pytest

from conftest import REPO
from exo_ipex import _capi


def test_abi_version():
    assert _capi.EXO_ABI_VERSION == (1 << 16) | 0
    s = _capi.ShardOptions.new()
    assert (s.hdr.size, s.hdr.version) == (ctypes.sizeof(_capi.ShardOptions), _capi.EXO_ABI_VERSION)


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
