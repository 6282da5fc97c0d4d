"""The adapter driven by a double of EXO's runner (exo_runner_double.py, from runner.py): EXO's
own task and chunk types, its load progress objects, its cancel channel and step loop."""
import json
import os
import shutil
import types

import pytest

from conftest import LICENSES, TINY_LLAMA
from exo_runner_double import Channel, ConnectToGroup, LoadModel, RunnerDouble, Shutdown, StartWarmup
from exo_ipex.exo_engine import IpexBuilder
from exo_ipex.exo_types import (CANCEL_ALL_TASKS, ChunkGenerated, CommandId, ErrorChunk, InputMessage, Memory,
                                PrefillProgressChunk, TaskId, TextGeneration, TextGenerationTaskParams, TokenChunk,
                                TopLogprobItem, Usage)
from test_engine import PROMPT, SEEDED, exo_run_greedy, exo_run_seeded

MODEL_ID = "test-org/tiny-llama"


def bound_instance(n_layers=4, start=0, end=4, rank=0, world=1, hosts=None):
    """EXO's BoundInstance as the builder reads it: bound_shard (PipelineShardMetadata) and, for
    a ring, instance.hosts_by_node[bound_node_id]."""
    shard = types.SimpleNamespace(model_card=types.SimpleNamespace(model_id=MODEL_ID), start_layer=start,
                                  end_layer=end, n_layers=n_layers, device_rank=rank, world_size=world)
    instance = types.SimpleNamespace(instance_id="inst", hosts_by_node={"node": hosts or []})
    return types.SimpleNamespace(instance=instance, bound_runner_id="runner", bound_node_id="node",
                                 bound_shard=shard)


@pytest.fixture
def models_dir(tmp_path):
    """EXO's models directory: <org>--<name> folders."""
    os.symlink(TINY_LLAMA, tmp_path / MODEL_ID.replace("/", "--"))
    return tmp_path


def generation(content, **params):
    return TextGeneration(instance_id="inst", command_id=CommandId(), task_params=TextGenerationTaskParams(
        model=MODEL_ID, input=[InputMessage(role="user", content=content)], **params))


def start_runner(models_dir, after_step=None, max_concurrent=None):
    events, cancels = Channel(), Channel()
    builder = IpexBuilder(model_id=MODEL_ID, event_sender=events, cancel_receiver=cancels, models_dir=str(models_dir),
                          max_concurrent=max_concurrent)
    runner = RunnerDouble(bound_instance(), builder, events, after_step)
    for t in (LoadModel(), StartWarmup()):
        runner.work.put(t)
    runner.main()
    return runner, builder, events, cancels


def chunks_of(events, task):
    return [e.chunk for e in events.items if isinstance(e, ChunkGenerated) and e.command_id == task.command_id]


def token_chunks(events, task):
    return [c for c in chunks_of(events, task) if isinstance(c, TokenChunk)]


def completed(events):
    return {e[1] for e in events.items if isinstance(e, tuple) and e[0] == "TaskStatusUpdated" and e[2] == "Complete"}


