"""The options each backend takes, as data: one typed model per backend kind.

A run stores its backend options as JSON and a worker passes them to the backend's constructor
much later, so a wrong type (``"batch_size": "16"``), an absurd size or an unknown name must be
refused when the options are given, not when a worker builds the engine. These models are the
one statement of what each backend accepts: :func:`make_backend` validates through them, and
the service validates a run's ``backend_options`` through them at the API's edge.

Every field mirrors a keyword of the backend's constructor (same name, same default; a test
compares them), plus ``cache_dir``, which :func:`make_backend` takes for the in-process engines.
Values are strict: no string for a number, no bool for an integer, no float for an integer.
Bounds are sanity limits (a batch of 1..1024 prompts, at most an hour per request), not
tuning advice; where a bound comes from a peer it says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from generators.errors import ConfigError

# The engines' dtype names (torch/vLLM spelling); "auto" is resolved per machine (precision.py).
OptionDtype = Literal["auto", "float32", "bfloat16", "float16"]
# Paths arrive as JSON strings: the one field kind that is converted, not strict.
LaxPath = Annotated[Path, Field(strict=False)]
Url = Annotated[str, Field(min_length=1, max_length=2000)]
Seconds = Annotated[float, Field(gt=0, le=3600)]
Backoff = Annotated[float, Field(ge=0, le=3600)]


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class TransformersOptions(_Options):
    """Options of :class:`generators.backends.transformers.TransformersBackend`."""

    cache_dir: LaxPath | None = Field(None, description="Where the embedded model is prepared.")
    batch_size: int = Field(16, ge=1, le=1024, description="Prompts per forward pass.")
    dtype: OptionDtype = "auto"
    num_threads: int | None = Field(None, ge=1, le=4096, description="torch CPU threads.")
    device: str = Field(
        "cpu", pattern=r"^(cpu|auto|cuda(:[0-9]{1,3})?)$", description="cpu, cuda[:N] or auto."
    )


class VllmOptions(_Options):
    """Options of :class:`generators.backends.vllm.VllmBackend`."""

    cache_dir: LaxPath | None = Field(None, description="Where the embedded model is prepared.")
    dtype: OptionDtype = "auto"
    enforce_eager: bool = True
    max_model_len: int | None = Field(None, ge=1, le=2**24, description="Context tokens.")
    # vLLM seeds NumPy's legacy generator with it, which takes 0..2**32 - 1.
    seed: int = Field(0, ge=0, le=2**32 - 1)
    cpu_omp_threads_bind: str | None = Field(
        None, min_length=1, max_length=200, pattern=r"^[0-9a-z,|\-]+$"
    )
    cpu_reserved_cpus: int | None = Field(None, ge=0, le=4096)
    cpu_kvcache_space_gib: int | None = Field(None, ge=1, le=4096)
    engine_kwargs: dict[str, Any] | None = Field(
        None, description="Passed to vllm.LLM as they are (checked by vLLM, not here)."
    )


class OpenAIOptions(_Options):
    """Options of :class:`generators.backends.openai.OpenAIBackend` that JSON can carry."""

    base_url: Url | Annotated[list[Url], Field(min_length=1, max_length=256)] | None = None
    endpoint: Literal["auto", "completions", "chat"] = "auto"
    model_dir: LaxPath | None = None
    api_key: str | None = Field(None, min_length=1, max_length=4096)
    max_concurrency: int = Field(64, ge=1, le=1024, description="Requests in flight per server.")
    timeout_s: Seconds = 120.0
    max_retries: int = Field(4, ge=0, le=100)
    backoff_s: Backoff = 0.5
    max_backoff_s: Backoff = 20.0
    probe_backoff_s: Backoff = 1.0
    max_probe_backoff_s: Backoff = 30.0
    probe_timeout_s: Seconds = 5.0

    @field_validator("base_url", mode="before")
    @classmethod
    def _urls(cls, value: Any) -> Any:
        # One message for the union's shapes, instead of pydantic's per-member errors.
        if value is None or isinstance(value, str):
            return value
        if (
            isinstance(value, list)
            and 1 <= len(value) <= 256
            and all(isinstance(u, str) for u in value)
        ):
            return value
        raise ValueError("a URL, a comma-separated list of URLs or a list of 1..256 URLs")


OPTIONS: dict[str, type[_Options]] = {
    "transformers": TransformersOptions,
    "vllm": VllmOptions,
    "openai": OpenAIOptions,
}
# Python objects a caller in the same process may hand the openai backend (tests inject an
# httpx transport and a sleep); never JSON, so never in a stored run.
IN_PROCESS_OPTIONS = frozenset({"transport", "sleep"})


def check_backend_options(
    kind: str, options: dict[str, Any], *, in_process: bool = False
) -> dict[str, Any]:
    """Validate ``options`` for backend ``kind``; return them as the backend takes them.

    Args:
        kind: ``transformers``, ``vllm`` or ``openai`` (other kinds are returned unchecked).
        options: keyword name -> value, as stored (JSON types).
        in_process: pass :data:`IN_PROCESS_OPTIONS` through unchecked (a caller in this
            process; never for options a client sent).

    Returns:
        The options given (no defaults added), with paths as :class:`~pathlib.Path`.

    Raises:
        ConfigError: an unknown option, a value of the wrong type or out of bounds; the
            message names the option (``batch_size: Input should be a valid integer``).
    """
    model = OPTIONS.get(kind)
    if model is None:
        return dict(options)
    passed = IN_PROCESS_OPTIONS if in_process else frozenset()
    given = {k: v for k, v in options.items() if k not in passed}
    try:
        checked = model.model_validate(given)
    except ValidationError as exc:
        # The deepest error is the most specific (a union reports each member's failure).
        first = max(exc.errors(), key=lambda e: len(e["loc"]))
        # The option and any list index; a union member's name (`list[...]`) in the location
        # says nothing to the caller.
        name, *rest = first["loc"] or ("options",)
        field = str(name) + "".join(f"[{p}]" for p in rest if isinstance(p, int))
        known = ", ".join(model.model_fields)
        hint = f" (backend {kind} takes {known})" if first["type"] == "extra_forbidden" else ""
        raise ConfigError(f"{field}: {first['msg']}{hint}") from None
    out = {name: getattr(checked, name) for name in checked.model_fields_set}
    return out | {k: v for k, v in options.items() if k in passed}
