"""What a run is asked to do: validated, hashed, stored with the run."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

POLICY_VERSION = "v1"


class Sampling(BaseModel):
    model_config = ConfigDict(extra="forbid")

    temperature: float = Field(ge=0.0, le=5.0)
    top_p: float = Field(gt=0.0, le=1.0)
    max_tokens: int = Field(ge=1, le=8192)
    presence_penalty: float = Field(0.0, ge=-2.0, le=2.0)
    frequency_penalty: float = Field(0.0, ge=-2.0, le=2.0)
    stop: list[str] = Field(default_factory=list, max_length=16)


def _default(stage: str) -> Sampling:
    # The library's defaults (the paper's decoding) are the single source of truth.
    from generators.config import BootstrapConfig

    params = getattr(BootstrapConfig(), f"{stage}_sampling").to_dict()
    params.pop("seed", None)
    return Sampling(**params)


class FilterSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min_words: int = Field(3, ge=0, le=100, description="An instruction needs more words.")
    max_words: int = Field(150, ge=2, le=2000, description="An instruction may have at most.")
    disabled_rules: list[str] = Field(default_factory=list, max_length=32)
    rouge_l_threshold: float = Field(0.7, gt=0.0, le=1.0)


class RunConfig(BaseModel):
    """A bootstrap run's whole configuration; its sha256 is stored with the run."""

    model_config = ConfigDict(extra="forbid")

    seed_set: str = Field(min_length=1, max_length=200)
    backend: Literal["vllm", "openai", "transformers"] = "transformers"
    model: str = Field("smollm2-135m", min_length=1, max_length=1000)
    backend_options: dict[str, Any] = Field(default_factory=dict)
    target_tasks: int = Field(100, ge=1, le=1_000_000, description="Stop at this many accepted.")
    max_iterations: int | None = Field(None, ge=1, le=1_000_000)
    prompts_per_iteration: int = Field(8, ge=1, le=1024)
    seed: int = Field(0, ge=0, le=2**31 - 1)
    max_instances_per_task: int = Field(3, ge=1, le=20)
    keep_truncated: bool = Field(
        False, description="Keep the complete items of a completion cut by the length limit."
    )
    classification_only: bool = False
    instruction_sampling: Sampling = Field(default_factory=lambda: _default("instruction"))
    classification_sampling: Sampling = Field(default_factory=lambda: _default("classification"))
    instance_sampling: Sampling = Field(default_factory=lambda: _default("instance"))
    filters: FilterSettings = Field(default_factory=FilterSettings)
    scorers: list[Literal["heuristic_quality", "refusal", "llm_judge"]] = Field(
        default_factory=lambda: ["heuristic_quality", "refusal"]
    )
    policy_version: str = Field(POLICY_VERSION, max_length=50)

    def config_hash(self) -> str:
        return config_sha256(self.model_dump(mode="json"))


def config_sha256(data: dict[str, Any]) -> str:
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()