def test_runner_loads_warms_generates_greedy_beside_sampled_and_shuts_down(models_dir, exo_run):
    greedy_text, greedy_tokens, _ = exo_run_greedy(exo_run, TINY_LLAMA, PROMPT, 16)
    seeded_text, seeded_tokens, _ = exo_run_seeded(exo_run, 12)
    runner, builder, events, _ = start_runner(models_dir)
    assert runner.statuses[:7] == [("RunnerIdle",), ("RunnerLoading", 0, 4)] + \
        [("RunnerLoading", i, 4) for i in range(1, 5)] + [("RunnerLoaded",)]
    assert runner.statuses[-1] == ("RunnerReady",)

    greedy = generation(PROMPT, max_output_tokens=16, temperature=0.0)
    sampled = generation(PROMPT, max_output_tokens=12, logprobs=True, top_logprobs=3, **SEEDED)
    runner.work.put(greedy)
    runner.work.put(sampled)  # arrives while the first runs: submitted between steps
    runner.main()
    assert runner.statuses[-1] == ("RunnerReady",) and not runner.active_tasks
    assert {greedy.task_id, sampled.task_id} <= completed(events)

    g = token_chunks(events, greedy)
    assert [c.token_id for c in g] == greedy_tokens and "".join(c.text for c in g) == greedy_text
    last = g[-1]
    assert last.finish_reason == "length" and all(c.finish_reason is None for c in g[:-1])
    assert isinstance(last.usage, Usage) and last.usage.completion_tokens == 16
    assert last.usage.total_tokens == last.usage.prompt_tokens + 16 == last.stats.prompt_tokens + 16
    assert isinstance(last.stats.peak_memory_usage, Memory) and last.stats.peak_memory_usage.in_bytes > 0
    assert all(c.usage is None for c in g[:-1])

    s = token_chunks(events, sampled)
    assert [c.token_id for c in s] == seeded_tokens and "".join(c.text for c in s) == seeded_text
    for c in s:
        assert c.logprob <= 0 and len(c.top_logprobs) == 3
        assert all(isinstance(t, TopLogprobItem) and isinstance(t.token, str) and t.logprob <= 0 for t in c.top_logprobs)
        assert all(bytes(t.bytes).decode("utf-8", "replace") == t.token for t in c.top_logprobs)

    progress = [c for c in chunks_of(events, greedy) if isinstance(c, PrefillProgressChunk)]
    n_prompt = last.usage.prompt_tokens
    assert [(p.processed_tokens, p.total_tokens) for p in progress] == [(0, n_prompt), (n_prompt, n_prompt)]

    runner.work.put(Shutdown())
    runner.main()
    assert runner.statuses[-1] == ("RunnerShutdown",)
    assert builder.shard is None and builder.model is None and builder.runtime is None


def test_cancel_channel_ends_one_request_and_cancel_all_is_not_sticky(models_dir):
    long_a = generation(PROMPT, max_output_tokens=10000, temperature=0.0)
    long_b = generation("Hello world", max_output_tokens=10000, temperature=0.0)

    sent = set()

    def after_step(runner):
        # EXO's runner supervisor puts the TaskId on the channel, once
        if len(token_chunks(events, long_a)) == 3 and "a" not in sent:
            sent.add("a")
            cancels.send(long_a.task_id)
        if len(token_chunks(events, long_b)) == 5 and "all" not in sent:
            sent.add("all")
            cancels.send(CANCEL_ALL_TASKS)

    runner, builder, events, cancels = start_runner(models_dir)
    runner.after_step = after_step
    runner.work.put(long_a)
    runner.work.put(long_b)
    runner.main()
    assert len(token_chunks(events, long_a)) == 3 and len(token_chunks(events, long_b)) == 5
    assert not ({long_a.task_id, long_b.task_id} & completed(events))  # cancelled, not completed
    assert runner.statuses[-1] == ("RunnerReady",)

    after = generation(PROMPT, max_output_tokens=4, temperature=0.0)  # cancel-all does not outlive its step
    runner.after_step = lambda r: None
    runner.work.put(after)
    runner.main()
    assert len(token_chunks(events, after)) == 4 and after.task_id in completed(events)
    runner.work.put(Shutdown())
    runner.main()


def test_requests_past_the_concurrency_limit_queue_and_all_finish(models_dir):
    most = []
    runner, builder, events, _ = start_runner(models_dir, max_concurrent=2)
    runner.after_step = lambda r: most.append(len(r.generator._requests))
    tasks = [generation(p, max_output_tokens=5, temperature=0.0)
             for p in (PROMPT, "Hello world", "Once upon a time", "A", "The end")]
    for t in tasks:
        runner.work.put(t)
    runner.main()
    assert max(most) == 2  # never more sessions than the limit
    assert {t.task_id for t in tasks} <= completed(events)
    assert all(len(token_chunks(events, t)) == 5 for t in tasks)
    runner.work.put(Shutdown())
    runner.main()


