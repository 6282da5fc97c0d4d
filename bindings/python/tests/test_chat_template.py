"""Chat templates rendered as transformers renders them: every case of
tests/data/chat-templates/cases.py against the strings transformers' own apply_chat_template
produced (golden.json, made by make_golden.py beside it: transformers 5.17.0, jinja2 3.1.6):
Llama 3.2's and Qwen3's templates (EXO's catalog) with tools, system turns, the thinking switch
and strftime_now, a template that exercises transformers' Jinja environment, and the fixtures'
tokenizer_config.json files (none has a template, which transformers refuses)."""
import datetime
import json
import os
import sys

import jinja2
import pytest

from conftest import REPO
from exo_ipex.chat_template import ChatTemplate, render_task
from exo_ipex.exo_types import InputMessage, TextGenerationTaskParams

DATA = os.path.join(REPO, "tests", "data", "chat-templates")
sys.path.insert(0, DATA)
import cases  # noqa: E402

GOLDEN = cases.golden()["cases"]
ERRORS = {"TemplateError": jinja2.TemplateError, "ValueError": ValueError}


@pytest.mark.parametrize("case", cases.CASES, ids=[c["name"] for c in cases.CASES])
def test_template_renders_as_transformers_does(case):
    expect = GOLDEN[case["name"]]
    template = ChatTemplate(cases.template_text(case), case["tokens"])

    def render():
        return template.render(case["messages"], tools=case.get("tools"),
                               add_generation_prompt=case.get("add_generation_prompt", True), **case["kwargs"])
    if "error" in expect:
        with pytest.raises(ERRORS[expect["error"]]) as e:
            render()
        assert str(e.value) == expect["message"]
        return
    text = expect["text"]
    if "today" in expect:  # strftime_now: the date of the render, here as there
        text = text.replace(expect["today"], datetime.datetime.now().strftime(case["uses_today"]))
    assert render() == text


@pytest.mark.parametrize("name", sorted(n[len("fixture-"):] for n in GOLDEN if n.startswith("fixture-")))
def test_fixture_models_have_templates_exactly_when_transformers_finds_one(name):
    folder = os.path.join(REPO, "models", name) if name == "tiny-llama-licenses" else \
        os.path.join(REPO, "tests", "data", "hf-tiny", name)
    template = ChatTemplate.from_model_dir(folder)
    expect = GOLDEN["fixture-" + name]
    if "error" in expect:
        assert template is None
    else:
        assert template.render([{"role": "user", "content": "Hi"}]) == expect["text"]


def test_tokenizer_config_template_and_special_tokens_are_read(tmp_path):
    """A model folder as transformers saves it: the template in tokenizer_config.json (or in
    chat_template.jinja), special tokens as strings or AddedToken dicts."""
    case = next(c for c in cases.CASES if c["name"] == "llama32-multiturn")
    config = {"bos_token": {"content": "<|begin_of_text|>", "lstrip": False, "__type": "AddedToken"},
              "eos_token": "<|eot_id|>", "chat_template": cases.template_text(case)}
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    t = ChatTemplate.from_model_dir(str(tmp_path))
    assert t.render(case["messages"], **case["kwargs"]) == GOLDEN[case["name"]]["text"]
    del config["chat_template"]
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    assert ChatTemplate.from_model_dir(str(tmp_path)) is None
    (tmp_path / "chat_template.jinja").write_text(cases.template_text(case))
    assert ChatTemplate.from_model_dir(str(tmp_path)).render(case["messages"], **case["kwargs"]) == \
        GOLDEN[case["name"]]["text"]


def test_exo_task_params_become_the_template_messages():
    """EXO's TextGenerationTaskParams: instructions as the system turn before input; the thinking
    switch as EXO resolves it; chat_template_messages, when given, instead of both."""
    case = next(c for c in cases.CASES if c["name"] == "qwen3-thinking-off")
    template = ChatTemplate(cases.template_text(case), case["tokens"])
    system, ask = case["messages"]
    params = TextGenerationTaskParams(model="m", input=[InputMessage(role="user", content=ask["content"])],
                                      instructions=system["content"], reasoning_effort="none")
    assert render_task(template, params) == (GOLDEN[case["name"]]["text"], True)
    multi = next(c for c in cases.CASES if c["name"] == "qwen3-tools")
    params = TextGenerationTaskParams(model="m", input=[InputMessage(role="user", content="ignored")],
                                      chat_template_messages=multi["messages"], tools=multi["tools"],
                                      enable_thinking=False)
    assert render_task(ChatTemplate(cases.template_text(multi), multi["tokens"]), params)[0] == \
        GOLDEN[multi["name"]]["text"]
