"""The pieces for callers that step sequences themselves: the C sampler (exo_sampler_*), the
streaming detokenizer (exo_detokenizer_*) and the batched step (exo_session_forward_batch)."""
import numpy as np
import pytest

import exo_ipex
from conftest import TINY_LLAMA
from exo_ipex.model import forward_batch
from exo_ipex.sampler import Sampler, SamplingParams

UNICODE = "héllo wörld ✓ 日本"


@pytest.fixture(scope="module")
def model():
    rt = exo_ipex.Runtime()
    m = rt.open_model(TINY_LLAMA)
    yield m
    rt.close()


def draws(params, rows, history=()):
    with Sampler(params, rows.shape[1]) as s:
        for t in history:
            s.accept(t)
        out = []
        for row in rows:
            tok, _, _ = s.sample(row)
            s.accept(tok)
            out.append(tok)
        return out


def test_greedy_sampler_takes_the_argmax_and_reports_logprobs():
    rng = np.random.default_rng(0)
    rows = rng.standard_normal((5, 64)).astype(np.float32)
    assert draws(SamplingParams(temperature=0.0), rows) == [int(np.argmax(r)) for r in rows]
    with Sampler(SamplingParams(temperature=0.0, n_logprobs=3), 64) as s:
        tok, lp, top = s.sample(rows[0])
    ref = rows[0].astype(np.float64) - np.log(np.exp(rows[0].astype(np.float64)).sum())
    assert abs(lp - ref[tok]) < 1e-4
    assert [t for t, _ in top] == list(np.argsort(-ref)[:3]) and top[0] == (tok, pytest.approx(lp, abs=1e-6))


def test_seeded_sampler_repeats_its_stream_and_reset_restarts_it():
    rows = np.random.default_rng(1).standard_normal((12, 64)).astype(np.float32) * 0.2  # flat: draws vary
    p = SamplingParams(temperature=1.0, min_p=0.0, seed=7)
    a, b = draws(p, rows), draws(p, rows)
    assert a == b and len(set(a)) > 1
    assert draws(SamplingParams(temperature=1.0, min_p=0.0, seed=8), rows) != a
    with Sampler(p, 64) as s:
        first = [s.sample(r)[0] for r in rows[:4]]
        s.reset()
        assert [s.sample(r)[0] for r in rows[:4]] == first


def test_penalties_see_accepted_tokens_and_bans_hold():
    row = np.zeros(16, np.float32)
    row[3], row[5] = 2.0, 1.9
    assert draws(SamplingParams(temperature=0.0), row[None]) == [3]
    assert draws(SamplingParams(temperature=0.0, repetition_penalty=1.5), row[None], history=[3]) == [5]
    assert draws(SamplingParams(temperature=0.0, banned=(3,)), row[None]) == [5]


def test_bad_sampling_parameters_and_short_rows_raise():
    with pytest.raises(exo_ipex.InvalidArgument) as e:
        Sampler(SamplingParams(banned=(99,)), 16)
    assert "99" in e.value.detail
    with pytest.raises(exo_ipex.InvalidArgument):
        Sampler(SamplingParams(temperature=-1.0), 16)
    with Sampler(SamplingParams(), 16) as s:
        with pytest.raises(exo_ipex.InvalidArgument):
            s.sample(np.zeros(8, np.float32))  # the C side would read 16 floats


def test_detokenizer_streams_whole_characters_only(model):
    ids = model.tokenize(UNICODE, add_bos=0)
    d = model.detokenizer()
    pieces = [d.push(i) for i in ids]
    assert "".join(pieces) + d.flush() == UNICODE == model.detokenize(ids)
    assert "" in pieces  # this byte-level vocabulary splits é, ✓, 日 over several tokens
    assert len(pieces) == len(ids)
    # an unfinished character at the end becomes one U+FFFD, and the stream starts afresh
    assert "".join(d.push(i) for i in ids[:-1]) + d.flush() == UNICODE[:-1] + "\ufffd"
    assert "".join(d.push(i) for i in ids) == UNICODE
    with pytest.raises(exo_ipex.ExoError):
        d.push(100000)
    model_closed = exo_ipex.Runtime()
    m = model_closed.open_model(TINY_LLAMA)
    d2 = m.detokenizer()
    m.close()
    assert d2.closed  # closed with its model
    model_closed.close()


