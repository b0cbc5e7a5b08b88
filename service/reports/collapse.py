"""The collapse radar of a bootstrap run, and the stop rules that pause a run on it.

A Self-Instruct loop samples its own accepted tasks back into its prompts (Wang et al., 2023:
6 seed + 2 machine tasks per prompt); if it collapses, new instructions drift toward what it
already wrote: more near-duplicates, fewer new bigrams, prompts full of machine tasks.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from statistics import fmean
from typing import Any

from pydantic import BaseModel, Field

from filters.diversity import ngrams, root_verb_object
from filters.heuristics import INSTRUCTION_RULES
from filters.near_duplicates import RULE_NAME as NEAR_DUPLICATE_RULE
from filters.rouge import TokenEncoder, rouge_l_many, rouge_tokenize
from service.reports.schema import CollapseRadar
from service.statuses import TaskStatus
from service.storage.db import Session
from service.storage.reports import RunRows, read_run_rows
from service.storage.runs import run_iteration

STOP_RULES_VERSION = "1"


class StopRules(BaseModel):
    """Pause the run when the radar shows collapse for `for_iterations` iterations in a row."""

    near_duplicate_rate_above: float | None = Field(
        None, ge=0, le=1, description="Pause when the near-duplicate rate exceeds this."
    )
    novel_bigram_share_below: float | None = Field(
        None, ge=0, le=1, description="Pause when diversity growth (novel bigrams) is below this."
    )
    for_iterations: int = Field(3, ge=1, le=1000, description="K: consecutive iterations.")

    @property
    def active(self) -> bool:
        return (
            self.near_duplicate_rate_above is not None or self.novel_bigram_share_below is not None
        )


def stop_reason(rules: StopRules, radars: Sequence[tuple[int, CollapseRadar]]) -> str | None:
    """Why the run must pause, or None: the first rule whose condition held for each of the last
    `for_iterations` iterations (an iteration with no value for the measure does not count).

    Args:
        rules: The run's stop rules.
        radars: (iteration, radar) in iteration order.
    """
    last = list(radars)[-rules.for_iterations :]
    if len(last) < rules.for_iterations:
        return None
    checks: tuple[tuple[str, float | None, Callable[[float, float], bool], str], ...] = (
        ("near_duplicate_rate", rules.near_duplicate_rate_above, operator.gt, "above"),
        ("novel_bigram_share", rules.novel_bigram_share_below, operator.lt, "below"),
    )
    for name, limit, broken, word in checks:
        if limit is None:
            continue
        values = [getattr(r, name) for _, r in last]
        if all(v is not None and broken(v, limit) for v in values):
            shown = ", ".join(f"{v:.3f}" for v in values)
            first, end = last[0][0], last[-1][0]
            return (
                f"stop rule v{STOP_RULES_VERSION}: {name} {word} {limit} in iterations "
                f"{first}-{end} ({shown})"
            )
    return None


def check_stop_rules(
    session: Session, run_id: int, rules: StopRules
) -> tuple[str, dict[str, Any]] | None:
    """The reason and evidence (radars of the last K iterations) to pause run `run_id`, or None.

    Raises:
        NotFound: no such run.
    """
    if not rules.active:
        return None
    # Only the last K iterations' calls and scores are read; every task is (seen bigrams).
    last = run_iteration(session, run_id)
    rows = read_run_rows(
        session, run_id, since_iteration=last - rules.for_iterations + 1, embeddings=False
    )
    radars = collapse_radars(rows, rows.iteration_numbers()[-rules.for_iterations :])
    why = stop_reason(rules, sorted(radars.items()))
    if why is None:
        return None
    evidence = {
        "rules": rules.model_dump(),
        "version": STOP_RULES_VERSION,
        "radars": {str(i): r.model_dump() for i, r in sorted(radars.items())},
    }
    return why, evidence


def collapse_radars(rows: RunRows, numbers: Sequence[int]) -> dict[int, CollapseRadar]:
    """The radar of each iteration in `numbers` (ascending; earlier iterations count as seen)."""
    encoder = TokenEncoder()
    seeds = [encoder.encode(rouge_tokenize(s)) for s in rows.seed_instructions]
    first = numbers[0] if numbers else 0
    parts = rows.by_iteration()
    before = [
        t.instruction for t in rows.tasks if t.iteration < first and t.status == TaskStatus.ACCEPTED
    ]
    seen = {g for s in [*rows.seed_instructions, *before] for g in ngrams(s, 2)}
    seen_pairs = _verb_noun_pairs([*rows.seed_instructions, *before])
    previous = _accepted(parts[first - 1]) if first - 1 in parts else []
    radars: dict[int, CollapseRadar] = {}
    for i in numbers:
        part = parts.get(i) or RunRows(rows.run_id, rows.status, rows.seed_ids, [])
        kept = _accepted(part)
        codes = [encoder.encode(rouge_tokenize(t)) for t in kept]
        prev_codes = [encoder.encode(rouge_tokenize(t)) for t in previous]
        bigrams = {g for t in kept for g in ngrams(t, 2)}
        pairs = _verb_noun_pairs(kept)
        judged = [s.value for s in part.scores if s.scorer == "llm_judge" and s.value is not None]
        radars[i] = CollapseRadar(
            machine_share_in_prompts=_machine_share(part, rows.seed_ids),
            similarity_to_seeds=_mean_nearest(codes, seeds),
            similarity_to_previous=_mean_nearest(codes, prev_codes),
            near_duplicate_rate=_near_duplicate_rate([t.reject_rule for t in part.tasks]),
            novel_bigram_share=len(bigrams - seen) / len(bigrams) if bigrams else None,
            verb_noun_growth=len(pairs - seen_pairs),
            judge_mean=fmean(judged) if judged else None,
        )
        seen |= bigrams
        seen_pairs |= pairs
        previous = kept
    return radars


def _verb_noun_pairs(instructions: Sequence[str]) -> set[tuple[str, str]]:
    return {p for p in map(root_verb_object, instructions) if p is not None}


def _accepted(part: RunRows) -> list[str]:
    return [t.instruction for t in part.tasks if t.status == TaskStatus.ACCEPTED]


def _machine_share(part: RunRows, seed_ids: set[str]) -> float | None:
    shots = [sid for g in part.generations if g.stage == "instructions" for sid in g.few_shot_ids]
    if not shots:
        return None
    return sum(sid not in seed_ids for sid in shots) / len(shots)


def _mean_nearest(codes: Sequence[object], pool: Sequence[object]) -> float | None:
    """Mean over `codes` of the highest ROUGE-L F against `pool` (None if either is empty)."""
    if not codes or not pool:
        return None
    return fmean(float(rouge_l_many(c, pool).max()) for c in codes)  # type: ignore[arg-type]


def _near_duplicate_rate(rules: Sequence[str | None]) -> float | None:
    # The near-duplicate check sees only candidates the instruction heuristics let through.
    checked = [rule for rule in rules if rule not in INSTRUCTION_RULES]
    if not checked:
        return None
    return sum(rule == NEAR_DUPLICATE_RULE for rule in checked) / len(checked)
