"""What a run is asked to do: validated, hashed, stored with the run.

The libraries' own config types are the single source of truth for their settings, defaults
and validation; :class:`RunConfig` embeds them as they are (``bootstrap``, ``heuristics``,
``near_duplicates``, ``semantic_duplicates``), so a field added to one of them is a per-run
setting, in the OpenAPI schema and in the pipeline, with no other edit.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import ConfigDict, Field, ValidationInfo, field_validator, model_validator

from filters.evolution import EliminationConfig
from filters.heuristics import INSTANCE_RULES, INSTRUCTION_RULES, HeuristicConfig
from filters.near_duplicates import NearDuplicateConfig
from filters.score_gate import ScoreGate
from filters.semantic_duplicates import SemanticDuplicateConfig
from filters.turns import TurnRules
from generators.backends.options import check_backend_options
from generators.config import BootstrapConfig
from generators.errors import ConfigError
from generators.evol import EvolConfig
from generators.multiturn import MultiturnConfig
from generators.preference import PreferenceConfig
from service.errors import InvalidInput
from service.reports.collapse import StopRules
from service.runs.budgets import Budgets
from service.settings import Settings
from service.storable import StorableModel

POLICY_VERSION = "v1"
Scorer = Literal["heuristic_quality", "refusal", "llm_judge"]
DEFAULT_SCORERS: tuple[Scorer, ...] = ("heuristic_quality", "refusal")
# How a run grows tasks: the paper's bootstrap, Evol-Instruct from the pool, or conversations.
# preference: k sampled responses per seed prompt, judged in pairs (DPO data).
Method = Literal["self_instruct", "evol", "multiturn", "preference"]


class RunConfig(StorableModel):
    """A bootstrap run's whole configuration; its sha256 is stored with the run.

    Stored rows written before the library types were embedded (the flat layout: top-level
    ``prompts_per_iteration``, ``*_sampling``, ``filters`` ...) are read through
    :func:`from_flat_layout`, so old runs resume and old clients keep working. Every value is
    checked by the ``storable`` rule (no U+0000, 64-bit integers, finite floats, at most
    32 levels deep: :mod:`service.storable`).
    """

    model_config = ConfigDict(extra="forbid")

    seed_set: str = Field(min_length=1, max_length=200)
    backend: Literal["vllm", "openai", "transformers"] = "transformers"
    model: str = Field("smollm2-135m", min_length=1, max_length=1000)
    backend_options: dict[str, Any] = Field(
        default_factory=dict,
        description="The backend's own options, typed per backend "
        "(generators.backends.options): an unknown option or a value of the wrong type or "
        "size is a 422 naming it. Which of them a write key may set: service.runs.access.",
    )
    target_tasks: int = Field(
        100,
        ge=1,
        le=1_000_000,
        description="Stop with exactly this many accepted; the extra accepted candidates of "
        "the last batch are stored as rejected by rule over_target.",
    )
    max_iterations: int | None = Field(None, ge=1, le=1_000_000)
    seed: int = Field(0, ge=0, le=2**31 - 1)
    method: Method = Field(
        "self_instruct",
        description="self_instruct: the paper's bootstrap; evol: Evol-Instruct (generators.evol); "
        "multiturn: conversations grown from pool tasks (generators.multiturn); "
        "preference: k sampled responses per seed prompt judged in pairs (generators.preference).",
    )
    bootstrap: BootstrapConfig = Field(
        default_factory=BootstrapConfig, description="Prompting, decoding and parsing."
    )
    evol: EvolConfig = Field(
        default_factory=EvolConfig, description="Evol-Instruct's operations and decoding."
    )
    elimination: EliminationConfig = Field(
        default_factory=EliminationConfig,
        description="Evol-Instruct's elimination step (filters.evolution).",
    )
    multiturn: MultiturnConfig = Field(
        default_factory=MultiturnConfig, description="Conversation growth (method multiturn)."
    )
    turn_rules: TurnRules = Field(
        default_factory=TurnRules, description="Rules every grown turn passes (filters.turns)."
    )
    preference: PreferenceConfig = Field(
        default_factory=PreferenceConfig,
        description="Sampled responses and the pairwise judge (method preference).",
    )
    heuristics: HeuristicConfig = Field(
        default_factory=HeuristicConfig, description="The paper's rule-based filters."
    )
    near_duplicates: NearDuplicateConfig = Field(
        default_factory=NearDuplicateConfig, description="The ROUGE-L near-duplicate rule."
    )
    semantic_duplicates: SemanticDuplicateConfig = Field(
        default_factory=SemanticDuplicateConfig,
        description="The embedding near-duplicate rule (off by default; after ROUGE-L).",
    )
    scorers: list[Scorer] = Field(default_factory=lambda: list(DEFAULT_SCORERS))
    stop_rules: StopRules = Field(
        default_factory=StopRules,
        description="Pause the run when its collapse radar crosses these (service.reports).",
    )
    score_gate: ScoreGate = Field(
        default_factory=dict,
        description="Scorer -> lowest score kept; lower instances are rejected by score_gate "
        "when generated. Each gated scorer must be in scorers.",
    )
    budgets: Budgets = Field(
        default_factory=Budgets,
        description="Token, wall-clock and money limits; the first reached stops the run.",
    )
    policy_version: str = Field(POLICY_VERSION, max_length=50)

    @model_validator(mode="before")
    @classmethod
    def _read_flat_layout(cls, data: Any) -> Any:
        return from_flat_layout(data) if isinstance(data, dict) else data

    @field_validator("backend_options")
    @classmethod
    def _typed_options(cls, options: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        # Checked here, not when a worker builds the engine hours later. Stored as sent (JSON).
        backend = info.data.get("backend")
        if backend is None:  # the backend itself was invalid; that error is reported
            return options
        try:
            check_backend_options(backend, options)
        except ConfigError as exc:
            raise ValueError(f"backend_options.{exc}") from None
        return options

    @model_validator(mode="after")
    def _gate_scorers_run(self) -> RunConfig:
        # A gate on a scorer that never runs would pass everything without a word.
        missing = sorted(set(self.score_gate) - set(self.scorers))
        if missing:
            raise ValueError(f"score_gate: {missing} not in scorers {self.scorers}")
        return self

    @model_validator(mode="after")
    def _cost_budget_priced(self) -> RunConfig:
        # A money limit with no price for the model would never stop the run.
        if self.budgets.max_cost is not None and self.model not in self.budgets.prices:
            raise ValueError(
                f"budgets.max_cost needs budgets.prices[{self.model!r}] (the run's model)"
            )
        return self

    def config_hash(self) -> str:
        """sha256 of the canonical JSON of every field (defaults included)."""
        return config_sha256(self.model_dump(mode="json"))


def config_sha256(data: dict[str, Any]) -> str:
    """sha256 hex of ``data`` as canonical JSON (sorted keys, no spaces)."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