def test_text_generation_is_rendered_by_the_model_chat_template(tmp_path):
    """A model folder whose tokenizer_config.json holds Qwen3's template: the engine's prompt is
    the template's rendering of EXO's input and instructions, thinking switched off, tokenized
    without an added BOS (prefill progress reports its length)."""
    from exo_ipex.chat_template import ChatTemplate
    folder = tmp_path / MODEL_ID.replace("/", "--")
    folder.mkdir()
    for name in os.listdir(TINY_LLAMA):
        if name != "tokenizer_config.json":
            shutil.copy(os.path.join(TINY_LLAMA, name), folder / name)  # the library reads no links out
    config = json.load(open(os.path.join(TINY_LLAMA, "tokenizer_config.json")))
    here = os.path.dirname(os.path.abspath(__file__))
    template_file = os.path.join(here, "..", "..", "..", "tests", "data", "chat-templates", "qwen3.jinja")
    config["chat_template"] = open(template_file).read()
    (folder / "tokenizer_config.json").write_text(json.dumps(config))

    runner, builder, events, _ = start_runner(tmp_path)
    task = generation("What is 2+2?", instructions="Be brief.", enable_thinking=False, max_output_tokens=3,
                      temperature=0.0)
    runner.work.put(task)
    runner.main()
    expected = ChatTemplate(config["chat_template"]).render(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2+2?"}],
        enable_thinking=False, reasoning_effort="none")
    assert expected.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
    ids = runner.generator.model.tokenize(expected, add_bos=0)
    progress = [c for c in chunks_of(events, task) if isinstance(c, PrefillProgressChunk)]
    assert progress[-1].total_tokens == len(ids)
    assert token_chunks(events, task)[-1].usage.prompt_tokens == len(ids)
    runner.work.put(Shutdown())
    runner.main()


def test_a_request_that_cannot_start_ends_with_an_error_chunk_and_others_run(models_dir):
    runner, builder, events, _ = start_runner(models_dir)
    bad = generation("", max_output_tokens=3, temperature=0.0)  # no template, no text: nothing to answer
    good = generation(PROMPT, max_output_tokens=3, temperature=0.0)
    runner.work.put(bad)
    runner.work.put(good)
    runner.main()
    errors = [c for c in chunks_of(events, bad) if isinstance(c, ErrorChunk)]
    assert len(errors) == 1 and "no text" in errors[0].error_message
    assert len(token_chunks(events, good)) == 3
    runner.work.put(Shutdown())
    runner.main()


def test_serve_prefill_is_there_and_says_why_it_cannot(models_dir):
    runner, builder, events, _ = start_runner(models_dir)
    with pytest.raises(NotImplementedError, match="KV"):
        runner.generator.serve_prefill(object(), None)
    runner.work.put(Shutdown())
    runner.main()


def run_in_threads(runners):
    """Runs each runner double's main loop in its own thread (one per rank, as EXO runs one
    process per rank) and fails with whatever any of them raised."""
    import threading
    errors = []

    def run(r):
        try:
            r.main()
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)
    threads = [threading.Thread(target=run, args=(r,)) for r in runners]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors


def test_two_rank_pipeline_under_two_runners(models_dir, exo_run):
    """Two runner doubles (threads), one per rank of an IpexRing-style instance: layers [0, 2)
    and [2, 4), the ring's endpoints from hosts_by_node, every rank given the same tasks."""
    from conftest import free_tcp_ports
    expect_text, expect_tokens, _ = exo_run_greedy(exo_run, TINY_LLAMA, PROMPT, 12)
    ports = free_tcp_ports(2)
    hosts = [types.SimpleNamespace(ip="127.0.0.1", port=p) for p in ports]
    task = generation(PROMPT, max_output_tokens=12, temperature=0.0)
    runners = []
    for rank in range(2):
        events, cancels = Channel(), Channel()
        builder = IpexBuilder(model_id=MODEL_ID, event_sender=events, cancel_receiver=cancels,
                              models_dir=str(models_dir))
        runner = RunnerDouble(bound_instance(start=2 * rank, end=2 * rank + 2, rank=rank, world=2, hosts=hosts),
                              builder, events)
        for t in (ConnectToGroup(), LoadModel(), StartWarmup(), task):  # a Shutdown now would end the task
            runner.work.put(t)
        runners.append((runner, builder, events))

    run_in_threads([r for r, _, _ in runners])
    (r0, b0, ev0), (r1, b1, ev1) = runners
    assert r0.statuses[:3] == [("RunnerIdle",), ("RunnerConnecting",), ("RunnerConnected",)]
    assert ("RunnerLoading", 2, 2) in r0.statuses and ("RunnerLoading", 2, 2) in r1.statuses
    got = token_chunks(ev0, task)
    assert [c.token_id for c in got] == expect_tokens and "".join(c.text for c in got) == expect_text
    assert not token_chunks(ev1, task)  # only rank 0 streams
    assert task.task_id in completed(ev0) and task.task_id in completed(ev1)
    for r, _, _ in runners:
        r.work.put(Shutdown())
        r.main()
    assert r0.statuses[-1] == r1.statuses[-1] == ("RunnerShutdown",)
    assert b0.link is None and b1.link is None and b1.runtime is None


