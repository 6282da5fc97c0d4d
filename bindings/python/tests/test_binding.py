"""The binding over the C API: runtime, devices, logging, models, shards, sessions, generation,
errors."""
import json
import logging
import os
import subprocess

import numpy as np
import pytest

import exo_ipex
from conftest import LICENSES, TINY_LLAMA


def test_runtime_lists_plugins_and_devices(runtime):
    plugins = runtime.plugins()
    assert any(p.name == "cpu_amx" and p.state == "loaded" for p in plugins)
    devices = runtime.devices()
    assert devices and [d.index for d in devices] == list(range(len(devices)))
    cpu = next(d for d in devices if d.plugin == "cpu_amx")
    assert cpu.report.type == "cpu" and cpu.report.memory_total > 0 and cpu.report.name
    selected, why = runtime.selected_device()
    assert selected.selected and why
    assert runtime.find_device("cpu_amx:0").plugin == "cpu_amx"


def test_telemetry_reads_the_cpu(runtime):
    t = runtime.telemetry(runtime.find_device("cpu_amx"))
    assert t.memory_free is None or t.memory_free > 0


def test_log_messages_reach_python_logging(caplog):
    with caplog.at_level(logging.DEBUG, logger="exo_ipex"):
        rt = exo_ipex.Runtime(log_level=3)
        rt.close()
    names = {r.name for r in caplog.records}
    assert any(n.startswith("exo_ipex.") for n in names), names


def test_unknown_device_raises_not_found(runtime):
    with pytest.raises(exo_ipex.NotFound) as e:
        runtime.find_device("no_such_plugin:3")
    assert e.value.name == "EXO_ERR_NOT_FOUND"


def test_device_index_overflow_is_refused_not_wrapped_to_device_0(runtime):
    with pytest.raises(exo_ipex.InvalidArgument) as e:
        runtime.find_device("cpu_amx:4294967296")
    assert "the index 4294967296 is out of range" in str(e.value)


def test_nul_in_a_string_argument_is_refused_never_cut(tiny_shard, runtime):
    session = tiny_shard.session()
    with pytest.raises(ValueError, match="prompt contains a NUL character at offset 1"):
        session.generate("a\0b", max_tokens=1)
    with pytest.raises(ValueError, match="stop string contains a NUL"):
        session.generate("ab", max_tokens=1, stop=["x\0y"])
    with pytest.raises(ValueError, match="device contains a NUL"):
        runtime.find_device("cpu_amx\0:1")
    with pytest.raises(ValueError, match="model path contains a NUL"):
        runtime.open_model(TINY_LLAMA + "\0/elsewhere")
    # tokenize hands the C API a length: the NUL is text like any other, nothing after it is lost
    m = runtime.open_model(TINY_LLAMA)
    assert m.detokenize(m.tokenize("a\0b", add_bos=0)) == "a\0b"


def test_model_info_and_tokenizer_round_trip(runtime):
    m = runtime.open_model(TINY_LLAMA)
    assert (m.info.architecture, m.info.n_layers, m.info.hidden_size, m.info.vocab_size) == ("llama", 4, 64, 512)
    # tokenizer_config names a BOS and says nothing else: the tokenizer's default is to add it
    assert m.info.has_tokenizer and m.info.adds_bos and m.info.bos_token_id == 0
    gold = json.load(open(os.path.join(TINY_LLAMA, "golden.json")))["prompts"][0]
    assert gold["ids"][0] == 0
    assert m.tokenize(gold["text"]) == gold["ids"]  # add_bos=-1: as the tokenizer says
    assert m.tokenize(gold["text"], add_bos=None) == gold["ids"]
    assert m.tokenize(gold["text"], add_bos=True) == m.tokenize(gold["text"], add_bos=1) == gold["ids"]
    assert m.tokenize(gold["text"], add_bos=False) == m.tokenize(gold["text"], add_bos=0) == gold["ids"][1:]
    assert m.detokenize(gold["ids"][1:]) == gold["text"]
    with pytest.raises(exo_ipex.InvalidArgument):
        m.tokenize("x", add_bos=2)


