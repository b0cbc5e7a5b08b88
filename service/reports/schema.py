"""The run report's shape: the REST schema of ``GET /v1/runs/{id}/report``, the CLI's and the
manifest's. Every number is computed from stored rows by :mod:`service.reports.compute`."""

from __future__ import annotations

from typing import Any

from pydantic import AliasChoices, BaseModel, Field

from service.statuses import RunStatus

# "yield" is a Python keyword: the attribute is yield_, the document's key "yield".
YIELD_NAMES = AliasChoices("yield", "yield_")
# Cosine distance of the embedding cluster count, fixed whatever the encoder: 1 - fp32 MiniLM's
# threshold (0.8; the default int8 encoder's is 0.775), so a cluster is about what the semantic
# rule would call near-duplicates of its first member.
CLUSTER_RADIUS = 0.2


class RuleYield(BaseModel):
    """Rejections by one rule and the generation tokens spent on the tasks it rejected."""

    rule: str
    stage: str = Field(
        description="heuristics | near_duplicates | elimination (evol) | turns (multiturn) | "
        "instances | the rule"
    )
    rejected: int
    prompt_tokens: float = Field(description="Attributed tokens (see compute.task_costs).")
    completion_tokens: float
    cost: float | None = Field(
        default=None, description="What those tokens cost at the run's price; null unpriced."
    )


class Yield(BaseModel):
    """Candidates parsed, accepted and rejected; what inference cost per accepted task."""

    candidates: int
    accepted: int
    rejected: int
    rejected_by_stage: dict[str, int]
    rejected_tokens_by_stage: dict[str, float] = Field(
        default_factory=dict,
        description="Stage -> prompt + completion tokens attributed to the tasks it rejected.",
    )
    rejected_cost_by_stage: dict[str, float] | None = Field(
        default=None, description="Stage -> what those tokens cost; null when unpriced."
    )
    rejected_by_rule: list[RuleYield]
    parse_failures_by_reason: dict[str, int]
    prompt_tokens: int = Field(description="Every stored generation call's prompt tokens.")
    completion_tokens: int
    prompt_tokens_per_accepted: float | None = Field(description="All prompt tokens / accepted.")
    completion_tokens_per_accepted: float | None
    tokens_per_accepted: float | None = Field(
        default=None, description="(prompt + completion tokens) / accepted."
    )
    cost: float | None = Field(
        default=None,
        description="Every call's tokens at the run's budgets.prices for its model; null "
        "when no price is set.",
    )
    cost_per_accepted: float | None = Field(default=None, description="cost / accepted.")
    currency: str | None = Field(default=None, description="The prices' currency.")


class Diversity(BaseModel):
    """Diversity of the accepted instructions."""

    instructions: int
    distinct_1: float | None = Field(description="filters.diversity.distinct_n(texts, 1).")
    distinct_2: float | None
    classification_share: float | None = Field(
        description="Share of accepted tasks classified as classification tasks."
    )
    verb_noun_version: str = Field(description="filters.diversity.VERB_NOUN_VERSION.")
    verb_noun_parsed: int = Field(
        description="Accepted instructions that gave a (root verb, object noun) pair."
    )
    distinct_verbs: int
    verb_noun_pairs: int = Field(description="Distinct (root verb, object noun) pairs.")
    top20_verb_share: float | None = Field(
        description="Share of parsed instructions whose verb is among the 20 commonest "
        "(Self-Instruct Fig. 2); null when none parsed."
    )
    top_verbs: list[tuple[str, int]] = Field(description="The 20 commonest verbs and counts.")
    embedding_model: str | None = Field(
        description="Model id of the stored vectors (null: the semantic rule never ran)."
    )
    embedded: int = Field(description="Accepted instructions with a stored vector.")
    embedding_mean_distance: float | None = Field(
        description="filters.diversity.mean_pairwise_cosine_distance of the stored vectors; "
        "null for fewer than 2."
    )
    embedding_clusters: int | None = Field(
        description="filters.diversity.cluster_count at cosine distance "
        "embedding_cluster_radius, in task id order; null without vectors."
    )
    embedding_cluster_radius: float = CLUSTER_RADIUS


