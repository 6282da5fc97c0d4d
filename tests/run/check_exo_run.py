"""exo-run end to end on the embedded default model: greedy text equals transformers' for every
prompt of golden.json; --json streams one object per token then stats; --tokenize prints the
ids of the tokenizer cases; no arguments runs the default prompt and ends with a stats line."""
import json
import os
import subprocess
import sys

exo_run, model_dir, cases_path = sys.argv[1], sys.argv[2], sys.argv[3]


def run(*args):
    r = subprocess.run([exo_run, *args], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"exo-run {args} exited {r.returncode}: {r.stderr}"
    return r.stdout


golden = json.load(open(os.path.join(model_dir, "golden.json")))
for p in golden["prompts"]:
    out = run("--model", model_dir, "--temperature", "0", "-n", str(len(p["greedy"])), "--prompt", p["text"])
    assert p["text"] + p["greedy_text"] in out, f"greedy text differs for {p['text']!r}:\n{out}"

lines = run("--model", model_dir, "--temperature", "0", "-n", "8", "--json", "-p", golden["prompts"][0]["text"]).splitlines()
events = [json.loads(line) for line in lines]
assert events[-1]["type"] == "stats" and events[-1]["generation_tokens"] == 8, events[-1]
assert [e["token"] for e in events[:8]] == golden["prompts"][0]["greedy"][:8], events[:8]

default = run()
assert "device: cpu_amx:0" in default and "Permission is hereby granted" in default, default
assert default.rstrip().splitlines()[-1].startswith("stats:"), default

fixture = os.path.join(os.path.dirname(cases_path), "llama")
for case in json.load(open(cases_path)):
    last = run("--model", fixture, "--tokenize", case["text"]).rstrip().splitlines()[-1]
    assert json.loads(last) == case["ids"], f"--tokenize {case['text']!r}: {last} != {case['ids']}"
print("exo-run: OK")
