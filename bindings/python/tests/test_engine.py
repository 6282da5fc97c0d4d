"""EXO's engine shapes: the Builder/Engine pair (whole model, batched requests, cancellation,
a two-process pipeline over ZeroMQ) and the old-era infer_tensor interface."""
import asyncio
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import exo_ipex
from conftest import HERE, LICENSES, TINY_LLAMA, free_tcp_ports, subprocess_env
from exo_ipex.exo_engine import (CancelledResponse, ErrorChunk, FinishedResponse, IpexBuilder, TextGenerationTask,
                                 TokenChunk)
from exo_ipex.legacy_engine import IpexInferenceEngine, Shard

PROMPT = "The quick brown fox jumps over the lazy dog."


SEEDED = {"temperature": 1.0, "top_k": 50, "seed": 7}  # exo-run: --temperature 1 --top-k 50 --seed 7


def exo_run_greedy(exo_run, model, prompt, n, sampling=("--temperature", "0")):
    out = subprocess.run([exo_run, "--model", model, *sampling, "-n", str(n), "--json", "-p", prompt],
                         check=True, capture_output=True, text=True).stdout
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    toks = [e for e in events if e.get("type") != "stats"]
    return "".join(e["text"] for e in toks), [e["token"] for e in toks if e["token"] >= 0], events[-1]


def run_until_done(engine, task_ids):
    chunks = {t: [] for t in task_ids}
    ends = {}
    order = []
    while len(ends) < len(task_ids):
        for tid, ev in engine.step():
            if isinstance(ev, (TokenChunk, ErrorChunk)):
                chunks[tid].append(ev)
                order.append(tid)
            else:
                ends[tid] = ev
    return chunks, ends, order


@pytest.fixture(scope="module")
def whole_engine():
    b = IpexBuilder(model_dir=TINY_LLAMA)
    b.connect()
    progress = list(b.load())
    assert [(p.layers_loaded, p.total) for p in progress] == [(i, 4) for i in range(1, 5)]
    engine = b.build()
    engine.warmup()
    yield engine
    engine.close()
    b.close()


def test_engine_reproduces_exo_runs_greedy_text(whole_engine, exo_run):
    expect_text, expect_tokens, stats = exo_run_greedy(exo_run, TINY_LLAMA, PROMPT, 32)
    whole_engine.submit(TextGenerationTask("a", prompt=PROMPT, max_output_tokens=32, temperature=0.0))
    chunks, ends, _ = run_until_done(whole_engine, ["a"])
    assert isinstance(ends["a"], FinishedResponse)
    got = chunks["a"]
    assert [c.token_id for c in got if c.token_id >= 0] == expect_tokens
    assert "".join(c.text for c in got) == expect_text
    last = got[-1]
    assert last.finish_reason == "length" and last.stats.generation_tokens == 32
    assert last.stats.prompt_tokens == stats["prompt_tokens"] and last.stats.peak_memory_usage.in_bytes > 0


def test_tensor_parallel_engine_reproduces_exo_runs_greedy_text(exo_run):
    """The adapter with tensor_parallel=2 over the CPU and PoCL's view of it (the pair the
    Python placement tests use): every layer split, the ranks on their own host threads, the
    same greedy text as exo-run on one device."""
    try:
        b = IpexBuilder(model_dir=TINY_LLAMA, devices="cpu_amx:0,opencl:0", tensor_parallel=2)
        b.connect()
        list(b.load())
    except exo_ipex.ExoError as e:
        if "opencl" in str(e):
            pytest.skip(f"no OpenCL device (PoCL) for the second rank: {e}")
        raise
    engine = b.build()
    try:
        assert b.shard.info.n_parts == 2 + 4 * 4
        expect_text, expect_tokens, _ = exo_run_greedy(exo_run, TINY_LLAMA, PROMPT, 16)
        engine.submit(TextGenerationTask("tp", prompt=PROMPT, max_output_tokens=16, temperature=0.0))
        chunks, ends, _ = run_until_done(engine, ["tp"])
        assert isinstance(ends["tp"], FinishedResponse)
        assert [c.token_id for c in chunks["tp"] if c.token_id >= 0] == expect_tokens
        assert "".join(c.text for c in chunks["tp"]) == expect_text
    finally:
        engine.close()
        b.close()
    with pytest.raises(ValueError, match="pins one"):
        IpexBuilder(model_dir=TINY_LLAMA, device="cpu_amx:0", tensor_parallel=2)


