"""The old-era engine as old EXO's node and factory use it (old-era/exo/orchestration/node.py,
inference/inference_engine.py): constructed with a shard_downloader, `tokenizer.eos_token_id`
on the last shard, a seeded sampler whose stream advances."""
import asyncio
import os

import numpy as np
import pytest

import exo_ipex
from conftest import TINY_LLAMA
from exo_ipex.legacy_engine import IpexInferenceEngine, Shard
from exo_ipex.shard_downloader import LocalShardDownloader

MODEL_ID = "test-org/tiny-llama"


@pytest.fixture
def downloader(tmp_path):
    os.symlink(TINY_LLAMA, tmp_path / MODEL_ID.replace("/", "--"))
    return LocalShardDownloader(str(tmp_path))


def test_factory_signature_downloader_and_tokenizer(downloader):
    engine = IpexInferenceEngine(downloader)  # get_inference_engine(name, shard_downloader)
    shard = Shard(MODEL_ID, 0, 3, 4)
    seen = []
    downloader.on_progress.register("test").on_next(lambda s, status: seen.append((s, status["status"])))

    async def go():
        await engine.ensure_shard(shard)
        ids = await engine.encode(shard, "Hello world")
        return ids, await engine.decode(shard, ids)
    ids, text = asyncio.run(go())
    assert seen == [(shard, "complete")]
    tok = engine.tokenizer
    with exo_ipex.Runtime() as rt:
        info = rt.open_model(TINY_LLAMA).info
    assert tok.eos_token_id == info.eos_token_ids[0] and tok.eos_token_ids == list(info.eos_token_ids)
    assert tok.encode("Hello world") == list(ids) and tok.decode(ids) == text
    body = [int(i) for i in ids if i != tok.bos_token_id]
    assert tok.decode(list(ids) + [tok.eos_token_id], skip_special_tokens=True) == tok.decode(body)
    # node.py's end test, on a token that is the EOS id
    assert np.array([tok.eos_token_id]).item() == engine.tokenizer.eos_token_id
    engine.cleanup()
    assert engine.tokenizer is None


def test_downloader_names_a_missing_model(downloader):
    engine = IpexInferenceEngine(downloader)
    with pytest.raises(exo_ipex.NotFound, match="no-such--model"):
        asyncio.run(engine.ensure_shard(Shard("no-such/model", 0, 3, 4)))
    engine.cleanup()


def test_seeded_sampling_stream_advances_between_calls():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((1, 1, 64)).astype(np.float32)  # a flat-ish distribution: draws vary

    def draws():
        engine = IpexInferenceEngine()
        out = [int(asyncio.run(engine.sample(logits, temp=1.0, seed=42))[0]) for _ in range(12)]
        engine.cleanup()
        return out
    a, b = draws(), draws()
    assert len(set(a)) > 1  # each call draws the stream's next number
    assert a == b  # and the stream is the seed's: a new engine repeats it
    with exo_ipex.Sampler(exo_ipex.SamplingParams(temperature=1.0, top_p=1.0, top_k=0, min_p=0.0, seed=42), 64) as s:
        assert a == [s.sample(logits[0, -1])[0] for _ in range(12)]  # exo_sampler's own sequence
