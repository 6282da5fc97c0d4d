"""Repeated load / use / close cycles do not leak: resident memory stays bounded, and in a
sanitizer build LeakSanitizer finds nothing of the library's left allocated."""
import ctypes
import gc
import os
import re
import subprocess
import sys

import pytest

import exo_ipex
from conftest import HERE, LICENSES, REPO, TINY_LLAMA, subprocess_env
from exo_ipex.exo_engine import FinishedResponse, IpexBuilder, TextGenerationTask


def rss_bytes():
    """Resident memory after handing freed heap back to the OS: without malloc_trim, glibc keeps
    freed blocks (per-thread arenas of earlier tests' worker threads) and RSS says little."""
    gc.collect()
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except AttributeError:  # not glibc
        pass
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def mappings_of(directory):
    """Mapped regions of files under directory (a model left open keeps its weights mapped)."""
    with open("/proc/self/maps") as f:
        return sum(1 for line in f if directory in line)


def open_fds():
    return len(os.listdir("/proc/self/fd"))


def asan_loaded():
    """True when the ASan runtime is in this process (CTest preloads it in sanitizer builds)."""
    with open("/proc/self/maps") as f:
        return "libasan" in f.read()


def cycle():
    rt = exo_ipex.Runtime()
    m = rt.open_model(LICENSES)  # 14 MB of weights: a leaked shard would show
    sh = m.load_shard(progress=lambda a, b: None)
    s = sh.session()
    s.forward_tokens([0, 5, 6, 7])
    s.reset()
    assert len(list(s.generate("Hello", max_tokens=4, temperature=0.0))) >= 1
    rt.close()  # closes the model, shard and session first
    b = IpexBuilder(model_dir=TINY_LLAMA)
    e = b.build()
    e.submit(TextGenerationTask("t", prompt="Hello", max_output_tokens=3, temperature=0.0))
    while not any(isinstance(ev, FinishedResponse) for _, ev in e.step()):
        pass
    e.close()  # as EXO: the engine's close frees the builder's shard, model and runtime too


def test_repeated_load_and_close_does_not_grow():
    for _ in range(4):  # warm: allocator pools, plugin libraries, lazy imports
        cycle()
    gc.collect()
    before, fds = rss_bytes(), open_fds()
    for _ in range(20):
        cycle()
    gc.collect()
    grown = rss_bytes() - before
    if not asan_loaded():  # ASan's quarantine keeps freed memory resident by design
        assert grown < 4 << 20, f"resident memory grew by {grown / 2**20:.1f} MiB over 20 cycles"
    # Weights are mapped from the page cache, so a leaked shard barely shows in RSS: check
    # that nothing of the models stays mapped and no descriptor stays open.
    assert mappings_of(LICENSES) == 0 and mappings_of(TINY_LLAMA) == 0
    assert open_fds() <= fds


def library_leaks(report):
    """The leak reports of LeakSanitizer's output whose allocation stack passes through the
    library or its plugins (the interpreter and numpy leak by design at exit; not ours)."""
    ours = re.compile(re.escape(REPO) + r"/(core|plugins)/|libexocore|libexo-plugin")
    blocks = re.split(r"\n\s*\n", report)
    return [b for b in blocks if re.search(r"(Direct|Indirect) leak", b) and ours.search(b)]


def run_under_leak_sanitizer(code):
    env = subprocess_env()
    env["ASAN_OPTIONS"] = "detect_leaks=1"
    env["LSAN_OPTIONS"] = "exitcode=0"  # the verdict is ours: only the library's leaks count
    run = subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {HERE!r})\n" + code], env=env,
                         capture_output=True, text=True)
    assert run.returncode == 0 and "LeakSanitizer has encountered a fatal error" not in run.stderr, run.stderr
    return library_leaks(run.stderr)


def test_nothing_of_the_library_leaks_under_leak_sanitizer():
    if not asan_loaded():
        pytest.skip("not a sanitizer build (configure with -DEXO_SANITIZE=ON)")
    # The detector first: a sampler handle nobody frees must show up.
    leaked = run_under_leak_sanitizer(
        "import ctypes, exo_ipex\nfrom exo_ipex import _capi, sampler\n"
        "s, keep = sampler.make_sampling(); h = ctypes.c_void_p()\n"
        "assert _capi.lib().exo_sampler_create(ctypes.byref(s), 16, ctypes.byref(h)) == 0\n")
    assert any("exo_sampler_create" in b or "libexocore" in b for b in leaked)
    leaks = run_under_leak_sanitizer("import test_leaks\nfor _ in range(3): test_leaks.cycle()\n")
    assert not leaks, "\n\n".join(leaks[:5])


_CYCLE_SCRIPT = """
import gc, sys
sys.path.insert(0, {pkg!r})
import exo_ipex
gc.disable()
class Holder:
    pass
h = Holder()
h.rt = exo_ipex.Runtime()
h.model = h.rt.open_model({model!r})
h.shard = h.model.load_shard()
h.session = h.shard.session()
h.self = h  # a cycle, as a failed test's traceback frames make one
order = [h.rt, h.model, h.shard, h.session] if {parents_first!r} else [h.session, h.shard, h.model, h.rt]
h.keep = order
del h, order
gc.collect()
print("collected")
"""


@pytest.mark.parametrize("parents_first", [True, False])
def test_handles_collected_in_a_cycle_free_children_before_parents(parents_first):
    """Handles left in a reference cycle (a runner that raised: its frames hold the engine) are
    finalized by the garbage collector in any order, with `_children` weak references already
    cleared: the C objects must still go children first, not segfault on a freed runtime."""
    script = _CYCLE_SCRIPT.format(pkg=os.path.dirname(HERE), model=TINY_LLAMA, parents_first=parents_first)
    r = subprocess.run([sys.executable, "-c", script], env=subprocess_env(), capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0 and "collected" in r.stdout, (r.returncode, r.stderr[-2000:])