def acknowledged(events):
    return {e[1] for e in events.items if isinstance(e, tuple) and e[0] == "TaskAcknowledged"}


def test_supervisor_shutdown_cancel_all_then_closed_channel_ends_requests_without_raising(models_dir):
    """EXO's RunnerSupervisor, going down (supervisor.py run()'s finally), sends CANCEL_ALL_TASKS
    on the cancel channel and closes it; EXO's MpReceiver.collect() then raises EndOfStream
    (losing the cancel it had read) and ClosedResourceError afterwards. The engine must end
    every request as cancelled, not raise out of step() (which would crash the runner)."""
    a = generation(PROMPT, max_output_tokens=10000, temperature=0.0)
    b = generation("Hello world", max_output_tokens=10000, temperature=0.0)
    sent = []

    def after_step(runner):
        if len(token_chunks(events, a)) == 2 and not sent:
            sent.append(1)
            cancels.send(CANCEL_ALL_TASKS)
            cancels.close()

    runner, builder, events, cancels = start_runner(models_dir)
    runner.after_step = after_step
    runner.work.put(a)
    runner.work.put(b)
    runner.main()
    assert runner.statuses[-1] == ("RunnerReady",) and not runner.active_tasks
    assert len(token_chunks(events, a)) == 2 and not ({a.task_id, b.task_id} & completed(events))
    runner.after_step = lambda r: None
    after = generation(PROMPT, max_output_tokens=3, temperature=0.0)  # the closed channel is not read again
    runner.work.put(after)
    runner.main()
    assert len(token_chunks(events, after)) == 3 and after.task_id in completed(events)
    runner.work.put(Shutdown())
    runner.main()


def test_cancels_sent_before_the_task_reaches_the_engine(models_dir):
    """The supervisor's cancel travels on its own channel while the task may still wait in the
    runner's work queue: a cancel-all sent before a task does not end it (cleared at submit, as
    MLX's submit clears it), but still ends what was running; a cancel of a task id the engine
    has not seen yet ends that task once it is submitted."""
    runner, builder, events, cancels = start_runner(models_dir)
    cancels.send(CANCEL_ALL_TASKS)  # while idle
    first = generation(PROMPT, max_output_tokens=3, temperature=0.0)
    runner.work.put(first)
    runner.main()
    assert len(token_chunks(events, first)) == 3 and first.task_id in completed(events)

    early = generation(PROMPT, max_output_tokens=50, temperature=0.0)
    cancels.send(early.task_id)  # before the runner has it
    runner.work.put(early)
    runner.main()
    assert runner.statuses[-1] == ("RunnerReady",) and not runner.active_tasks
    assert not token_chunks(events, early) and early.task_id not in completed(events)

    running = generation(PROMPT, max_output_tokens=10000, temperature=0.0)
    later = generation("Hello world", max_output_tokens=4, temperature=0.0)

    def after_step(r):  # cancel-all, then a new task read before the engine's next step
        if len(token_chunks(events, running)) == 2 and later.task_id not in r.seen:
            cancels.send(CANCEL_ALL_TASKS)
            r.work.put(later)
    runner.after_step = after_step
    runner.work.put(running)
    runner.main()
    assert len(token_chunks(events, running)) == 2 and running.task_id not in completed(events)
    assert len(token_chunks(events, later)) == 4 and later.task_id in completed(events)
    assert {first.task_id, early.task_id, running.task_id, later.task_id} <= acknowledged(events)
    runner.work.put(Shutdown())
    runner.main()


def test_shutdown_before_load_closes_the_builder(models_dir):
    """runner.py shutdown(): `self.generator.close()` whatever the generator is: a Shutdown
    before LoadModel closes the builder (base.py's Builder.close)."""
    events, cancels = Channel(), Channel()
    builder = IpexBuilder(model_id=MODEL_ID, event_sender=events, cancel_receiver=cancels, models_dir=str(models_dir))
    runner = RunnerDouble(bound_instance(), builder, events)
    runner.work.put(Shutdown())
    runner.main()
    assert runner.statuses[-1] == ("RunnerShutdown",) and builder.runtime is None


