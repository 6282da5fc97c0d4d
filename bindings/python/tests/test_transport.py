"""The pipeline transport under a bad or careless peer: malformed and unknown messages are
dropped with a logged reason and never raise out of step(); a rank holds at most
max_concurrent sessions however many request ids arrive."""
import json
import logging

import numpy as np
import zmq

from conftest import TINY_LLAMA, free_tcp_ports
from exo_ipex.exo_engine import IpexBuilder


def pipeline(max_concurrent):
    a0, a1 = (f"tcp://127.0.0.1:{p}" for p in free_tcp_ports(2))
    builders = [IpexBuilder(model_dir=TINY_LLAMA, start_layer=2 * r, end_layer=2 * r + 2, device_rank=r, world_size=2,
                            addresses=[a0, a1], max_concurrent=max_concurrent) for r in range(2)]
    return builders, [b.build() for b in builders], (a0, a1)


def peer(address):
    ctx = zmq.Context.instance()
    s = ctx.socket(zmq.PUSH)
    s.setsockopt(zmq.LINGER, 1000)
    s.connect(address)
    return s


def step_until_quiet(engine, rounds=20):
    out = []
    for _ in range(rounds):
        out += engine.step(timeout=0.02)
    return out


def test_malformed_messages_are_logged_and_dropped(caplog):
    builders, (e0, e1), (a0, a1) = pipeline(8)
    s = peer(a1)
    hidden = np.zeros((1, e1.info.input_width), dtype=np.float32)
    bad = [
        [b"only one frame"],
        [b"not json", b""],
        [json.dumps([1, 2]).encode(), b""],
        [json.dumps({"kind": "fwd"}).encode(), b""],  # no request_id
        [json.dumps({"kind": "launch", "request_id": "x"}).encode(), b""],
        [json.dumps({"kind": "fwd", "request_id": "x", "dtype": "<f4", "shape": [1, 3]}).encode(), b"\0" * 5],
        [json.dumps({"kind": "fwd", "request_id": "x", "dtype": "|O", "shape": [1]}).encode(), b"\0" * 8],
        [json.dumps({"kind": "fwd", "request_id": "never-started", "dtype": "<f4",
                     "shape": list(hidden.shape)}).encode(), hidden.tobytes()],
    ]
    with caplog.at_level(logging.WARNING):
        for frames in bad:
            s.send_multipart(frames)
        step_until_quiet(e1)
        step_until_quiet(e0)  # rank 0 gets the error for "never-started" and drops it: no such request
    text = caplog.text
    for reason in ("1 frames", "not JSON", "not a JSON object", "without a request_id", "unknown kind 'launch'",
                   "does not hold", "not a numeric tensor", "has no session here"):
        assert reason in text, reason
    assert not e1._sessions
    s.close()
    for e in (e0, e1):
        e.close()


def test_sessions_per_rank_are_capped_at_the_concurrency_limit(caplog):
    builders, (e0, e1), (a0, a1) = pipeline(4)
    s = peer(a1)
    hidden = np.ones((2, e1.info.input_width), dtype=np.float32) * 0.01
    with caplog.at_level(logging.WARNING):
        for i in range(30):  # 30 new request ids, each opening a session if it could
            header = {"kind": "fwd", "request_id": f"r{i}", "dtype": "<f4", "shape": list(hidden.shape),
                      "start": True, "sampling": {"temperature": 0.0}, "history": [1, 2]}
            s.send_multipart([json.dumps(header).encode(), hidden.tobytes()])
        step_until_quiet(e1)
    assert len(e1._sessions) == 4
    assert "max_concurrent 4" in caplog.text
    s.close()
    for e in (e0, e1):
        e.close()
