"""EXO's own types, or minimal stand-ins with EXO's names and fields where EXO is not importable.

Inside EXO's runner (exo importable) every name below IS EXO's class: the runner matches results
with `case FinishedResponse()` / `CancelledResponse()`, checks `isinstance(generator, Builder)`,
and puts chunks into pydantic's `ChunkGenerated`, so anything else would fail there. Elsewhere
(this project's tests, hosts without EXO) the stand-ins below carry the same fields, from EXO at
b5375f8 (shared/types/{tasks,text_generation,chunks,memory,common}.py, worker/runner_response.py,
api/types/api.py, worker/engines/base.py). They check the types EXO's pydantic models would
check, so a wrong type fails here too instead of first inside a real EXO.

`EXO_AVAILABLE` says which set is in use."""
import abc
import dataclasses
import uuid

try:  # the real thing, inside EXO's runner
    from exo.api.types import (CompletionTokensDetails, GenerationStats, PromptTokensDetails,  # noqa: F401
                               TopLogprobItem, Usage)
    from exo.shared.types.chunks import ErrorChunk, PrefillProgressChunk, TokenChunk  # noqa: F401
    from exo.shared.types.common import CommandId, ModelId  # noqa: F401
    from exo.shared.types.events import ChunkGenerated  # noqa: F401
    from exo.shared.types.memory import Memory  # noqa: F401
    from exo.shared.types.tasks import CANCEL_ALL_TASKS, TaskId, TextGeneration  # noqa: F401
    from exo.shared.types.text_generation import InputMessage, TextGenerationTaskParams  # noqa: F401
    from exo.shared.types.worker.runner_response import (CancelledResponse, FinishedResponse,  # noqa: F401
                                                         ModelLoadingResponse)
    from exo.worker.engines.base import Builder, Engine  # noqa: F401
    EXO_AVAILABLE = True
except ImportError:
    EXO_AVAILABLE = False


