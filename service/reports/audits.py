"""The judge audit and the refusal counts of a run, from its stored scores."""

from __future__ import annotations

from collections.abc import Sequence
from statistics import fmean
from typing import Any

from filters.judge import SCORER_NAME as JUDGE
from filters.judge import (
    JudgeReply,
    PairJudgement,
    PreferencePair,
    length_bias,
    preference_bias,
)
from filters.refusal import SCORER_NAME as REFUSAL
from service.reports.schema import (
    JudgeAudit,
    LengthControl,
    PreferenceAudit,
    RefusalProbe,
    Refusals,
)
from service.storage.preference import ComparisonRow
from service.storage.reports import ScoreRow

JUDGE_MIN, JUDGE_MAX = 1, 5  # the rubric's scale (filters/rubrics/judge.v2.txt)


def judge_audit(scores: Sequence[ScoreRow]) -> JudgeAudit | None:
    """Parse failures, length bias and a length-controlled re-scoring of the run's judge scores.

    Returns:
        None when the LLM judge scored nothing in this run.
    """
    judged = [s for s in scores if s.scorer == JUDGE]
    if not judged:
        return None
    failed = sum(s.value is None for s in judged)
    pairs = [(s.value, s.output_chars) for s in judged if s.value is not None and s.output_chars]
    values = [float(v) for v, _ in pairs]
    lengths = [int(n) for _, n in pairs if n is not None]
    return JudgeAudit(
        scored=len(judged),
        parse_failures=failed,
        parse_failure_rate=failed / len(judged),
        length_spearman=length_bias(values, lengths),
        length_controlled=length_controlled(values, lengths),
        rubric_versions=sorted({s.scorer_version for s in judged}),
        rubric_sha256=sorted(
            {str(s.details["rubric_sha256"]) for s in judged if "rubric_sha256" in s.details}
        ),
    )


def length_controlled(scores: Sequence[float], lengths: Sequence[int]) -> LengthControl | None:
    """Each score as if its output had the mean length: ``score - slope * (length - mean)``.

    The slope is the least-squares fit of score on length in characters (the idea of
    AlpacaEval's length-controlled win rate, Dubois et al., 2024, on one judge's scores).

    Returns:
        The slope per 1,000 characters, the mean absolute change of the scores and the share
        whose score, rounded and clipped to the rubric's 1-5, changes; None with fewer than 3
        scores or a single length.
    """
    if len(scores) < 3 or len(set(lengths)) < 2:
        return None
    mean_len, mean_score = fmean(lengths), fmean(scores)
    var = sum((n - mean_len) ** 2 for n in lengths)
    slope = (
        sum((n - mean_len) * (s - mean_score) for s, n in zip(scores, lengths, strict=True)) / var
    )
    adjusted = [s - slope * (n - mean_len) for s, n in zip(scores, lengths, strict=True)]
    changed = [
        min(JUDGE_MAX, max(JUDGE_MIN, round(a))) != round(s)
        for s, a in zip(scores, adjusted, strict=True)
    ]
    return LengthControl(
        slope_per_1k_chars=slope * 1000,
        mean_abs_change=fmean(abs(a - s) for s, a in zip(scores, adjusted, strict=True)),
        changed_share=sum(changed) / len(changed),
    )


def refusals(scores: Sequence[ScoreRow], probe_event: dict[str, Any] | None) -> Refusals:
    """Refusals the refusal scorer found in accepted outputs, and the last probe's rates."""
    flagged = [s.value for s in scores if s.scorer == REFUSAL and s.value is not None]
    refused = sum(v == 1.0 for v in flagged)
    return Refusals(
        outputs_scored=len(flagged),
        outputs_refused=refused,
        refused_share=refused / len(flagged) if flagged else None,
        probe=RefusalProbe.model_validate(probe_event["data"]) if probe_event else None,
    )


def preference_audit(rows: Sequence[ComparisonRow]) -> PreferenceAudit | None:
    """The bias figures of a preference run's stored comparisons; None when it has none."""
    if not rows:
        return None
    items = [(r.instruction, r.input, r.response_1, r.response_2) for r in rows]
    judgements = [
        PairJudgement(
            r.forward,
            r.backward,
            r.length_controlled,
            tuple(JudgeReply(**reply) for reply in r.replies),
        )
        for r in rows
    ]
    pairs = [
        PreferencePair(i, 0 if r.chosen == 1 else 1, r.margin or 0.0, r.length_only)
        for i, r in enumerate(rows)
        if r.chosen is not None
    ]
    judge_models = {r.judge_model for r in rows}
    judge_model = judge_models.pop() if len(judge_models) == 1 else None
    bias = preference_bias(
        items,
        judgements,
        pairs,
        generators=[(g1 or "", g2 or "") for g1, g2 in (r.generators for r in rows)],
        judge_model=judge_model,
    )
    outcomes: dict[str, int] = {}
    for r in rows:
        outcomes[r.outcome] = outcomes.get(r.outcome, 0) + 1
    own = judge_model is not None and all(set(r.generators) == {judge_model} for r in rows)
    del bias["comparisons"]
    return PreferenceAudit(comparisons=len(rows), outcomes=outcomes, judge_is_generator=own, **bias)
