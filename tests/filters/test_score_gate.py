"""The score gate's verdicts on plain scores (the pipeline: tests/service/test_score_gate.py)."""

from __future__ import annotations

import pydantic
import pytest

from filters.score_gate import RULE, ScoreGate, check_score_gate
from filters.types import Score


def quality(value: float | None, version: str = "3") -> Score:
    return Score("heuristic_quality", version, value)


@pytest.mark.parametrize("value", [0.5, 0.51, 1.0])
def test_scores_at_or_above_the_minimum_pass(value: float) -> None:
    assert check_score_gate([quality(value)], {"heuristic_quality": 0.5}) is None


@pytest.mark.parametrize("value,version", [(0.49, "3"), (0.0, "3"), (0.1, "7")])
def test_a_score_below_names_the_rule_and_the_scorers_version(value: float, version: str) -> None:
    verdict = check_score_gate([quality(value, version)], {"heuristic_quality": 0.5})
    assert verdict is not None and not verdict.accepted
    assert (verdict.rule, verdict.rule_version) == (RULE, f"heuristic_quality@{version}")
    assert f"{value:.4g}" in verdict.reason and "0.5" in verdict.reason


def test_an_unscored_instance_fails_and_other_scorers_are_ignored() -> None:
    scores = [Score("refusal", "2", 1.0), Score("llm_judge", "2", None)]
    verdict = check_score_gate(scores, {"llm_judge": 3.0})
    assert verdict is not None and verdict.rule_version == "llm_judge@2"
    assert "no score" in verdict.reason
    assert check_score_gate(scores, {"heuristic_quality": 0.9}) is None  # did not run


def test_the_first_failing_scorer_by_name_decides() -> None:
    scores = [quality(0.2), Score("llm_judge", "2", 1.0)]
    verdict = check_score_gate(scores, {"llm_judge": 4.0, "heuristic_quality": 0.5})
    assert verdict is not None and verdict.rule_version == "heuristic_quality@3"


@pytest.mark.parametrize(
    "gate", [{"refusal": 0.5}, {"no_such_scorer": 0.1}, {"heuristic_quality": float("nan")}]
)
def test_only_higher_is_better_scorers_with_finite_minimums_can_be_gated(
    gate: dict[str, float],
) -> None:
    with pytest.raises(pydantic.ValidationError):
        pydantic.TypeAdapter(ScoreGate).validate_python(gate)