def test_batched_step_matches_separate_steps_and_reports_each_failure(tiny_shard):
    prompts = [[0, 5, 6, 7], [0, 9], [0, 11, 12]]
    alone = []
    for p in prompts:
        s = tiny_shard.session()
        alone.append((s.forward_tokens(p, last_only=True), s.forward_tokens([42])))
        s.close()
    sessions = [tiny_shard.session() for _ in prompts]
    got = forward_batch([(s, np.asarray(p, np.int32), True) for s, p in zip(sessions, prompts)])
    for (ref, _), x in zip(alone, got):
        np.testing.assert_allclose(x, ref, rtol=1e-5, atol=1e-5)
    # the next step: one entry with a token outside the vocabulary fails on its own
    got = forward_batch([(sessions[0], [42], False), (sessions[1], [512], False), (sessions[2], [42], False)])
    np.testing.assert_allclose(got[0], alone[0][1], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got[2], alone[2][1], rtol=1e-5, atol=1e-5)
    assert isinstance(got[1], exo_ipex.InvalidArgument) and "512" in got[1].detail
    assert [s.position for s in sessions] == [5, 2, 4]
    assert forward_batch([]) == []


def test_batched_step_of_hidden_states(runtime):
    m = runtime.open_model(TINY_LLAMA)
    with exo_ipex.TensorFile(f"{TINY_LLAMA}/golden.safetensors") as f:
        h1, h3 = f.get("p1.hidden.1"), f.get("p1.hidden.3")
    sh = m.load_shard(1, 3)
    a, b = sh.session(), sh.session()
    x, y = forward_batch([(a, h1, False), (b, h1[:2], True)])
    assert np.linalg.norm(x - h3) / np.linalg.norm(h3) < 1e-4
    assert y.shape == (1, 64) and np.allclose(y[0], h3[1], rtol=1e-4, atol=1e-4)
    bad, = forward_batch([(a, np.zeros((1, 63), np.float32), False)])
    assert isinstance(bad, exo_ipex.InvalidArgument)


def test_copy_prefix_continues_as_recomputed_and_refuses_bad_copies(tiny_shard, runtime):
    shared, tail = [0, 5, 6, 7, 8, 9, 10], [11, 12, 13]
    src, dst = tiny_shard.session(), tiny_shard.session()
    src.forward_tokens(shared + [40, 41], last_only=True)
    dst.forward_tokens([3, 3, 3], last_only=True)  # dropped by the copy
    dst.copy_prefix(src, len(shared))
    assert dst.position == len(shared) and src.position == len(shared) + 2
    info, mi = tiny_shard.info, tiny_shard.model.info
    assert dst.kv_bytes == (info.end_layer - info.start_layer) * 2 * info.max_ctx * mi.n_kv_heads * mi.head_dim * 4
    got = dst.forward_tokens(tail)
    fresh = tiny_shard.session()
    want = fresh.forward_tokens(shared + tail)[len(shared):]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
    with pytest.raises(exo_ipex.InvalidArgument, match="holds 9"):
        dst.copy_prefix(src, 10)
    with pytest.raises(TypeError):
        dst.copy_prefix(object(), 1)
    other = runtime.open_model(TINY_LLAMA).load_shard().session()
    with pytest.raises(exo_ipex.InvalidArgument, match="different shards"):
        other.copy_prefix(src, 1)
    for s in (src, dst, fresh, other):
        s.close()


def test_prefix_cache_keeps_an_lru_byte_budget_and_serves_the_longest_prefix(tiny_shard):
    from exo_ipex.prefix_cache import PrefixCache
    size = tiny_shard.session().kv_bytes
    cache = PrefixCache(tiny_shard, 2 * size, 8, min_tokens=4)

    def finished(tokens):
        s = tiny_shard.session()
        s.forward_tokens(tokens, last_only=True)
        cache.put(s, tokens)

    a, b, c = [0] + list(range(10, 20)), [0] + list(range(30, 40)), [0] + list(range(50, 60))
    finished(a)
    finished(b)
    assert cache.stats()["entries"] == 2 and cache.stats()["bytes"] == 2 * size
    s, n = cache.acquire(a[:6] + [7, 7])  # a partial match: copied, `a` stays and becomes most recent
    assert n == 6 and s.position == 6 and cache.stats()["entries"] == 2
    s.close()
    finished(c)  # over the budget: `b`, least recently used, goes
    st = cache.stats()
    assert st["entries"] == 2 and st["evictions"] == 1 and st["bytes"] <= st["budget_bytes"]
    s, n = cache.acquire(b + [1])
    assert n == 0 and s.position == 0
    s.close()
    # an entry every token of which begins the prompt is taken over, not copied
    s, n = cache.acquire(c + [1, 2])
    assert n == len(c) and s.position == len(c) and cache.stats()["entries"] == 1
    # back, longer: it replaces nothing else, and a prefix of a held entry is not kept twice
    s.forward_tokens([1], last_only=True)
    cache.put(s, c + [1])
    finished(c[:8])
    assert cache.stats()["entries"] == 2 and cache.stats()["hits"] == 2
    # too short a match is recomputed; the last prompt token is always fed
    s, n = cache.acquire(a[:3] + [9, 9, 9])
    assert n == 0
    s.close()
    s, n = cache.acquire(a)
    assert n == len(a) - 1
    s.close()
    cache.close()
    assert cache.stats()["entries"] == 0 and cache.stats()["bytes"] == 0