def test_rendered_task_reaches_the_engine_as_exo_renders_it(tmp_path):
    """Through the runner: a TextGeneration with instructions, a developer message, an empty
    message and a trailing assistant prefill is prompted as EXO's MLX engine prompts it."""
    from exo_ipex.chat_template import ChatTemplate
    folder = tmp_path / MODEL_ID.replace("/", "--")
    folder.mkdir()
    for name in os.listdir(TINY_LLAMA):
        if name != "tokenizer_config.json":
            shutil.copy(os.path.join(TINY_LLAMA, name), folder / name)
    config = json.load(open(os.path.join(TINY_LLAMA, "tokenizer_config.json")))
    here = os.path.dirname(os.path.abspath(__file__))
    config["chat_template"] = open(os.path.join(here, "..", "..", "..", "tests", "data", "chat-templates",
                                                "qwen3.jinja")).read()
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    runner, builder, events, _ = start_runner(tmp_path)
    task = TextGeneration(instance_id="inst", command_id=CommandId(), task_params=TextGenerationTaskParams(
        model=MODEL_ID, instructions="Be brief.", enable_thinking=True, max_output_tokens=2, temperature=0.0,
        input=[InputMessage(role="developer", content="No jokes."), InputMessage(role="user", content="2+2?"),
               InputMessage(role="user", content=""), InputMessage(role="assistant", content="The answer")]))
    runner.work.put(task)
    runner.main()
    expected = ChatTemplate(config["chat_template"]).render(
        [{"role": "system", "content": "Be brief.\nNo jokes."}, {"role": "user", "content": "2+2?"}],
        enable_thinking=True, thinking=True) + "The answer"
    ids = runner.generator.model.tokenize(expected, add_bos=0)
    assert token_chunks(events, task)[-1].usage.prompt_tokens == len(ids)
    runner.work.put(Shutdown())
    runner.main()


def test_two_rank_pipeline_cancel_on_rank_0_ends_the_task_as_cancelled_on_rank_1(models_dir):
    """A request cancelled on rank 0 (its runner's channel) leaves the later rank's runner as
    cancelled too (CancelledResponse, so no TaskStatus Complete there), even when that rank's
    own cancel never comes."""
    from conftest import free_tcp_ports
    ports = free_tcp_ports(2)
    hosts = [types.SimpleNamespace(ip="127.0.0.1", port=p) for p in ports]
    task = generation(PROMPT, max_output_tokens=10000, temperature=0.0)
    runners = []
    for rank in range(2):
        events, cancels = Channel(), Channel()
        builder = IpexBuilder(model_id=MODEL_ID, event_sender=events, cancel_receiver=cancels,
                              models_dir=str(models_dir))
        runner = RunnerDouble(bound_instance(start=2 * rank, end=2 * rank + 2, rank=rank, world=2, hosts=hosts),
                              builder, events)
        for t in (ConnectToGroup(), LoadModel(), StartWarmup(), task):
            runner.work.put(t)
        runners.append((runner, events, cancels))
    (r0, ev0, c0), (r1, ev1, _) = runners

    def after_step(r):
        if len(token_chunks(ev0, task)) == 3 and not c0.items:
            c0.send(task.task_id)
    r0.after_step = after_step

    run_in_threads([r for r, _, _ in runners])
    assert len(token_chunks(ev0, task)) == 3
    assert not r0.active_tasks and not r1.active_tasks
    assert task.task_id not in completed(ev0) and task.task_id not in completed(ev1)
    for r, _, _ in runners:
        r.work.put(Shutdown())
        r.main()


# ------------------------------------------------------------------ continuous batching, prefix reuse

LICENSES_ID = "test-org/tiny-llama-licenses"
SYSTEM = ("You answer questions about software licenses. Quote the license text exactly, name the license, "
          "and say which clauses apply.")
LONG = " ".join(["Permission is hereby granted, free of charge, to any person obtaining a copy of this software"] * 12)


@pytest.fixture
def licenses_dir(tmp_path):
    """The demo model (models/tiny-llama-licenses) in EXO's models directory."""
    os.symlink(LICENSES, tmp_path / LICENSES_ID.replace("/", "--"))
    return tmp_path


def licenses_generation(content, system=None, **params):
    return TextGeneration(instance_id="inst", command_id=CommandId(), task_params=TextGenerationTaskParams(
        model=LICENSES_ID, input=[InputMessage(role="user", content=content)], instructions=system,
        temperature=0.0, **params))


