"""The chat-template cases: which template, which messages and tools, which keyword arguments.
make_golden.py renders each with transformers' apply_chat_template into golden.json; the
binding's tests render each with exo_ipex.chat_template and compare."""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))

LLAMA_TOKENS = {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"}
QWEN_TOKENS = {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"}
FEATURE_TOKENS = {"bos_token": "<s>", "eos_token": "</s>"}

# A tool whose keys are not sorted and whose text holds non-ASCII and HTML characters: HF's
# tojson keeps order, writes UTF-8 as is and escapes nothing (Jinja's own tojson would not).
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Température à <b>Paris</b> & ailleurs",
    "parameters": {"type": "object", "required": ["city"],
                   "properties": {"unit": {"type": "string", "enum": ["c", "f"]},
                                  "city": {"type": "string", "description": "城市"}}}}}

SYSTEM = {"role": "system", "content": "  You are terse.  "}
ASK = {"role": "user", "content": "What is the capital of France?"}
ANSWER = {"role": "assistant", "content": "Paris."}
AGAIN = {"role": "user", "content": "And of Italy?  "}
THOUGHT = {"role": "assistant", "content": "<think>\nThe user asks about France.\n</think>\n\nParis."}
WEATHER_ASK = {"role": "user", "content": "Weather in Paris?"}
CALL = {"role": "assistant", "content": "", "tool_calls": [
    {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "c"}}}]}
RESULT = {"role": "tool", "content": "{\"temp\": 21}"}

CASES = [
    # Llama 3.2 (EXO's Llama-3.2-*-Instruct cards)
    {"name": "llama32-user", "template": "llama-3.2-instruct.jinja", "tokens": LLAMA_TOKENS,
     "messages": [ASK], "kwargs": {"date_string": "26 Jul 2024"}},
    {"name": "llama32-multiturn", "template": "llama-3.2-instruct.jinja", "tokens": LLAMA_TOKENS,
     "messages": [SYSTEM, ASK, ANSWER, AGAIN], "kwargs": {"date_string": "01 Jan 2025"}},
    {"name": "llama32-no-generation-prompt", "template": "llama-3.2-instruct.jinja", "tokens": LLAMA_TOKENS,
     "messages": [SYSTEM, ASK, ANSWER], "add_generation_prompt": False, "kwargs": {"date_string": "26 Jul 2024"}},
    {"name": "llama32-tools-in-user", "template": "llama-3.2-instruct.jinja", "tokens": LLAMA_TOKENS,
     "messages": [WEATHER_ASK, CALL, RESULT], "tools": [WEATHER], "kwargs": {"date_string": "26 Jul 2024"}},
    {"name": "llama32-tools-in-system", "template": "llama-3.2-instruct.jinja", "tokens": LLAMA_TOKENS,
     "messages": [SYSTEM, WEATHER_ASK], "tools": [WEATHER],
     "kwargs": {"date_string": "26 Jul 2024", "tools_in_user_message": False}},
    {"name": "llama32-today", "template": "llama-3.2-instruct.jinja", "tokens": LLAMA_TOKENS,
     "messages": [ASK], "kwargs": {}, "uses_today": "%d %b %Y"},
    {"name": "llama32-tools-without-user", "template": "llama-3.2-instruct.jinja", "tokens": LLAMA_TOKENS,
     "messages": [SYSTEM], "tools": [WEATHER], "kwargs": {"date_string": "26 Jul 2024"}},
    # Qwen3 (EXO's Qwen3-0.6B / 30B-A3B cards): the thinking switch
    {"name": "qwen3-user", "template": "qwen3.jinja", "tokens": QWEN_TOKENS, "messages": [ASK], "kwargs": {}},
    {"name": "qwen3-thinking-off", "template": "qwen3.jinja", "tokens": QWEN_TOKENS, "messages": [SYSTEM, ASK],
     "kwargs": {"enable_thinking": False}},
    {"name": "qwen3-thinking-on", "template": "qwen3.jinja", "tokens": QWEN_TOKENS, "messages": [SYSTEM, ASK],
     "kwargs": {"enable_thinking": True}},
    {"name": "qwen3-multiturn-thoughts", "template": "qwen3.jinja", "tokens": QWEN_TOKENS,
     "messages": [ASK, THOUGHT, AGAIN], "kwargs": {}},
    {"name": "qwen3-last-turn-thought", "template": "qwen3.jinja", "tokens": QWEN_TOKENS,
     "messages": [ASK, THOUGHT], "add_generation_prompt": False, "kwargs": {}},
    {"name": "qwen3-tools", "template": "qwen3.jinja", "tokens": QWEN_TOKENS,
     "messages": [SYSTEM, WEATHER_ASK, CALL, RESULT], "tools": [WEATHER], "kwargs": {"enable_thinking": False}},
    # transformers' environment itself
    {"name": "features", "template": "hf-features.jinja", "tokens": FEATURE_TOKENS,
     "messages": [ASK, {"role": "skip", "content": "x"}, {"role": "assistant", "content": "  Paris.  "},
                  {"role": "stop", "content": "y"}, AGAIN], "tools": [WEATHER], "kwargs": {"extra": 7}},
    {"name": "features-no-prompt", "template": "hf-features.jinja", "tokens": FEATURE_TOKENS,
     "messages": [ASK], "add_generation_prompt": False, "kwargs": {}},
    {"name": "features-raise", "template": "hf-features.jinja", "tokens": FEATURE_TOKENS,
     "messages": [], "tools": [WEATHER], "kwargs": {}},
]


def template_text(case):
    with open(os.path.join(HERE, case["template"]), encoding="utf-8") as f:
        return f.read()


def golden():
    with open(os.path.join(HERE, "golden.json"), encoding="utf-8") as f:
        return json.load(f)
