"""Hidden-state hand-off between pipeline ranks over ZeroMQ (TCP, or ipc/inproc in tests).

Topology: a ring of PUSH -> PULL links. Each rank binds one PULL socket (its inbox) at its own
address and connects one PUSH socket to the next rank's address; the last rank's "next" is
rank 0, which is how sampled tokens travel back (EXO's old ring did the same over gRPC).
ZeroMQ queues, reconnects and frames messages, so ranks may start in any order.

A message is two frames: a JSON header {"kind", "request_id", "dtype", "shape", ...} and the raw
payload (C-contiguous array bytes, empty when the message carries no tensor). The receiver
rebuilds the array from dtype and shape alone — no pickling, so a peer cannot run code here."""
import json
import logging

import numpy as np
import zmq

log = logging.getLogger("exo_ipex.transport")
# fwd: hidden states down the ring; token: the last rank's sample back to rank 0; end: a request
# is over (frees its sessions); error: a rank's failure, back to rank 0; logits: the old-era
# interface's last-shard output.
KINDS = ("fwd", "token", "end", "error", "logits")


class PipelineLink:
    def __init__(self, rank, addresses, context=None, send_hwm=1000):
        """addresses: one ZeroMQ endpoint per rank ("tcp://10.0.0.2:5601"); this rank binds its
        own (for tcp, the host part may be "*" when binding) and pushes to the next one."""
        if not (0 <= rank < len(addresses)):
            raise ValueError(f"rank {rank} is outside the {len(addresses)} pipeline addresses")
        self.rank = rank
        self.world_size = len(addresses)
        self.addresses = list(addresses)
        self._own_context = context is None
        self.ctx = context or zmq.Context()
        self.inbox = self.ctx.socket(zmq.PULL)
        self.inbox.setsockopt(zmq.LINGER, 0)
        self.inbox.bind(addresses[rank])
        self.outbox = self.ctx.socket(zmq.PUSH)
        self.outbox.setsockopt(zmq.LINGER, 2000)  # let the last messages out on close
        self.outbox.setsockopt(zmq.SNDHWM, send_hwm)
        self.outbox.connect(addresses[(rank + 1) % self.world_size])
        self._poller = zmq.Poller()
        self._poller.register(self.inbox, zmq.POLLIN)

    def send(self, kind, request_id, array=None, **meta):
        header = {"kind": kind, "request_id": request_id, **meta}
        payload = b""
        if array is not None:
            array = np.ascontiguousarray(array)
            header["dtype"] = array.dtype.str  # "<f4": byte order included
            header["shape"] = list(array.shape)
            payload = memoryview(array).cast("B")
        self.outbox.send_multipart([json.dumps(header).encode(), payload], copy=False)

    def recv(self, timeout_ms=0):
        """(header, array or None), or None when nothing arrived within timeout_ms (-1: wait).
        A malformed message (frame count, header, kind, request id, dtype, payload size) is
        logged with its reason and skipped, never raised: a bad peer must not stop the rank."""
        while self._poller.poll(timeout_ms):
            frames = self.inbox.recv_multipart()
            try:
                return self._parse(frames)
            except (ValueError, TypeError, KeyError) as e:
                log.warning("rank %d: pipeline message dropped: %s", self.rank, e)
            timeout_ms = 0  # what is already queued is still read; no second wait
        return None

    @staticmethod
    def _parse(frames):
        if len(frames) != 2:
            raise ValueError(f"{len(frames)} frames (expected 2)")
        try:
            header = json.loads(frames[0])
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"header is not JSON ({e})") from None
        if not isinstance(header, dict):
            raise ValueError("header is not a JSON object")
        if header.get("kind") not in KINDS:
            raise ValueError(f"unknown kind {header.get('kind')!r}")
        if not isinstance(header.get("request_id"), str) or not header["request_id"]:
            raise ValueError(f"{header['kind']} message without a request_id")
        array = None
        if "dtype" in header:
            dtype = np.dtype(header["dtype"])
            if dtype.kind not in "fiu":
                raise ValueError(f"dtype {dtype} is not a numeric tensor")
            shape = tuple(int(s) for s in header["shape"])
            if any(s < 0 for s in shape) or int(np.prod(shape)) * dtype.itemsize != len(frames[1]):
                raise ValueError(f"payload of {len(frames[1])} bytes does not hold {dtype} {shape}")
            array = np.frombuffer(frames[1], dtype=dtype).reshape(shape)
        return header, array

    def close(self):
        self.inbox.close()
        self.outbox.close()
        if self._own_context:
            self.ctx.term()
