"""Prefix reuse for the EXO adapter: a new request whose prompt begins with tokens some session
already holds in its KV cache starts from a copy of those positions (exo_session_copy_prefix)
instead of recomputing them: a shared system prompt, or a conversation's earlier turns.

Sources are the sessions of the requests running now (their KV so far; free: they exist anyway)
and finished requests' sessions kept in an LRU cache. A finished request's session is kept whole
(a pooled shard's session is a slot of the pool: every position up to max_ctx, whatever it holds),
so an entry costs Session.kv_bytes and the cache holds at most `budget_bytes` of them (and at most
`max_entries`); the least recently used go first. The pool never shrinks, so the device memory of
a shard's KV pool is bounded by (running requests + cached entries) slots, rounded up to a power
of two. A new session that finds no memory evicts cached entries and tries again.

A cached entry whose every token begins the new prompt is taken over by the request (no copy: its
session continues, and comes back, longer, when the request ends: a conversation's next turn); an
entry matched in part, or a running request, is copied from and stays as it was."""
import collections
import logging

import numpy as np

from .errors import OutOfMemory

log = logging.getLogger("exo_ipex.prefix_cache")


def common_prefix(a, b):
    """Length of the common prefix of two int32 arrays."""
    n = min(len(a), len(b))
    if n == 0:
        return 0
    diff = np.flatnonzero(a[:n] != b[:n])
    return int(diff[0]) if diff.size else n


class PrefixCache:
    """The cache of one shard's idle sessions, keyed by the token ids their KV caches hold."""

    def __init__(self, shard, budget_bytes, max_entries, min_tokens):
        self.shard = shard
        self.budget_bytes = int(budget_bytes)
        self.max_entries = int(max_entries)
        self.min_tokens = max(1, int(min_tokens))
        self._entries = collections.OrderedDict()  # id -> (Session, tokens int32), least recent first
        self._ids = 0
        self.bytes = 0
        self.hits = self.cached_tokens = self.evictions = 0

    @property
    def enabled(self):
        return self.budget_bytes > 0

    def stats(self):
        """What the cache did so far: requests that reused a prefix, prompt tokens not recomputed,
        entries and bytes held now, entries evicted."""
        return {"hits": self.hits, "cached_prompt_tokens": self.cached_tokens, "entries": len(self._entries),
                "bytes": self.bytes, "budget_bytes": self.budget_bytes, "evictions": self.evictions}

    def new_session(self):
        """A fresh session of the shard; when the device has no memory left for it, cached entries
        are dropped (least recent first) until it fits or none is left."""
        while True:
            try:
                return self.shard.session()
            except OutOfMemory:
                if not self._entries:
                    raise
                self._evict()

    def acquire(self, ids, running=()):
        """A session for a request of prompt `ids` (list of int), holding the longest prefix of
        them any source holds (never the last prompt token: the request must feed at least one
        token to get logits). running: (Session, tokens in its KV) of the requests running now.
        Returns (session, prefix length); (a fresh session, 0) when no source holds at least
        min_tokens of the prompt."""
        if not self.enabled or len(ids) <= self.min_tokens:
            return self.new_session(), 0
        want = np.asarray(ids, dtype=np.int32)
        cap = len(ids) - 1
        best_n, best_src, best_key = 0, None, None
        for key, (session, tokens) in self._entries.items():
            n = min(common_prefix(tokens, want), cap)
            if n > best_n:
                best_n, best_src, best_key = n, session, key
        for session, tokens in running:
            n = min(common_prefix(np.asarray(tokens, dtype=np.int32), want), cap)
            if n > best_n:
                best_n, best_src, best_key = n, session, None
        if best_n < self.min_tokens:
            return self.new_session(), 0
        self.hits += 1
        self.cached_tokens += best_n
        if best_key is not None and best_n == len(self._entries[best_key][1]):
            # every token of the entry begins the prompt: the request continues its session
            session, _ = self._entries.pop(best_key)
            self.bytes -= session.kv_bytes
            return session, best_n
        if best_key is not None:
            self._entries.move_to_end(best_key)
        session = self.new_session()
        try:
            session.copy_prefix(best_src, best_n)
        except BaseException:
            session.close()
            raise
        return session, best_n

    def put(self, session, tokens):
        """Keeps a finished request's session, whose KV holds `tokens`, or closes it: an entry the
        budget cannot hold, or one whose tokens an entry holds already, is not kept; entries whose
        tokens this one extends are dropped (it serves every prefix they served)."""
        tokens = np.asarray(tokens, dtype=np.int32)
        size = session.kv_bytes
        if not self.enabled or len(tokens) < self.min_tokens or size > self.budget_bytes or self.max_entries < 1:
            session.close()
            return
        for key, (other, held) in list(self._entries.items()):
            n = common_prefix(held, tokens)
            if n == len(tokens):  # already held (as a prefix of an entry, or equal)
                self._entries.move_to_end(key)
                session.close()
                return
            if n == len(held):  # this one extends it
                self._drop(key)
        while self._entries and (self.bytes + size > self.budget_bytes or len(self._entries) >= self.max_entries):
            self._evict()
        self._ids += 1
        self._entries[self._ids] = (session, tokens)
        self.bytes += size

    def _drop(self, key):
        session, _ = self._entries.pop(key)
        self.bytes -= session.kv_bytes
        session.close()

    def _evict(self):
        self._drop(next(iter(self._entries)))
        self.evictions += 1

    def close(self):
        for key in list(self._entries):
            self._drop(key)
