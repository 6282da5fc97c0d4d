"""A model's chat template, rendered as transformers' `apply_chat_template` renders it.

EXO's MLX engine turns a request's messages into the prompt with the model's own template
(tokenizer_config.json `chat_template`, or chat_template.jinja). The same prompt has to reach
this engine, so the template runs in the same Jinja environment transformers builds
(transformers/utils/chat_template_utils.py `_compile_jinja_template`): a sandboxed, immutable
environment with trim_blocks and lstrip_blocks, the loopcontrols extension, a `generation` block
tag (transformers uses it to mark assistant tokens; rendering it is a pass-through), its own
`tojson` (no HTML escaping, non-ASCII kept, key order kept, indent / separators / sort_keys
options), and the globals `raise_exception` and `strftime_now`. The render gets `messages`,
`tools`, `documents`, `add_generation_prompt`, the tokenizer's special tokens (`bos_token`,
`eos_token`, ...) and any further keyword (enable_thinking, date_string, ...), as in
transformers. Rendered text is tokenized without adding BOS: the template writes the special
tokens it wants (transformers: add_special_tokens=False after a chat template)."""
import datetime
import json
import os
import re

import jinja2
import jinja2.ext
import jinja2.nodes
import jinja2.sandbox

from .errors import InvalidArgument

# The special-token attributes a transformers tokenizer passes to the template, where set.
SPECIAL_TOKEN_NAMES = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")


class _GenerationTag(jinja2.ext.Extension):
    """`{% generation %}...{% endgeneration %}`: transformers records which characters are the
    assistant's; the text itself is the block's body."""
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_render"), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


def _raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def _tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def _strftime_now(fmt):
    return datetime.datetime.now().strftime(fmt)


def _environment():
    env = jinja2.sandbox.ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                                       extensions=[_GenerationTag, jinja2.ext.loopcontrols])
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    return env


def _token_text(value):
    """A special token as tokenizer_config.json writes it: a string or an AddedToken dict."""
    if isinstance(value, dict):
        return value.get("content")
    return value if isinstance(value, str) else None


class ChatTemplate:
    """One template source plus the tokenizer's special tokens."""

    def __init__(self, source, special_tokens=None, named=None):
        """source: the default template text. named: {name: text} when tokenizer_config.json
        lists several (transformers picks "tool_use" when tools are given and it exists)."""
        self.source = source
        self.named = dict(named or {})
        self.special_tokens = {k: v for k, v in (special_tokens or {}).items() if v is not None}
        self._env = _environment()
        self._compiled = {}

    @classmethod
    def from_model_dir(cls, model_dir):
        """The model folder's template, or None when it has none (a base model)."""
        config = {}
        path = os.path.join(model_dir, "tokenizer_config.json")
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                config = json.load(f)
        special = {name: _token_text(config.get(name)) for name in SPECIAL_TOKEN_NAMES}
        extra = config.get("additional_special_tokens")
        if isinstance(extra, list):
            special["additional_special_tokens"] = [_token_text(t) for t in extra]
        source, named = config.get("chat_template"), {}
        if isinstance(source, list):  # [{"name": ..., "template": ...}]
            named = {t["name"]: t["template"] for t in source}
            source = named.get("default")
        jinja_file = os.path.join(model_dir, "chat_template.jinja")
        if source is None and os.path.exists(jinja_file):  # newer transformers save it beside
            with open(jinja_file, encoding="utf-8") as f:
                source = f.read()
        if source is None and not named:
            return None
        return cls(source, special, named)

    def _template(self, tools):
        key = "tool_use" if tools and "tool_use" in self.named else None
        src = self.named[key] if key else self.source
        if src is None:
            raise InvalidArgument(-1, "the model's chat templates include no default one", "chat_template")
        if key not in self._compiled:
            self._compiled[key] = self._env.from_string(src)
        return self._compiled[key]

    def render(self, messages, tools=None, add_generation_prompt=True, documents=None, **kwargs):
        """The prompt text. A template's raise_exception surfaces as jinja2's TemplateError."""
        if not messages:  # transformers refuses before rendering
            raise ValueError("Cannot apply chat template to an empty conversation. Provide at least one message.")
        variables = {**self.special_tokens, **kwargs}
        return self._template(tools).render(messages=messages, tools=tools, documents=documents,
                                            add_generation_prompt=add_generation_prompt, **variables)


def _plain(value):
    """EXO's message values (str subclasses, pydantic models) as plain JSON-like data, which is
    what transformers' templates see after EXO's model_dump."""
    if hasattr(value, "model_dump"):
        return _plain(value.model_dump())
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, str):
        return str(value)
    return value


