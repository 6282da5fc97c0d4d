"""Repeated load / use / close cycles do not leak: resident memory stays bounded."""
import ctypes
import gc
import os

import exo_ipex
from conftest import LICENSES, TINY_LLAMA
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


def cycle():
    rt = exo_ipex.Runtime()
    m = rt.open_model(LICENSES)  # 14 MB of weights: a leaked shard would show
    sh = m.load_shard(progress=lambda a, b: None)
    s = sh.session()
    s.forward_tokens([0, 5, 6, 7])
    s.reset()
    assert len(list(s.generate("Hello", max_tokens=4, temperature=0.0))) >= 1
    rt.close()  # closes the model, shard and session first
    b = IpexBuilder(TINY_LLAMA)
    e = b.build()
    e.submit(TextGenerationTask("t", prompt="Hello", max_output_tokens=3, temperature=0.0))
    while not any(isinstance(ev, FinishedResponse) for _, ev in e.step()):
        pass
    e.close()
    b.close()


def test_repeated_load_and_close_does_not_grow():
    for _ in range(4):  # warm: allocator pools, plugin libraries, lazy imports
        cycle()
    gc.collect()
    before, fds = rss_bytes(), open_fds()
    for _ in range(20):
        cycle()
    gc.collect()
    grown = rss_bytes() - before
    assert grown < 4 << 20, f"resident memory grew by {grown / 2**20:.1f} MiB over 20 cycles"
    # Weights are mapped from the page cache, so a leaked shard barely shows in RSS: check
    # that nothing of the models stays mapped and no descriptor stays open.
    assert mappings_of(LICENSES) == 0 and mappings_of(TINY_LLAMA) == 0
    assert open_fds() <= fds