def test_engine_on_the_default_model_gives_the_golden_text():
    gold = json.load(open(os.path.join(LICENSES, "golden.json")))["prompts"][0]
    b = IpexBuilder(model_dir=LICENSES)
    engine = b.build()
    engine.submit(TextGenerationTask("g", prompt_tokens=gold["ids"], max_output_tokens=len(gold["greedy"]),
                                     temperature=0.0))
    chunks, _, _ = run_until_done(engine, ["g"])
    assert [c.token_id for c in chunks["g"] if c.token_id >= 0] == gold["greedy"]
    assert "".join(c.text for c in chunks["g"]) == gold["greedy_text"]
    b.close()


def test_batched_requests_step_round_robin_and_match_alone(whole_engine, monkeypatch):
    prompts = {"r0": PROMPT, "r1": "Hello world", "r2": "Once upon a time"}
    alone = {}
    for tid, p in prompts.items():
        whole_engine.submit(TextGenerationTask(tid, prompt=p, max_output_tokens=6, temperature=0.0))
        alone[tid] = [c.token_id for c in run_until_done(whole_engine, [tid])[0][tid]]
    batch_sizes = []
    real = exo_ipex.model.forward_batch
    monkeypatch.setattr(exo_ipex.model, "forward_batch", lambda steps: batch_sizes.append(len(steps)) or real(steps))
    for tid, p in prompts.items():
        whole_engine.submit(TextGenerationTask(tid, prompt=p, max_output_tokens=6, temperature=0.0))
    chunks, ends, order = run_until_done(whole_engine, list(prompts))
    assert {t: [c.token_id for c in chunks[t]] for t in prompts} == alone
    assert len(set(order[:3])) == 3  # each request produced a token before any produced a second
    assert batch_sizes == [3] * 6  # one exo_session_forward_batch per step for the three requests


def test_stop_strings_end_generation_before_the_stop(whole_engine, exo_run):
    text, _, _ = exo_run_greedy(exo_run, TINY_LLAMA, PROMPT, 16)
    # a plain-ASCII stop string from the middle of the text (this random model also emits
    # invalid UTF-8 bytes, which exo-run's JSON shows as U+FFFD)
    i = next(i for i in range(4, len(text) - 2) if text[i:i + 2].isascii() and text[i:i + 2].strip())
    stop = text[i:i + 2]
    whole_engine.submit(TextGenerationTask("s", prompt=PROMPT, max_output_tokens=16, temperature=0.0, stop=[stop]))
    chunks, _, _ = run_until_done(whole_engine, ["s"])
    got = "".join(c.text for c in chunks["s"])
    assert got == text[:text.find(stop)] and chunks["s"][-1].finish_reason == "stop"


def test_cancelled_request_ends_with_cancelled_response(whole_engine):
    whole_engine.submit(TextGenerationTask("c", prompt=PROMPT, max_output_tokens=10000, temperature=0.0))
    whole_engine.submit(TextGenerationTask("k", prompt=PROMPT, max_output_tokens=3, temperature=0.0))
    first = whole_engine.step()
    assert sorted(tid for tid, _ in first) == ["c", "k"]
    whole_engine.cancel("c")
    chunks, ends, _ = run_until_done(whole_engine, ["c", "k"])
    assert isinstance(ends["c"], CancelledResponse) and isinstance(ends["k"], FinishedResponse)
    assert len(chunks["c"]) == 0 and len(chunks["k"]) == 2


def exo_run_seeded(exo_run, n):
    return exo_run_greedy(exo_run, TINY_LLAMA, PROMPT, n, ("--temperature", "1", "--top-k", "50", "--seed", "7"))


def test_sampled_generation_draws_exo_runs_seeded_tokens(whole_engine, exo_run):
    expect_text, expect_tokens, _ = exo_run_seeded(exo_run, 12)

    def run():
        whole_engine.submit(TextGenerationTask("x", prompt=PROMPT, max_output_tokens=12, logprobs=True, top_logprobs=3,
                                               **SEEDED))
        return run_until_done(whole_engine, ["x"])[0]["x"]
    a, b = run(), run()
    assert [c.token_id for c in a if c.token_id >= 0] == expect_tokens  # the C sampler's stream
    assert "".join(c.text for c in a) == expect_text
    assert [c.token_id for c in a] == [c.token_id for c in b]
    assert all(c.logprob <= 0 and len(c.top_logprobs) == 3 for c in a if c.token_id >= 0)