def test_long_text_tokenizes_past_the_first_guess(runtime):
    m = runtime.open_model(TINY_LLAMA)
    text = "ab " * 3000  # more tokens than the binding's first buffer (a quarter of the bytes)
    ids = m.tokenize(text, add_bos=0)
    assert len(ids) > len(text.encode()) // 4 + 8
    assert m.detokenize(ids) == text


def test_tokenize_says_how_many_ids_a_small_buffer_needs(runtime):
    import ctypes
    m = runtime.open_model(TINY_LLAMA)
    data = b"Hello world, hello tokenizer"
    need = len(m.tokenize(data, add_bos=1))
    ids, n = (ctypes.c_int32 * 2)(), ctypes.c_size_t()
    st = exo_ipex._capi.lib().exo_model_tokenize(m.handle, data, len(data), 1, ids, 2, ctypes.byref(n))
    assert exo_ipex._capi.STATUS_NAMES[st] == "EXO_ERR_BUFFER_TOO_SMALL" and n.value == need
    assert str(need) in m.last_error()


def test_bad_model_dir_raises_with_detail(runtime, tmp_path):
    with pytest.raises(exo_ipex.ExoError) as e:
        runtime.open_model(tmp_path / "missing")
    assert e.value.name.startswith("EXO_ERR_") and "missing" in str(e.value)
    (tmp_path / "config.json").write_text("{ not json")
    with pytest.raises(exo_ipex.ExoError) as e:
        runtime.open_model(tmp_path)
    assert e.value.detail


@pytest.mark.parametrize("start,end", [(3, 2), (0, 9), (2, 2)])
def test_wrong_shard_range_raises_invalid_argument(runtime, start, end):
    m = runtime.open_model(TINY_LLAMA)
    with pytest.raises(exo_ipex.InvalidArgument) as e:
        m.load_shard(start, end)
    assert e.value.status == -1 and e.value.detail


def test_shard_load_reports_progress_and_can_be_cancelled(runtime):
    m = runtime.open_model(TINY_LLAMA)
    seen = []
    sh = m.load_shard(1, 3, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 2), (2, 2)]
    assert (sh.info.start_layer, sh.info.end_layer, sh.info.embeds, sh.info.has_head) == (1, 3, False, False)
    with pytest.raises(exo_ipex.Aborted):
        m.load_shard(progress=lambda done, total: True)

    def boom(done, total):
        raise KeyError("from the callback")
    with pytest.raises(KeyError):
        m.load_shard(progress=boom)


def test_forward_matches_golden_logits(tiny_shard):
    with exo_ipex.TensorFile(os.path.join(TINY_LLAMA, "golden.safetensors")) as f:
        ids, ref = f.get("p0.ids"), f.get("p0.logits")
    s = tiny_shard.session()
    logits = s.forward_tokens(ids)
    assert logits.shape == ref.shape and s.position == len(ids)
    assert np.linalg.norm(logits - ref) / np.linalg.norm(ref) < 1e-4
    s.reset()
    last = s.forward_tokens(list(ids), last_only=True)
    assert last.shape == (1, ref.shape[1]) and np.allclose(last[0], logits[-1], rtol=1e-5, atol=1e-5)
    s.truncate(3)
    assert s.position == 3


def test_next_token_is_the_logits_argmax(tiny_shard):
    a, g = tiny_shard.session(), tiny_shard.session()
    ids = [0, 5, 6, 9]
    for _ in range(6):
        want = int(np.argmax(a.forward_tokens(ids, last_only=True)[0]))
        got = g.next_token(ids)
        assert got == want and g.position == a.position
        ids = [got]


