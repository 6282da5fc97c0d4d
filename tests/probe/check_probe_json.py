"""Checks exo-probe --json on this machine: the three plugins, the CPU device selected, PoCL's
device listed as an alternate of it, and level_zero without devices and with the loader's
reason — or, with the test driver, two fake Arc GPUs ranked first (and selected: the level_zero
plugin runs graphs)."""
import json
import subprocess
import sys

probe, mode = sys.argv[1], sys.argv[2]
extra = sys.argv[3:]
run = subprocess.run([probe, "--json", *extra], capture_output=True, text=True, timeout=120)
assert run.returncode == 0, f"exo-probe exited {run.returncode}: {run.stderr}"
doc = json.loads(run.stdout)
assert set(doc) >= {"plugins", "devices", "selected"}, doc.keys()
plugins = {p["name"]: p for p in doc["plugins"]}
assert {"cpu_amx", "opencl", "level_zero"} <= set(plugins), plugins.keys()
devices = doc["devices"]
cpu = [d for d in devices if d["plugin"] == "cpu_amx"]
pocl = [d for d in devices if d["plugin"] == "opencl" and d["type"] == "cpu"]
assert cpu and cpu[0]["usable"], cpu
assert pocl, "PoCL's device is not listed"
assert pocl[0]["alternate_of"] == cpu[0]["position"], pocl[0]
expected_selected = "level_zero" if mode == "test-driver" else "cpu_amx"
assert doc["selected"] and doc["selected"]["plugin"] == expected_selected, doc["selected"]

if mode == "no-driver":
    l0 = plugins["level_zero"]
    assert l0["devices"] == 0, l0
    assert "zeInit" in l0["reason"] or "loader" in l0["reason"], l0["reason"]
elif mode == "test-driver":
    gpus = [d for d in devices if d["plugin"] == "level_zero"]
    assert len(gpus) == 2, gpus
    assert [d["position"] for d in gpus] == [0, 1], [d["position"] for d in gpus]
    assert all("Arc" in d["name"] and d["type"] == "discrete-gpu" for d in gpus)
    assert gpus[0]["fingerprint"] != gpus[1]["fingerprint"]
else:
    raise SystemExit(f"unknown mode {mode}")
print("exo-probe --json: OK", mode, "selected", doc["selected"]["plugin"])