class CollapseRadar(BaseModel):
    """Signs that the bootstrap loop feeds on itself, for one iteration."""

    machine_share_in_prompts: float | None = Field(
        description="Machine tasks among the few-shot examples of the instruction prompts."
    )
    similarity_to_seeds: float | None = Field(
        description="Mean over accepted instructions of the highest ROUGE-L F to a seed task."
    )
    similarity_to_previous: float | None = Field(
        description="The same against the previous iteration's accepted instructions."
    )
    near_duplicate_rate: float | None = Field(
        description="near_duplicate rejections / candidates that passed the heuristics."
    )
    novel_bigram_share: float | None = Field(
        description="Distinct bigrams of accepted instructions never seen in the seeds or "
        "earlier accepted instructions / the iteration's distinct bigrams (diversity growth)."
    )
    verb_noun_growth: int | None = Field(
        default=None,
        description="Distinct (verb, noun) pairs of accepted instructions never seen in the "
        "seeds or earlier accepted instructions (verb-noun coverage growth); null only in "
        "radars stored before it was computed.",
    )
    judge_mean: float | None = Field(description="Mean llm_judge score; null without the judge.")


class IterationReport(BaseModel):
    iteration: int
    yield_: Yield = Field(serialization_alias="yield", validation_alias=YIELD_NAMES)
    diversity: Diversity
    collapse: CollapseRadar


class LengthControl(BaseModel):
    """Scores re-estimated at the mean length: score - slope * (length - mean length)."""

    slope_per_1k_chars: float
    mean_abs_change: float
    changed_share: float = Field(description="Share whose rounded, clipped score changes.")


class JudgeAudit(BaseModel):
    """Checks on the LLM judge's scores of this run (null in the report when it did not run)."""

    scored: int
    parse_failures: int
    parse_failure_rate: float
    length_spearman: float | None = Field(
        description="Spearman rho of score and output length in characters (filters.judge)."
    )
    length_controlled: LengthControl | None
    rubric_versions: list[str]
    rubric_sha256: list[str]


class RefusalProbe(BaseModel):
    """The last refusal probe of the run's backend (``instructforge probe refusals``)."""

    probe_set: str
    probe_set_sha256: str
    over_refusal_rate: float | None = Field(description="Benign prompts refused / benign.")
    under_refusal_rate: float | None = Field(description="Harmful prompts answered / harmful.")
    benign_count: int
    benign_refused: int
    harmful_count: int
    harmful_answered: int
    patterns_version: str
    results: list[dict[str, Any]]


class Refusals(BaseModel):
    """Refusals inside accepted outputs, and the probe's two rates (never one rate)."""

    outputs_scored: int
    outputs_refused: int
    refused_share: float | None
    probe: RefusalProbe | None


class LengthRatio(BaseModel):
    """Chosen/rejected word-count ratios of the kept pairs."""

    p10: float
    p50: float
    p90: float
    mean: float


class PreferenceAudit(BaseModel):
    """A preference run's judged pairs and the judge's biases (filters.judge.preference_bias)."""

    comparisons: int = Field(description="Response pairs judged (k(k-1)/2 per prompt).")
    parsed: int = Field(description="Comparisons whose two orders were both read.")
    ties: int
    kept_pairs: int
    length_only_pairs: int = Field(
        description="Kept pairs whose winner stops winning once both are cut to equal length."
    )
    outcomes: dict[str, int] = Field(
        description="Comparisons by outcome: kept, tie, inconsistent, unparsed, below_margin."
    )
    position_swap_consistency: float | None = Field(
        description="Share of parsed comparisons whose two orders agree (tie or same winner)."
    )
    spearman_preference_vs_length: float | None = Field(
        description="Spearman rho of the preference for response 1 and its word-count lead."
    )
    length_ratio: LengthRatio | None
    self_preference: float | None = Field(
        description="Share of kept pairs between the judge's own response and another "
        "model's that its own wins; null when no such pair (one model wrote both)."
    )
    judge_is_generator: bool = Field(description="The judge's model wrote every response.")
    replies_by_form: dict[str, int] = Field(
        description="Judge replies read, by the kind of statement (filters.pairwise_replies)."
    )
    reply_failures: dict[str, int] = Field(description="Judge replies not read, by reason.")


class RunReport(BaseModel):
    """A run's report: per iteration and cumulative."""

    run_id: int
    status: RunStatus
    stop_reason: str | None = Field(
        description="Why a stop rule paused the run, or why it completed (target, "
        "max_iterations or the budget reached), if it did."
    )
    yield_: Yield = Field(
        serialization_alias="yield",
        validation_alias=YIELD_NAMES,
        description="All iterations together.",
    )
    diversity: Diversity = Field(description="All accepted instructions of the run.")
    iterations: list[IterationReport]
    judge: JudgeAudit | None
    refusals: Refusals
    preference: PreferenceAudit | None = Field(
        default=None, description="A preference run's pairs and judge biases; else null."
    )


def shown(value: float | None) -> str:
    """A report number as text: ``-`` for null, whole numbers bare, else three decimals."""
    if value is None:
        return "-"
    return str(int(value)) if float(value).is_integer() else f"{value:.3f}"