def messages_of(params):
    """The chat of EXO's TextGenerationTaskParams as EXO's MLX engine builds it
    (worker/engines/mlx/utils_mlx.py `apply_chat_template`, `render_chat_template`,
    `consolidate_system_messages`, `_normalize_tool_calls` at b5375f8):
    `chat_template_messages` when not None (they keep tool calls and reasoning), else
    `instructions` as a system message and the `input` messages whose content is not empty; then
    every system / developer message merged into one system message first (non-empty contents
    joined by newlines); JSON-string tool-call arguments parsed into objects; for gpt-oss models an
    assistant's `reasoning_content` as its `thinking`."""
    if params.chat_template_messages is not None:
        messages = [_plain(m) for m in params.chat_template_messages]
    else:
        messages = []
        if params.instructions:
            messages.append({"role": "system", "content": str(params.instructions)})
        messages.extend({"role": str(m.role), "content": str(m.content)} for m in params.input if m.content)
    system_parts, rest = [], []
    for m in messages:
        if m.get("role") in ("system", "developer"):
            if m.get("content", ""):
                system_parts.append(m.get("content", ""))
        else:
            rest.append(m)
    if system_parts:
        rest.insert(0, {"role": "system", "content": "\n".join(system_parts)})
    for m in rest:
        _normalize_tool_calls(m)
    if "gpt-oss" in str(params.model).lower():
        for m in rest:
            if m.get("role") == "assistant" and "thinking" not in m:
                rc = m.get("reasoning_content")
                if isinstance(rc, str) and rc:
                    m["thinking"] = rc
    return rest


def _normalize_tool_calls(message):
    """OpenAI's tool_calls[].function.arguments is a JSON string; EXO hands templates the object."""
    calls = message.get("tool_calls")
    if not calls or not isinstance(calls, list):
        return
    for call in calls:
        func = call.get("function") if isinstance(call, dict) else None
        if isinstance(func, dict) and isinstance(func.get("arguments"), str):
            try:
                func["arguments"] = json.loads(func["arguments"])
            except json.JSONDecodeError:
                pass


def template_kwargs(params):
    """The thinking switch as EXO's MLX engine passes it to the template: `enable_thinking` and
    `thinking` (Qwen3 / GLM read the one, DeepSeek the other) when the task sets enable_thinking,
    `reasoning_effort` when it sets that; nothing resolved here (EXO's API adapters resolve the
    pair before the task is made, text_generation.resolve_reasoning_params)."""
    kw = {}
    if params.enable_thinking is not None:
        kw["enable_thinking"] = params.enable_thinking
        kw["thinking"] = params.enable_thinking
    if params.reasoning_effort is not None:
        kw["reasoning_effort"] = params.reasoning_effort
    return kw


# EXO's _patch_lossy_chat_template: gpt-oss-style templates collapse nested object schemas in
# tools past a length; EXO drops the length guard when a request has tools.
_LOSSY_TEMPLATE_PATTERN = re.compile(r"""inner_type\s*==\s*["']object \| object["']\s*or\s*inner_type\|length\s*>\s*\d+""")


def _patched_lossy(source):
    if not isinstance(source, str):
        return None
    patched, n = _LOSSY_TEMPLATE_PATTERN.subn(lambda m: m.group(0).split(" or ")[0], source)
    return patched if n > 0 else None


def render_task(template, params):
    """(prompt text, True) rendered with the model's template as EXO's MLX engine renders it
    (add_generation_prompt, tools, thinking switch; a trailing assistant message is a prefill:
    rendered without it, its content appended after the generation prompt), or, for a model
    without a template, (the messages' contents joined by newlines, False): such a prompt is
    tokenized the way the tokenizer says (BOS as configured), a templated one with no BOS added.
    (DeepSeek V3.2 / V4, which EXO encodes with its own vendored encoders, are not covered.)"""
    messages = messages_of(params)
    if template is None:
        text = "\n".join(m["content"] for m in messages if isinstance(m.get("content"), str) and m["content"])
        if not text:  # generating from BOS alone would answer a request nobody made
            raise InvalidArgument(-1, "the task's messages hold no text", "chat_template")
        return text, False
    prefill = None
    if messages and messages[-1].get("role") == "assistant":
        prefill = messages[-1].get("content", "")
        messages = messages[:-1]
    tools = _plain(params.tools) if params.tools is not None else None
    if params.tools:
        if not hasattr(template, "_lossy_fixed"):
            patched = _patched_lossy(template.source)
            template._lossy_fixed = None if patched is None else \
                ChatTemplate(patched, template.special_tokens, template.named)
        template = template._lossy_fixed or template
    prompt = template.render(messages, tools=tools, add_generation_prompt=True, **template_kwargs(params))
    if prefill and isinstance(prefill, str):
        prompt += prefill
    return prompt, True