def licenses_runner(models_dir, **builder_kw):
    events, cancels = Channel(), Channel()
    builder = IpexBuilder(model_id=LICENSES_ID, event_sender=events, cancel_receiver=cancels,
                          models_dir=str(models_dir), **builder_kw)
    bound = bound_instance(n_layers=6, end=6)
    bound.bound_shard.model_card.model_id = LICENSES_ID
    runner = RunnerDouble(bound, builder, events)
    for t in (LoadModel(), StartWarmup()):
        runner.work.put(t)
    runner.main()
    return runner, events, cancels


def run_alone(models_dir, tasks):
    """Each task by itself, one after another, whole prompts, no prefix reuse: the reference."""
    runner, events, _ = licenses_runner(models_dir, prefix_cache_bytes=0, prefill_chunk=4096)
    out = {}
    for t in tasks:
        runner.work.put(t)
        runner.main()
        out[t.task_id] = [c.token_id for c in token_chunks(events, t)]
    runner.work.put(Shutdown())
    runner.main()
    return out


def recording(runner, events):
    """Wraps the engine's step(): per step, the tokens each task got and the prefill progress
    (processed, total) each task reported while the step ran."""
    engine, log = runner.generator, []
    step = engine.step

    def recorded(*a, **kw):
        n = len(events.items)
        results = step(*a, **kw)
        progress = {}
        for e in events.items[n:]:
            if isinstance(e, ChunkGenerated) and isinstance(e.chunk, PrefillProgressChunk):
                progress[e.command_id] = (e.chunk.processed_tokens, e.chunk.total_tokens)
        log.append(({tid for tid, r in results if isinstance(r, TokenChunk)}, progress))
        return results

    engine.step = recorded
    return log


def copy_task(t):
    """The same request under a new id (the reference run must not share ids)."""
    return TextGeneration(instance_id="inst", command_id=CommandId(), task_params=t.task_params)


def test_eight_concurrent_requests_join_leave_and_cancel_and_equal_running_alone(licenses_dir):
    """8 running at once (10 submitted: two wait for a slot), mixed prompt lengths (a long one
    prefilled in chunks of 32 beside the others' decode steps), requests joining mid-stream,
    two cancelled (one while prefilling, one while decoding), several sharing a system prompt
    (prefix reuse from running and finished requests): every request's greedy tokens equal the
    same request run alone; a cancelled one's are a prefix of them."""
    lengths = [24, 9, 40, 17, 31, 12, 28, 20, 15, 26]
    prompts = ["Permission is hereby granted", LONG, "THE SOFTWARE IS PROVIDED", "Licensed under the Apache License",
               "Redistribution and use in source and binary forms", "You may obtain a copy of the License at",
               LONG + " subject to the following conditions", "Copyright (c)", "This program is free software",
               "Subject to the terms and conditions"]
    systems = [SYSTEM if i % 3 == 0 else None for i in range(10)]
    tasks = [licenses_generation(p, s, max_output_tokens=n) for p, s, n in zip(prompts, systems, lengths)]
    runner, events, cancels = licenses_runner(licenses_dir, prefill_chunk=32)
    engine = runner.generator
    log = recording(runner, events)
    late = {3: [tasks[6]], 6: [tasks[7], tasks[8]], 9: [tasks[9]]}  # step -> tasks joining then
    cancel_at = {}

    def after_step(r):
        k = len(log)
        for t in late.get(k, []):
            r.work.put(t)
        if k == 4:  # tasks[6] (a long prompt) is still prefilling: cancelled mid-prefill
            cancels.send(tasks[6].task_id)
            cancel_at[tasks[6].task_id] = k
        if len(token_chunks(events, tasks[2])) >= 10 and tasks[2].task_id not in cancel_at:
            cancels.send(tasks[2].task_id)
            cancel_at[tasks[2].task_id] = k

    runner.after_step = after_step
    for t in tasks[:6]:
        runner.work.put(t)
    runner.main()
    assert not runner.active_tasks and runner.statuses[-1] == ("RunnerReady",)
    got = {t.task_id: [c.token_id for c in token_chunks(events, t)] for t in tasks}
    stats = engine.prefix_cache_stats()
    runner.work.put(Shutdown())
    runner.main()

    refs = [copy_task(t) for t in tasks]
    want = run_alone(licenses_dir, refs)
    for t, ref in zip(tasks, refs):
        w = want[ref.task_id]
        if t.task_id in cancel_at:
            assert got[t.task_id] == w[:len(got[t.task_id])] and len(got[t.task_id]) < len(w), t.task_id
            assert t.task_id not in completed(events)
        else:
            assert got[t.task_id] == w and len(w) == t.task_params.max_output_tokens, t.task_id
            assert t.task_id in completed(events)
    assert 0 < len(got[tasks[2].task_id]) and got[tasks[6].task_id] == []

    # 8 requests ran at once, never more; the rest waited for slots
    assert max(len(tokens) for tokens, _ in log) == 8
    # the long prompt went in chunks of at most 32 tokens while others streamed in the same steps
    long_cmd = tasks[1].command_id
    chunk_steps = [(tokens, p[long_cmd]) for tokens, p in log if long_cmd in p]
    seen, total = [p[0] for _, p in chunk_steps], chunk_steps[0][1][1]
    assert total > 64 and seen[-1] == total and all(0 < b - a <= 32 for a, b in zip([0] + seen, seen))
    # (the first step's decodes are its own prompts' first tokens; every later chunk rode with
    # other requests' tokens)
    assert all(tokens - {tasks[1].task_id} for tokens, _ in chunk_steps[1:])
    # the shared system prompt was reused
    assert stats["hits"] >= 1 and stats["cached_prompt_tokens"] >= 8


