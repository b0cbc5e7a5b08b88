"""Stop rules read the last K iterations of the collapse radar; a gap or one good one resets."""

from __future__ import annotations

import pytest

from service.reports.collapse import StopRules, stop_reason
from service.reports.schema import CollapseRadar


def radar(near_dup: float | None = 0.0, novel: float | None = 1.0) -> CollapseRadar:
    return CollapseRadar(
        machine_share_in_prompts=None,
        similarity_to_seeds=None,
        similarity_to_previous=None,
        near_duplicate_rate=near_dup,
        novel_bigram_share=novel,
        judge_mean=None,
    )


@pytest.mark.parametrize(
    ("rules", "values", "expected"),
    [
        ({"near_duplicate_rate_above": 0.5, "for_iterations": 2}, [0.9, 0.6, 0.7], "2-3"),
        ({"near_duplicate_rate_above": 0.5, "for_iterations": 2}, [0.9, 0.7, 0.5], None),
        ({"near_duplicate_rate_above": 0.5, "for_iterations": 3}, [0.9, 0.9], None),
        ({"near_duplicate_rate_above": 0.5, "for_iterations": 1}, [0.1, None], None),
        ({"near_duplicate_rate_above": 0.0, "for_iterations": 1}, [0.0, 0.01], "2-2"),
    ],
)
def test_near_duplicate_rule(
    rules: dict[str, float], values: list[float | None], expected: str | None
) -> None:
    radars = [(i, radar(near_dup=v)) for i, v in enumerate(values, start=1)]
    why = stop_reason(StopRules.model_validate(rules), radars)
    if expected is None:
        assert why is None
    else:
        assert why is not None and "near_duplicate_rate above" in why
        assert f"iterations {expected}" in why


def test_diversity_growth_rule() -> None:
    rules = StopRules(novel_bigram_share_below=0.2, for_iterations=2)
    assert stop_reason(rules, [(1, radar(novel=0.1)), (2, radar(novel=0.3))]) is None
    why = stop_reason(rules, [(4, radar(novel=0.1)), (5, radar(novel=0.0))])
    assert why == ("stop rule v1: novel_bigram_share below 0.2 in iterations 4-5 (0.100, 0.000)")


def test_no_rules_never_stop() -> None:
    assert not StopRules().active
    assert stop_reason(StopRules(), [(1, radar(near_dup=1.0, novel=0.0))]) is None