def test_hidden_states_through_a_middle_shard(runtime):
    m = runtime.open_model(TINY_LLAMA)
    with exo_ipex.TensorFile(os.path.join(TINY_LLAMA, "golden.safetensors")) as f:
        h1, h3 = f.get("p1.hidden.1"), f.get("p1.hidden.3")
    s = m.load_shard(1, 3).session()
    out = s.forward_hidden(h1)
    assert out.shape == h3.shape
    assert np.linalg.norm(out - h3) / np.linalg.norm(h3) < 1e-4
    with pytest.raises(exo_ipex.InvalidArgument):
        s.forward_hidden(np.zeros((2, 63), np.float32))


def _exo_run_text(exo_run, model, prompt, n):
    out = subprocess.run([exo_run, "--model", model, "--temperature", "0", "-n", str(n), "--json", "-p", prompt],
                         check=True, capture_output=True, text=True).stdout
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return "".join(e.get("text", "") for e in events if e.get("type") != "stats"), events[-1]


def test_generate_streams_exo_runs_greedy_text(tiny_shard, exo_run):
    prompt = "The quick brown fox jumps over the lazy dog."
    expect, stats = _exo_run_text(exo_run, TINY_LLAMA, prompt, 32)
    g = tiny_shard.session().generate(prompt, max_tokens=32, temperature=0.0)
    pieces = list(g)
    assert "".join(p.text for p in pieces) == expect
    assert all(isinstance(p.token, int) for p in pieces)
    assert g.stats.generation_tokens == 32 and g.stats.finish_reason == "length"
    assert g.stats.prompt_tokens == stats["prompt_tokens"]


def test_generate_golden_text_of_the_default_model(runtime):
    gold = json.load(open(os.path.join(LICENSES, "golden.json")))["prompts"][0]
    m = runtime.open_model(LICENSES)
    # golden ids start with BOS (0), which this tokenizer adds by default (add_bos=-1)
    assert m.info.adds_bos and m.tokenize(gold["text"]) == gold["ids"]
    text = m.load_shard().session().generate(gold["text"], max_tokens=len(gold["greedy"]), temperature=0.0).text()
    assert text == gold["greedy_text"]


def test_generate_can_be_cancelled(tiny_shard):
    g = tiny_shard.session().generate("The quick", max_tokens=400, temperature=0.0, ignore_eos=True)
    got = []
    for p in g:
        got.append(p)
        if len(got) == 3:
            g.cancel()
    assert g.stats.finish_reason == "cancelled" and g.stats.generation_tokens < 400


def test_closing_a_session_stops_its_generation(tiny_shard):
    s = tiny_shard.session()
    g = s.generate("The quick", max_tokens=100000, temperature=0.0, ignore_eos=True)
    next(g)
    s.close()
    assert g.closed and s.closed


def test_generation_errors_raise(runtime):
    m = runtime.open_model(TINY_LLAMA)
    s = m.load_shard(0, 2).session()
    with pytest.raises(exo_ipex.InvalidArgument) as e:
        s.generate("hi", max_tokens=2).text()
    assert "whole-model" in e.value.detail
    with pytest.raises(exo_ipex.InvalidArgument):
        exo_ipex.Generation(s, "x", no_such_knob=1)


def test_closed_objects_refuse_use(runtime):
    m = runtime.open_model(TINY_LLAMA)
    sh = m.load_shard()
    m.close()
    assert sh.closed
    with pytest.raises(ValueError):
        sh.session()


def test_binding_works_without_numpy():
    import sys
    from conftest import subprocess_env
    code = ("import sys; sys.modules['numpy'] = None\n"
            "import exo_ipex\n"
            f"rt = exo_ipex.Runtime(); m = rt.open_model({TINY_LLAMA!r})\n"
            "data, shape, dtype = m.load_shard(0, 2).session().forward_tokens([0, 5, 6])\n"
            "assert shape == (3, 64) and dtype == 'float32' and len(data) == 3 * 64 * 4\n"
            "_, shape, _ = m.load_shard(2, 4).session().forward_hidden(data, last_only=True)\n"
            "assert shape == (1, 512), shape\n"
            "print('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], env=subprocess_env(), capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
