"""The adapter against EXO's own source (../shared/reference/exo-src/, EXO at b5375f8), read as
text: EXO itself cannot be imported here (it needs pydantic v2; Debian 12 ships pydantic 1.10),
so what `exo_ipex.exo_types` imports when EXO is importable, and what the runner and the MLX
engine call, are checked against EXO's files instead of a fake EXO."""
import ast
import inspect
import os
import re

import pytest

from conftest import REPO
from exo_ipex import exo_engine, exo_types

EXO_SRC = os.path.normpath(os.path.join(REPO, "..", "shared", "reference", "exo-src", "src"))
pytestmark = pytest.mark.skipif(not os.path.isdir(EXO_SRC), reason="EXO reference sources not present")


def module_file(module):
    base = os.path.join(EXO_SRC, *module.split("."))
    for path in (base + ".py", os.path.join(base, "__init__.py")):
        if os.path.exists(path):
            return path
    return None


def defined_names(path):
    """Names a module defines or imports, read as text: EXO's sources use Python 3.12 syntax
    (`type X = ...`, `class Q[T]`) that Debian 12's Python 3.11 cannot parse."""
    text = open(path, encoding="utf-8").read()
    names = set(re.findall(r"^(?:class|def)\s+(\w+)", text, re.M))
    names |= set(re.findall(r"^(\w+)\s*(?::[^=\n]+)?=", text, re.M))
    names |= set(re.findall(r"^type\s+(\w+)", text, re.M))
    for block in re.findall(r"^from\s+\S+\s+import\s+(\([^)]*\)|[^\n]+)", text, re.M):
        for part in block.strip("()").split(","):
            bits = part.split()
            if bits:
                names.add(bits[-1])
    return names


def exo_imports():
    """(module, name) for every `from exo... import name` in exo_types.py's EXO branch."""
    tree = ast.parse(inspect.getsource(exo_types))
    return [(n.module, a.name) for n in ast.walk(tree)
            if isinstance(n, ast.ImportFrom) and n.module and n.module.startswith("exo.") for a in n.names]


def test_every_exo_name_the_adapter_imports_is_where_exo_defines_it():
    checked = 0
    for module, name in exo_imports():
        path = module_file(module)
        if module == "exo.api.types":  # a package re-exporting api/types/api.py
            path = module_file("exo.api.types.api")
        if path is None:  # not among the reference excerpts (events.py): not checkable here
            continue
        assert name in defined_names(path), f"{name} is not in EXO's {module}"
        checked += 1
    assert checked >= 15


def test_adapter_implements_every_abstract_method_of_exo_builder_and_engine():
    tree = ast.parse(open(os.path.join(EXO_SRC, "exo", "worker", "engines", "base.py")).read())
    for cls in (c for c in tree.body if isinstance(c, ast.ClassDef)):
        ours = {"Engine": exo_engine.IpexEngine, "Builder": exo_engine.IpexBuilder}[cls.name]
        for f in cls.body:
            if isinstance(f, ast.FunctionDef) and any(getattr(d, "id", None) == "abstractmethod"
                                                      for d in f.decorator_list):
                exo_args = [a.arg for a in f.args.args]
                got = inspect.signature(getattr(ours, f.name))
                params = list(got.parameters)
                # every argument EXO passes positionally is accepted in the same position
                assert params[:len(exo_args)] == exo_args, f"{cls.name}.{f.name}: {params} vs EXO {exo_args}"


def test_bootstrap_keywords_and_the_cancel_channel_method_are_the_ones_exo_uses():
    """bootstrap.py makes the MLX builder with keywords (model_id, event_sender,
    cancel_receiver); the documented patch makes ours the same way. The MLX engine reads its
    cancel receiver with one MpReceiver method: the adapter must call that one."""
    boot = open(os.path.join(EXO_SRC, "exo", "worker", "runner", "bootstrap.py")).read()
    call = boot[boot.index("builder = MlxBuilder("):]
    keywords = re.findall(r"(\w+)=", call[:call.index(")\n")])
    params = inspect.signature(exo_engine.IpexBuilder).parameters
    assert keywords == ["model_id", "event_sender", "cancel_receiver"]
    assert all(k in params for k in keywords)
    batch = open(os.path.join(EXO_SRC, "exo", "worker", "runner", "llm_inference", "batch_generator.py")).read()
    methods = set(re.findall(r"self\.cancel_receiver\.(\w+)\(", batch))
    ours = set(re.findall(r"(?:self\.cancel_receiver|rx)\.(\w+)\(", inspect.getsource(exo_engine)))
    assert methods == {"collect"} and ours == methods


def test_runner_double_matches_the_runner_calls_on_the_generator():
    """Every method runner.py calls on its generator (builder or engine) is one the double calls
    too, and no other: a double that drifted from runner.py would hide a mismatch."""
    here = os.path.dirname(os.path.abspath(__file__))
    runner = open(os.path.join(EXO_SRC, "exo", "worker", "runner", "runner.py")).read()
    double = open(os.path.join(here, "exo_runner_double.py")).read()
    calls = set(re.findall(r"self\.generator\.(\w+)\(", runner))
    assert calls == {"connect", "load", "build", "warmup", "close", "submit", "step", "serve_prefill"}
    assert set(re.findall(r"self\.generator\.(\w+)\(", double)) == calls - {"serve_prefill"}  # prefill: no server
    sent = set(re.findall(r"event_sender\.send\(\s*(\w+)\(", runner))
    assert sent == {"RunnerStatusUpdated", "TaskStatusUpdated", "TaskAcknowledged", "ChunkGenerated"}
