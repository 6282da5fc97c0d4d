"""One pipeline rank in its own process, for the multi-process tests.

  pipeline_rank.py logits RANK ADDR0 ADDR1 MODEL OUT.npy
      the old-era interface (infer_tensor) on layers [0, 2) or [2, 4) of a 4-layer model: rank 0
      embeds the golden prompt, hands its hidden states to rank 1 through the ZeroMQ link, and
      saves the logits rank 1 sends back.
  pipeline_rank.py engine RANK ADDR0 ADDR1 MODEL PROMPT N
      the current interface (IpexBuilder / IpexEngine): both ranks get the task; rank 0 prints
      the streamed text as one JSON line.
"""
import asyncio
import json
import sys

import numpy as np

from exo_ipex.exo_engine import FinishedResponse, IpexBuilder, TextGenerationTask, TokenChunk
from exo_ipex.legacy_engine import IpexInferenceEngine, Shard
from exo_ipex.transport import PipelineLink


def logits_mode(rank, addresses, model, out_path):
    link = PipelineLink(rank, addresses)
    engine = IpexInferenceEngine()
    try:
        if rank == 0:
            from exo_ipex import TensorFile
            with TensorFile(f"{model}/golden.safetensors") as f:
                ids = f.get("p0.ids")
            shard = Shard(model, 0, 1, 4)  # old era: inclusive end -> layers [0, 2)
            hidden, _ = asyncio.run(engine.infer_tensor("req-1", shard, ids.reshape(1, -1)))
            link.send("fwd", "req-1", hidden[0])
            header, logits = link.recv(60000)
            assert header["kind"] == "logits" and header["request_id"] == "req-1"
            np.save(out_path, logits)
        else:
            header, hidden = link.recv(60000)
            shard = Shard(model, 2, 3, 4)  # layers [2, 4)
            logits, _ = asyncio.run(engine.infer_tensor(header["request_id"], shard, hidden[None]))
            link.send("logits", header["request_id"], logits[0])
    finally:
        engine.cleanup()
        link.close()


def engine_mode(rank, addresses, model, prompt, n):
    b = IpexBuilder(model_dir=model, start_layer=2 * rank, end_layer=2 * rank + 2, device_rank=rank, world_size=2,
                    addresses=addresses)
    b.connect()
    progress = list(b.load())
    assert (progress[-1].layers_loaded, progress[-1].total) == (2, 2), progress
    engine = b.build()
    engine.warmup()
    engine.submit(TextGenerationTask(task_id="t1", prompt=prompt, max_output_tokens=n, temperature=0.0))
    text, tokens, finished = [], [], False
    while not finished:
        for tid, ev in engine.step(timeout=0.05):
            if isinstance(ev, TokenChunk):
                text.append(ev.text)
                if ev.token_id >= 0:
                    tokens.append(ev.token_id)
            elif isinstance(ev, FinishedResponse):
                finished = True
    if rank == 0:
        print(json.dumps({"text": "".join(text), "tokens": tokens}))
    engine.close()
    b.close()


if __name__ == "__main__":
    mode, rank, a0, a1 = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    if mode == "logits":
        logits_mode(rank, [a0, a1], sys.argv[5], sys.argv[6])
    else:
        engine_mode(rank, [a0, a1], sys.argv[5], sys.argv[6], int(sys.argv[7]))
