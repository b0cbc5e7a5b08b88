"""Plain data types that cross the library's boundary: tasks, sampling, completions, records.

They are dataclasses so the service can store them field by field and a notebook can print them;
no engine object (vLLM, transformers, httpx) ever leaves a backend.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field
from pydantic.dataclasses import dataclass as validated_dataclass

Origin = Literal["seed", "machine"]
# evolution/answer: Evol-Instruct (generators.evol); follow_up: generators.multiturn.
Stage = Literal["instructions", "classification", "instances", "evolution", "answer", "follow_up"]


@dataclass(frozen=True)
class Instance:
    """One input/output example of a task; ``input`` may be empty.

    ``generation_id`` names the call that wrote this output when it is not the task's one
    instances call (a preference run samples each response in its own call).
    """

    input: str
    output: str
    generation_id: str | None = None


@dataclass
class PoolTask:
    """A task in the pool that few-shot prompts sample from."""

    id: str
    instruction: str
    is_classification: bool
    origin: Origin
    instances: list[Instance] = field(default_factory=list)


@validated_dataclass(frozen=True, kw_only=True, config=ConfigDict(extra="forbid"))
class SamplingParams:
    """Decoding parameters handed to a backend; every field is recorded with each generation.

    Keyword-only, so a call site never depends on field order. pydantic validates every
    construction (the bounds are the OpenAI completions API's), so an out-of-range value raises
    ``pydantic.ValidationError`` (a ``ValueError``) here and nowhere else.

    ``stop`` strings end generation and are not part of the returned text. ``seed`` makes sampling
    reproducible where the engine supports it.
    """

    temperature: Annotated[float, Field(ge=0.0, le=5.0)]
    top_p: Annotated[float, Field(gt=0.0, le=1.0)]
    max_tokens: Annotated[int, Field(ge=1, le=8192)]
    presence_penalty: Annotated[float, Field(ge=-2.0, le=2.0)] = 0.0
    frequency_penalty: Annotated[float, Field(ge=-2.0, le=2.0)] = 0.0
    # Room beyond what a caller sets: the instance stage adds its own "Example k+1" stop.
    stop: Annotated[tuple[str, ...], Field(max_length=32)] = ()
    seed: Annotated[int | None, Field(ge=0, le=2**63 - 1)] = None
    # Return the k most likely next tokens with their log-probabilities at each generated
    # position (``Completion.top_logprobs``); 20 is the OpenAI API's and vLLM's default limit.
    top_logprobs: Annotated[int | None, Field(ge=1, le=20)] = None

    def to_dict(self) -> dict[str, Any]:
        """Return the parameters as a JSON-ready dict (``stop`` as a list)."""
        data = dataclasses.asdict(self)
        data["stop"] = list(self.stop)
        return data

    def with_seed(self, seed: int | None) -> SamplingParams:
        """Return a copy with ``seed`` replaced."""
        return dataclasses.replace(self, seed=seed)


@dataclass
class Completion:
    """What a backend returns for one prompt."""

    text: str
    finish_reason: str  # "stop" | "length" | engine-specific
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    retries: int = 0
    retry_log: list[str] = field(default_factory=list)
    # Where it was answered, for a server backend: the server root and the API endpoint
    # ("completions" | "chat"), and the messages sent when the server applied the template.
    server: str = ""
    endpoint: str = ""
    messages: list[dict[str, str]] | None = None
    # Per generated token, when ``SamplingParams.top_logprobs`` asked: the k most likely
    # tokens there (decoded text -> natural-log probability). Tokens that decode to the same
    # text keep the larger value.
    top_logprobs: list[dict[str, float]] | None = None


@dataclass(frozen=True)
class ModelInfo:
    """Which model answered, precisely enough to reproduce the call.

    ``revision`` is what a server reports about the weights it loaded (empty in process);
    ``dtype`` the precision the engine runs in (empty where the server does not say).
    """

    name: str
    path: str
    model_hash: str
    engine: str
    engine_version: str
    is_chat: bool
    revision: str = ""
    dtype: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a dict."""
        return dataclasses.asdict(self)


@dataclass
class GenerationRecord:
    """Provenance of one model call: everything needed to replay it."""

    id: str
    stage: Stage
    backend: str
    model: ModelInfo
    template_name: str
    template_version: int
    template_sha256: str
    prompt: str
    prompt_sha256: str
    chat_wrapped: bool
    few_shot_ids: list[str]
    sampling: dict[str, Any]
    completion: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    retries: int
    retry_log: list[str]
    server: str = ""
    endpoint: str = ""
    messages: list[dict[str, str]] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the record as a JSON-ready dict (the model nested as a dict)."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class ParseFailure:
    """A completion (or part of one) that could not be parsed, with its reason."""

    generation_id: str
    stage: str
    reason: str
    excerpt: str


@dataclass
class Candidate:
    """A parsed new instruction and, once processed, its classification and instances."""

    instruction: str
    generation_id: str
    is_classification: bool | None = None
    classification_generation_id: str | None = None
    instances: list[Instance] = field(default_factory=list)
    instances_generation_id: str | None = None
    # An evolved task (generators.evol): the pool task it grew from and the operation.
    parent_id: str | None = None
    operation: str | None = None
    # A grown conversation (generators.multiturn): every message, system first when set.
    turns: list[dict[str, str]] | None = None

    def prompt_of(self, index: int) -> tuple[str, str]:
        """The instruction and input that instance ``index``'s output answers, for scorers
        and the judge: the task's instruction and the instance's input, or for a
        conversation (whose one instance is its last answer) its last user turn and no input.

        Scored under the first turn (the task's instruction), a last answer was held to that
        turn's count ("List five fruits." then "Which two are the sweetest?": 0.27) and an
        echo of the last turn passed (1.0).

        Raises:
            IndexError: If there is no instance ``index``.
        """
        instance = self.instances[index]
        users = [m["content"] for m in self.turns or [] if m["role"] == "user"]
        if users:
            return users[-1], ""
        return self.instruction, instance.input


@dataclass
class IterationResult:
    """The outcome of one bootstrap iteration.

    ``candidates`` holds every parsed instruction in order; ``kept`` those the caller kept
    between the stages, with classification and instances filled. ``timings`` splits wall time
    into inference and non-inference seconds (see ``bootstrap.Iteration.result``).
    """

    records: list[GenerationRecord]
    parse_failures: list[ParseFailure]
    candidates: list[Candidate]
    kept: list[Candidate]
    timings: dict[str, float]


def new_generation_id() -> str:
    """Return a fresh generation id (uuid4 hex)."""
    return uuid.uuid4().hex