# The flat layout's top-level keys that now live in `bootstrap` (same names, same meaning).
FLAT_BOOTSTRAP_KEYS = (
    "prompts_per_iteration",
    "max_instances_per_task",
    "keep_truncated",
    "classification_only",
    "instruction_sampling",
    "classification_sampling",
    "instance_sampling",
)


def from_flat_layout(data: dict[str, Any]) -> dict[str, Any]:
    """Move the flat layout's keys into the embedded sections; other input is returned as is.

    ``filters.disabled_rules`` becomes ``heuristics.enabled_rules`` (every known rule but
    those), ``filters.min_words``/``max_words`` move to ``heuristics`` and
    ``filters.rouge_l_threshold`` to ``near_duplicates.threshold``.

    Raises:
        ValueError: a key is given in both layouts, or an unknown rule is disabled (pydantic
            reports it as a ``ValidationError``).
    """
    flat = [k for k in FLAT_BOOTSTRAP_KEYS if k in data]
    if not flat and "filters" not in data:
        return data
    out = {k: v for k, v in data.items() if k not in FLAT_BOOTSTRAP_KEYS and k != "filters"}
    _move(out, "bootstrap", {k: data[k] for k in flat})
    filters = data.get("filters", {})
    if not isinstance(filters, dict):
        raise ValueError("filters: an object with min_words, max_words, disabled_rules")
    heuristics = {k: filters[k] for k in ("min_words", "max_words") if k in filters}
    if "disabled_rules" in filters:
        disabled = filters["disabled_rules"]
        if not isinstance(disabled, list) or not all(isinstance(r, str) for r in disabled):
            raise ValueError("filters.disabled_rules: a list of rule names")
        known = set(INSTRUCTION_RULES + INSTANCE_RULES)
        unknown = set(disabled) - known
        if unknown:
            raise ValueError(
                f"filters.disabled_rules: unknown rules {sorted(unknown)}; known: {sorted(known)}"
            )
        heuristics["enabled_rules"] = sorted(known - set(disabled))
    _move(out, "heuristics", heuristics)
    if "rouge_l_threshold" in filters:
        _move(out, "near_duplicates", {"threshold": filters["rouge_l_threshold"]})
    rest = set(filters) - {"min_words", "max_words", "disabled_rules", "rouge_l_threshold"}
    if rest:
        raise ValueError(f"filters: unknown keys {sorted(rest)}")
    return out


def _move(out: dict[str, Any], section: str, values: dict[str, Any]) -> None:
    if not values:
        return
    current = out.get(section, {})
    if not isinstance(current, dict) or set(current) & set(values):
        raise ValueError(f"{sorted(values)} given both flat and inside {section!r}")
    out[section] = {**current, **values}


def check_backend(config: RunConfig, settings: Settings) -> None:
    """The one check that needs the service's settings; raises InvalidInput.

    An ``openai`` run needs a server: ``backend_options.base_url`` or the worker's
    ``INSTRUCTFORGE_OPENAI_BASE_URL``.
    """
    if (
        config.backend == "openai"
        and not config.backend_options.get("base_url")
        and not settings.openai_base_url
    ):
        raise InvalidInput(
            "backend openai needs backend_options.base_url "
            "(or set INSTRUCTFORGE_OPENAI_BASE_URL on the worker)"
        )