def test_every_eos_id_of_the_model_ends_generation(exo_run, tmp_path):
    """EOS ids come from the library's model info (config.json, generation_config.json, the
    tokenizer): an extra id in generation_config.json ends the request like EOS."""
    _, greedy, _ = exo_run_greedy(exo_run, TINY_LLAMA, PROMPT, 16)
    for name in os.listdir(TINY_LLAMA):  # copies: links leading outside a model are refused
        shutil.copyfile(os.path.join(TINY_LLAMA, name), tmp_path / name)
    gen = json.load(open(os.path.join(TINY_LLAMA, "generation_config.json")))
    stop_id = greedy[3]
    gen["eos_token_id"] = [1, stop_id]
    (tmp_path / "generation_config.json").unlink()
    (tmp_path / "generation_config.json").write_text(json.dumps(gen))
    b = IpexBuilder(model_dir=tmp_path)
    engine = b.build()
    assert stop_id in b.model.info.eos_token_ids
    engine.submit(TextGenerationTask("e", prompt=PROMPT, max_output_tokens=16, temperature=0.0))
    chunks, ends, _ = run_until_done(engine, ["e"])
    # the last chunk carries the EOS id itself, as EXO's MLX engine streams it
    assert [c.token_id for c in chunks["e"]] == greedy[:greedy.index(stop_id) + 1]
    assert chunks["e"][-1].finish_reason == "stop" and isinstance(ends["e"], FinishedResponse)
    assert chunks["e"][-1].usage.completion_tokens == greedy.index(stop_id) + 1
    engine.close()
    b.close()


def test_legacy_interface_whole_model_matches_golden_and_samples():
    eng = IpexInferenceEngine()
    shard = Shard(TINY_LLAMA, 0, 3, 4)  # inclusive end: the whole model
    with exo_ipex.TensorFile(os.path.join(TINY_LLAMA, "golden.safetensors")) as f:
        ids, ref = f.get("p0.ids"), f.get("p0.logits")

    async def go():
        logits, state = await eng.infer_tensor("r", shard, ids.reshape(1, -1))
        tok = await eng.sample(logits, temp=0.0)
        text = await eng.decode(shard, tok)
        enc = await eng.encode(shard, "Hello world")
        return logits, tok, text, enc
    logits, tok, text, enc = asyncio.run(go())
    assert logits.shape == (1,) + ref.shape
    assert np.linalg.norm(logits[0] - ref) / np.linalg.norm(ref) < 1e-4
    assert tok.shape == (1,) and tok[0] == int(np.argmax(ref[-1]))
    assert isinstance(text, str) and enc.dtype.kind == "i"
    with pytest.raises(exo_ipex.InvalidArgument):
        asyncio.run(eng.ensure_shard(Shard(TINY_LLAMA, 0, 3, 6)))
    eng.cleanup()


def _two_ranks(args0, args1, timeout=90):
    env = subprocess_env()
    script = os.path.join(HERE, "pipeline_rank.py")
    p1 = subprocess.Popen([sys.executable, script] + args1, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True)
    p0 = subprocess.Popen([sys.executable, script] + args0, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True)
    out0, err0 = p0.communicate(timeout=timeout)
    out1, err1 = p1.communicate(timeout=timeout)
    assert p0.returncode == 0, err0
    assert p1.returncode == 0, err1
    return out0


def test_two_process_pipeline_reproduces_single_process_logits(tmp_path):
    a0, a1 = (f"tcp://127.0.0.1:{p}" for p in free_tcp_ports(2))
    out = tmp_path / "logits.npy"
    _two_ranks(["logits", "0", a0, a1, TINY_LLAMA, str(out)], ["logits", "1", a0, a1, TINY_LLAMA, "-"])
    piped = np.load(out)
    with exo_ipex.TensorFile(os.path.join(TINY_LLAMA, "golden.safetensors")) as f:
        ids, ref = f.get("p0.ids"), f.get("p0.logits")
    rt = exo_ipex.Runtime()
    single = rt.open_model(TINY_LLAMA).load_shard().session().forward_tokens(ids)
    rt.close()
    assert piped.shape == single.shape
    assert np.max(np.abs(piped - single)) <= 1e-5 * np.max(np.abs(single))
    assert np.linalg.norm(piped - ref) / np.linalg.norm(ref) < 1e-4


