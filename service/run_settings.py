"""From a stored RunConfig to the library objects a run needs: backend, configs, index."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from filters.heuristics import INSTANCE_RULES, INSTRUCTION_RULES, HeuristicConfig
from filters.near_duplicates import NearDuplicateIndex
from generators.backends import make_backend
from generators.backends.base import Backend
from generators.config import BootstrapConfig
from generators.types import SamplingParams
from service.errors import InvalidInput
from service.run_config import RunConfig, Sampling
from service.settings import Settings


def _sampling(s: Sampling) -> SamplingParams:
    return SamplingParams(
        temperature=s.temperature,
        top_p=s.top_p,
        max_tokens=s.max_tokens,
        presence_penalty=s.presence_penalty,
        frequency_penalty=s.frequency_penalty,
        stop=tuple(s.stop),
    )


def bootstrap_config_for(config: RunConfig) -> BootstrapConfig:
    return BootstrapConfig(
        prompts_per_iteration=config.prompts_per_iteration,
        classification_only=config.classification_only,
        instruction_sampling=_sampling(config.instruction_sampling),
        classification_sampling=_sampling(config.classification_sampling),
        instance_sampling=_sampling(config.instance_sampling),
        max_instances_per_task=config.max_instances_per_task,
        keep_truncated=config.keep_truncated,
    )


def heuristic_config_for(config: RunConfig) -> HeuristicConfig:
    """Raises InvalidInput for unknown rule names."""
    rules = set(INSTRUCTION_RULES + INSTANCE_RULES)
    unknown = set(config.filters.disabled_rules) - rules
    if unknown:
        raise InvalidInput(
            f"filters.disabled_rules: unknown rules {sorted(unknown)}; known: {sorted(rules)}"
        )
    if config.filters.max_words <= config.filters.min_words:
        raise InvalidInput("filters: max_words must be above min_words")
    return HeuristicConfig(
        enabled_rules=frozenset(rules - set(config.filters.disabled_rules)),
        min_words=config.filters.min_words,
        max_words=config.filters.max_words,
    )


def validate_run_config(config: RunConfig, settings: Settings | None = None) -> None:
    """The checks pydantic cannot do alone; raises InvalidInput."""
    heuristic_config_for(config)
    configured = settings is not None and settings.openai_base_url
    if config.backend == "openai" and not config.backend_options.get("base_url") and not configured:
        raise InvalidInput(
            "backend openai needs backend_options.base_url "
            "(or set INSTRUCTFORGE_OPENAI_BASE_URL on the worker)"
        )


def make_index(settings: Settings, *, run_id: int, threshold: float) -> NearDuplicateIndex:
    """In memory, or in Redis (shared by every worker) when a Redis URL is configured."""
    if not settings.redis_url:
        return NearDuplicateIndex(threshold=threshold)
    from redis.connection import parse_url

    storage = {
        "type": "redis",
        "basename": f"instructforge:run:{run_id}".encode(),
        "redis": parse_url(settings.redis_url),
    }
    return NearDuplicateIndex(threshold=threshold, storage_config=storage)


def backend_options(config: RunConfig, settings: Settings) -> dict[str, Any]:
    options = dict(config.backend_options)
    if config.backend in ("vllm", "transformers"):
        options.setdefault("cache_dir", settings.model_cache_dir)
    if config.backend == "openai" and "base_url" not in options and settings.openai_base_url:
        options["base_url"] = settings.openai_base_url
    return options


def make_run_backend(config: RunConfig, settings: Settings) -> Backend:
    return make_backend(config.backend, model=config.model, **backend_options(config, settings))


def judge_completer(backend: Backend) -> Callable[[list[str]], list[str]]:
    """A `complete` function for the LLM judge: deterministic, chat-wrapped where the model is."""
    sampling = SamplingParams(temperature=0.0, top_p=1.0, max_tokens=128, stop=("\n\n",))

    def complete(prompts: list[str]) -> list[str]:
        if backend.model_info.is_chat:
            prompts = [backend.wrap_chat(p) for p in prompts]
        return [c.text for c in backend.generate(prompts, sampling)]

    return complete