if not EXO_AVAILABLE:
    def _check(value, types, what):
        if value is not None and not isinstance(value, types):
            raise TypeError(f"{what}: {type(value).__name__} is not {types}")

    class _Id(str):
        """EXO's Id: a str, a fresh uuid4 when none is given."""
        def __new__(cls, value=None):
            return super().__new__(cls, value or str(uuid.uuid4()))

    class TaskId(_Id):
        pass

    class CommandId(_Id):
        pass

    class ModelId(_Id):
        def normalize(self):
            return self.replace("/", "--")

    CANCEL_ALL_TASKS = TaskId("CANCEL_ALL_TASKS")

    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Memory:
        in_bytes: int = 0

        @classmethod
        def from_bytes(cls, val):
            return cls(in_bytes=int(val))

    @dataclasses.dataclass(frozen=True, kw_only=True)
    class InputMessage:
        role: str  # "user" | "assistant" | "system" | "developer" | "tool"
        content: str

    @dataclasses.dataclass(frozen=True, kw_only=True)
    class TextGenerationTaskParams:
        model: str
        input: list
        instructions: str = None
        max_output_tokens: int = None
        temperature: float = None
        top_p: float = None
        stream: bool = False
        tools: list = None
        bench: bool = False
        use_prefix_cache: bool = False
        top_k: int = None
        stop: object = None  # str | list[str] | None
        seed: int = None
        chat_template_messages: list = None
        reasoning_effort: str = None
        enable_thinking: bool = None
        logprobs: bool = False
        top_logprobs: int = None
        min_p: float = None
        repetition_penalty: float = None
        repetition_context_size: int = None
        presence_penalty: float = None
        frequency_penalty: float = None
        images: list = dataclasses.field(default_factory=list)
        image_hashes: dict = dataclasses.field(default_factory=dict)
        prefill_endpoint: str = None

        def __post_init__(self):
            for m in self.input:
                _check(m, InputMessage, "TextGenerationTaskParams.input item")

    @dataclasses.dataclass(kw_only=True)
    class TextGeneration:
        instance_id: str
        command_id: CommandId
        task_params: TextGenerationTaskParams
        task_id: TaskId = dataclasses.field(default_factory=TaskId)
        task_status: str = "Pending"
        error_type: str = None
        error_message: str = None

        def __post_init__(self):
            _check(self.task_params, TextGenerationTaskParams, "TextGeneration.task_params")

    @dataclasses.dataclass(kw_only=True)
    class TopLogprobItem:
        token: str
        logprob: float
        bytes: list = None

    @dataclasses.dataclass(kw_only=True)
    class PromptTokensDetails:
        cached_tokens: int = 0
        audio_tokens: int = 0

    @dataclasses.dataclass(kw_only=True)
    class CompletionTokensDetails:
        reasoning_tokens: int = 0
        audio_tokens: int = 0
        accepted_prediction_tokens: int = 0
        rejected_prediction_tokens: int = 0

    @dataclasses.dataclass(kw_only=True)
    class Usage:
        prompt_tokens: int
        completion_tokens: int
        total_tokens: int
        prompt_tokens_details: PromptTokensDetails
        completion_tokens_details: CompletionTokensDetails

    @dataclasses.dataclass(kw_only=True)
    class GenerationStats:
        prompt_tps: float
        generation_tps: float
        prompt_tokens: int
        generation_tokens: int
        peak_memory_usage: Memory
        prefix_cache_hit: str = "none"

        def __post_init__(self):
            if not isinstance(self.peak_memory_usage, Memory):
                raise TypeError("GenerationStats.peak_memory_usage must be a Memory")

    @dataclasses.dataclass(kw_only=True)
    class TokenChunk:
        model: str
        text: str
        token_id: int
        usage: Usage  # required, may be None (EXO: `usage: Usage | None` with no default)
        finish_reason: str = None  # "stop" | "length" | "content_filter" | None
        stats: GenerationStats = None
        logprob: float = None
        top_logprobs: list = None
        is_thinking: bool = False

        def __post_init__(self):
            _check(self.usage, Usage, "TokenChunk.usage")
            _check(self.stats, GenerationStats, "TokenChunk.stats")
            if self.finish_reason not in (None, "stop", "length", "content_filter"):
                raise ValueError(f"TokenChunk.finish_reason {self.finish_reason!r}")
            for item in self.top_logprobs or ():
                _check(item, TopLogprobItem, "TokenChunk.top_logprobs item")

    @dataclasses.dataclass(kw_only=True)
    class ErrorChunk:
        model: str
        error_message: str
        finish_reason: str = "error"
        diagnostics: list = dataclasses.field(default_factory=list)

    @dataclasses.dataclass(kw_only=True)
    class PrefillProgressChunk:
        model: str
        processed_tokens: int
        total_tokens: int

    @dataclasses.dataclass(kw_only=True)
    class ChunkGenerated:
        command_id: CommandId
        chunk: object

        def __post_init__(self):  # pydantic's Chunk union
            _check(self.chunk, (TokenChunk, ErrorChunk, PrefillProgressChunk), "ChunkGenerated.chunk")

    @dataclasses.dataclass(kw_only=True)
    class FinishedResponse:
        pass

    @dataclasses.dataclass(kw_only=True)
    class CancelledResponse:
        pass

    @dataclasses.dataclass(kw_only=True)
    class ModelLoadingResponse:
        layers_loaded: int
        total: int

    class Engine(abc.ABC):
        """worker/engines/base.py's Engine."""
        _cancelled_tasks: set

        def should_cancel(self, task_id):
            return task_id in self._cancelled_tasks or CANCEL_ALL_TASKS in self._cancelled_tasks

        @abc.abstractmethod
        def warmup(self): ...

        @abc.abstractmethod
        def submit(self, task): ...

        @abc.abstractmethod
        def step(self): ...

        @abc.abstractmethod
        def close(self): ...

        @abc.abstractmethod
        def serve_prefill(self, request, wfile): ...

    class Builder(abc.ABC):
        """worker/engines/base.py's Builder."""
        @abc.abstractmethod
        def connect(self, bound_instance): ...

        @abc.abstractmethod
        def load(self, bound_instance): ...

        @abc.abstractmethod
        def build(self): ...

        @abc.abstractmethod
        def close(self): ...
