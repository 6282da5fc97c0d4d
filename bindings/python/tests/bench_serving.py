"""Aggregate tokens/s of the EXO adapter serving 8 concurrent greedy requests vs serving them one
at a time (issue 15: target >= 5x), on the demo model by default. Not a test (pytest does not
collect it): run `python3 bench_serving.py [--model DIR] [-n TOKENS] [--prefix-cache]` with the
library found as exo_ipex finds it (EXO_IPEX_LIBRARY). Prints the load average around each part:
on a shared machine the ratio is only as good as the quiet it had."""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from exo_ipex.exo_engine import FinishedResponse, IpexBuilder, TextGenerationTask, TokenChunk  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
PROMPTS = ["Permission is hereby granted, free of charge, to any person", "THE SOFTWARE IS PROVIDED",
           "Licensed under the Apache License", "Redistribution and use in source and binary forms",
           "This program is free software", "Copyright (c)", "You may obtain a copy of the License at",
           "Subject to the terms"]


def serve(engine, tasks):
    """Submits the tasks, steps until all end: (tokens, seconds, steps)."""
    for t in tasks:
        engine.submit(t)
    left, tokens, steps = {t.task_id for t in tasks}, 0, 0
    t0 = time.perf_counter()
    while left:
        steps += 1
        for tid, ev in engine.step():
            if isinstance(ev, TokenChunk):
                tokens += 1
            elif isinstance(ev, FinishedResponse):
                left.discard(tid)
    return tokens, time.perf_counter() - t0, steps


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=os.path.join(REPO, "models", "tiny-llama-licenses"))
    ap.add_argument("-n", type=int, default=64, help="tokens per request (EOS banned)")
    ap.add_argument("--prefix-cache", action="store_true", help="leave prefix reuse on (off: no request helps another)")
    ap.add_argument("-r", type=int, default=3, help="repetitions; the best of each is kept")
    a = ap.parse_args()
    b = IpexBuilder(model_dir=a.model, prefix_cache_bytes=None if a.prefix_cache else 0)
    engine = b.build()
    engine.warmup()
    eos = sorted(engine._eos)

    def task(i, tag):
        return TextGenerationTask(task_id=f"{tag}{i}", prompt=PROMPTS[i % len(PROMPTS)], max_output_tokens=a.n,
                                  temperature=0.0, banned_tokens=eos)

    best_one = best_all = 0.0
    for rep in range(a.r):
        load0 = os.getloadavg()[0]
        n1 = t1 = 0
        for i in range(8):
            n, t, _ = serve(engine, [task(i, f"one{rep}-")])
            n1, t1 = n1 + n, t1 + t
        n8, t8, steps = serve(engine, [task(i, f"all{rep}-") for i in range(8)])
        print(f"rep {rep}: one at a time {n1} tokens {n1 / t1:.1f} tok/s; 8 at once {n8} tokens in {steps} steps "
              f"{n8 / t8:.1f} tok/s; ratio {(n8 / t8) / (n1 / t1):.2f}; load {load0:.2f} -> {os.getloadavg()[0]:.2f}")
        best_one, best_all = max(best_one, n1 / t1), max(best_all, n8 / t8)
    print(f"best: one at a time {best_one:.1f} tok/s, 8 at once {best_all:.1f} tok/s, ratio {best_all / best_one:.2f}")
    engine.close()


if __name__ == "__main__":
    main()
