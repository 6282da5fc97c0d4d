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
    switch as the task carries it; chat_template_messages, when given, instead of both."""
    case = next(c for c in cases.CASES if c["name"] == "qwen3-thinking-off")
    template = ChatTemplate(cases.template_text(case), case["tokens"])
    system, ask = case["messages"]
    params = TextGenerationTaskParams(model="m", input=[InputMessage(role="user", content=ask["content"])],
                                      instructions=system["content"], reasoning_effort="none",
                                      enable_thinking=False)  # as EXO's API adapters resolve the pair
    assert render_task(template, params) == (GOLDEN[case["name"]]["text"], True)
    multi = next(c for c in cases.CASES if c["name"] == "qwen3-tools")
    params = TextGenerationTaskParams(model="m", input=[InputMessage(role="user", content="ignored")],
                                      chat_template_messages=multi["messages"], tools=multi["tools"],
                                      enable_thinking=False)
    assert render_task(ChatTemplate(cases.template_text(multi), multi["tokens"]), params)[0] == \
        GOLDEN[multi["name"]]["text"]


# A template that shows what it was given: the messages and the thinking variables.
_ECHO = ("{% for m in messages %}[{{ m.role }}|{{ m.content }}"
         "{% if m.tool_calls %}|{{ m.tool_calls[0].function.arguments.city }}{% endif %}"
         "{% if m.thinking %}|think:{{ m.thinking }}{% endif %}]{% endfor %}"
         "{% if add_generation_prompt %}<gen>{% endif %}"
         "|et={{ enable_thinking if enable_thinking is defined else 'undef' }}"
         "|t={{ thinking if thinking is defined else 'undef' }}"
         "|re={{ reasoning_effort if reasoning_effort is defined else 'undef' }}"
         "|tools={{ tools | length if tools is not none else 'none' }}")


def _params(**kw):
    kw.setdefault("model", "m")
    kw.setdefault("input", [])
    return TextGenerationTaskParams(**kw)


def test_task_messages_are_built_as_exo_mlx_engine_builds_them():
    """worker/engines/mlx/utils_mlx.py at b5375f8: input messages with empty content skipped
    (apply_chat_template); every system / developer message merged into one leading system
    message (consolidate_system_messages); a trailing assistant message is a prefill appended
    after the generation prompt (render_chat_template); the thinking switch passed as the task
    carries it, enable_thinking also as `thinking`, nothing resolved."""
    t = ChatTemplate(_ECHO)
    p = _params(instructions="Be brief.", input=[InputMessage(role="user", content="Hi"),
                                                 InputMessage(role="developer", content="No jokes."),
                                                 InputMessage(role="user", content=""),
                                                 InputMessage(role="assistant", content="Sure: ")],
                enable_thinking=False)
    assert render_task(t, p) == ("[system|Be brief.\nNo jokes.][user|Hi]<gen>|et=False|t=False|re=undef|tools=none"
                                 "Sure: ", True)
    only_effort = render_task(t, _params(input=[InputMessage(role="user", content="Hi")], reasoning_effort="high"))[0]
    assert only_effort.endswith("|et=undef|t=undef|re=high|tools=none")


def test_chat_template_messages_are_normalized_as_exo_does():
    """chat_template_messages used whenever not None; tool-call arguments given as a JSON string
    reach the template as an object (_normalize_tool_calls); for gpt-oss models an assistant's
    reasoning_content is its `thinking`; an empty list is an empty conversation (refused)."""
    t = ChatTemplate(_ECHO)
    call = {"id": "c1", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Oslo"}'}}
    msgs = [{"role": "user", "content": "Weather?"},
            {"role": "assistant", "content": "", "tool_calls": [call], "reasoning_content": "look it up"},
            {"role": "tool", "content": "sunny"}]
    tools = [{"type": "function", "function": {"name": "weather", "parameters": {}}}]
    p = _params(input=[InputMessage(role="user", content="ignored")], chat_template_messages=msgs, tools=tools)
    assert render_task(t, p)[0] == "[user|Weather?][assistant||Oslo][tool|sunny]<gen>|et=undef|t=undef|re=undef|tools=1"
    assert call["function"]["arguments"] == '{"city": "Oslo"}'  # the task's own data is left as it was
    p = _params(model="openai/gpt-oss-20b", chat_template_messages=msgs)
    assert "[assistant||Oslo|think:look it up]" in render_task(t, p)[0]
    with pytest.raises(ValueError, match="empty conversation"):
        render_task(t, _params(input=[InputMessage(role="user", content="Hi")], chat_template_messages=[]))


def test_lossy_tool_schema_guard_is_dropped_when_tools_are_given():
    """EXO's _patch_lossy_chat_template: gpt-oss's `inner_type|length > 50` guard removed for a
    request with tools."""
    src = ("{% set inner_type = 'x' * 60 %}{% if inner_type == \"object | object\" or inner_type|length > 50 %}"
           "any[]{% else %}typed{% endif %}")
    t = ChatTemplate(src)
    msgs = [InputMessage(role="user", content="Hi")]
    assert render_task(t, _params(input=msgs))[0] == "any[]"
    assert render_task(t, _params(input=msgs, tools=[{"type": "function"}]))[0] == "typed"