def test_two_process_engine_pipeline_reproduces_exo_run(exo_run):
    expect_text, expect_tokens, _ = exo_run_greedy(exo_run, TINY_LLAMA, PROMPT, 32)
    a0, a1 = (f"tcp://127.0.0.1:{p}" for p in free_tcp_ports(2))
    out = _two_ranks(["engine", "0", a0, a1, TINY_LLAMA, PROMPT, "32"],
                     ["engine", "1", a0, a1, TINY_LLAMA, PROMPT, "32"])
    got = json.loads(out.strip().splitlines()[-1])
    assert got["tokens"] == expect_tokens
    assert got["text"] == expect_text


def in_process_pipeline():
    """Two ranks of the tiny model ([0, 2) and [2, 4)) in this process, over loopback TCP."""
    a0, a1 = (f"tcp://127.0.0.1:{p}" for p in free_tcp_ports(2))
    builders = [IpexBuilder(model_dir=TINY_LLAMA, start_layer=2 * r, end_layer=2 * r + 2, device_rank=r, world_size=2,
                            addresses=[a0, a1]) for r in range(2)]
    for b in builders:
        b.connect()
    return builders, [b.build() for b in builders]


def close_pipeline(builders, engines):
    for e, b in zip(engines, builders):
        e.close()
        b.close()


def test_pipeline_last_rank_draws_exo_runs_seeded_tokens_for_a_batch(exo_run):
    expect_text, expect_tokens, _ = exo_run_seeded(exo_run, 10)
    builders, (e0, e1) = in_process_pipeline()
    tids = ["p", "q", "r"]
    for tid in tids:  # three requests step together: batched on both ranks
        e0.submit(TextGenerationTask(tid, prompt=PROMPT, max_output_tokens=10, **SEEDED))
        e1.submit(TextGenerationTask(tid, prompt=PROMPT))
    chunks, ends = {t: [] for t in tids}, {}
    while len(ends) < len(tids):
        for tid, ev in e0.step(timeout=0.01):
            if isinstance(ev, TokenChunk):
                chunks[tid].append(ev)
            else:
                ends[tid] = ev
        e1.step(timeout=0.01)
    for tid in tids:
        assert [c.token_id for c in chunks[tid] if c.token_id >= 0] == expect_tokens
        assert "".join(c.text for c in chunks[tid]) == expect_text
    close_pipeline(builders, (e0, e1))


def test_pipeline_ranks_in_one_process_finish_cancel_and_late_submit():
    builders, (e0, e1) = in_process_pipeline()
    for tid, n in (("long", 10000), ("short", 4)):
        e0.submit(TextGenerationTask(tid, prompt=PROMPT, max_output_tokens=n, temperature=0.0))
    e1.submit(TextGenerationTask("long", prompt=PROMPT))  # "short" reaches rank 1 only after it ended
    ends0, ends1, chunks = {}, {}, {"long": 0, "short": 0}
    while len(ends0) < 2 or len(ends1) < 2:
        for tid, ev in e0.step(timeout=0.01):
            if isinstance(ev, TokenChunk):
                chunks[tid] += 1
                if tid == "long" and chunks[tid] == 3:
                    e0.cancel("long")
            else:
                ends0[tid] = ev
        if "short" in ends0 and "short" not in e1._submitted and "short" not in ends1:
            e1.submit(TextGenerationTask("short", prompt=PROMPT))
        for tid, ev in e1.step(timeout=0.01):
            ends1[tid] = ev
    assert isinstance(ends0["long"], CancelledResponse) and isinstance(ends0["short"], FinishedResponse)
    # rank 1 ends each as rank 0 did: EXO's runner there must not mark a cancelled task Complete
    assert isinstance(ends1["long"], CancelledResponse) and isinstance(ends1["short"], FinishedResponse)
    assert chunks["short"] == 4 and chunks["long"] >= 3
    assert not e1._sessions  # every rank freed its sessions
    close_pipeline(builders, (e0, e1))