def test_next_turn_and_shared_system_prompt_reuse_cached_kv_and_report_it(licenses_dir):
    """A conversation's next turn takes over the first turn's cached session (its whole prompt
    and reply), another conversation with the same system prompt copies that prefix; Usage and
    GenerationStats say how much was cached; outputs equal running without the cache; bench mode
    neither reuses nor leaves anything."""
    first = licenses_generation("Which license says THE SOFTWARE IS PROVIDED AS IS?", SYSTEM, max_output_tokens=12)
    runner, events, _ = licenses_runner(licenses_dir)
    engine = runner.generator
    runner.work.put(first)
    runner.main()
    reply = "".join(c.text for c in token_chunks(events, first))
    n_first = token_chunks(events, first)[-1].usage.prompt_tokens
    follow = TextGeneration(instance_id="inst", command_id=CommandId(), task_params=TextGenerationTaskParams(
        model=LICENSES_ID, temperature=0.0, max_output_tokens=10, input=[], chat_template_messages=[
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": "Which license says THE SOFTWARE IS PROVIDED AS IS?"},
            {"role": "assistant", "content": reply}, {"role": "user", "content": "And the Apache License?"}]))
    other = licenses_generation("Is the MIT license permissive?", SYSTEM, max_output_tokens=10)
    bench = licenses_generation("Is the MIT license permissive?", SYSTEM, max_output_tokens=10, bench=True)
    for t in (follow, other, bench):
        runner.work.put(t)
        runner.main()
    last = {t.task_id: token_chunks(events, t)[-1] for t in (first, follow, other, bench)}
    assert last[first.task_id].usage.prompt_tokens_details.cached_tokens == 0
    assert last[first.task_id].stats.prefix_cache_hit == "none"
    # the next turn: the first turn's prompt at least (its reply re-tokenized may differ)
    cached = last[follow.task_id].usage.prompt_tokens_details.cached_tokens
    assert cached >= n_first - 1 and last[follow.task_id].stats.prefix_cache_hit == "partial"
    # the other conversation: the system prompt's tokens and what follows them alike
    shared = last[other.task_id].usage.prompt_tokens_details.cached_tokens
    assert 8 <= shared < last[other.task_id].usage.prompt_tokens - 1
    assert last[bench.task_id].usage.prompt_tokens_details.cached_tokens == 0
    stats = engine.prefix_cache_stats()
    assert stats["hits"] == 2 and stats["cached_prompt_tokens"] == cached + shared
    assert 1 <= stats["entries"] <= 3 and stats["bytes"] <= stats["budget_bytes"]
    runner.work.put(Shutdown())
    runner.main()
    refs = [copy_task(t) for t in (first, follow, other)]
    want = run_alone(licenses_dir, refs)
    for t, ref in zip((first, follow, other), refs):
        assert [c.token_id for c in token_chunks(events, t)] == want[ref.task_id], t.task_id
