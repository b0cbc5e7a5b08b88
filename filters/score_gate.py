"""The score gate: minimum scores an instance must reach to be kept, checked where it is made.

A gate maps a scorer's name to the lowest value kept, e.g. ``{"heuristic_quality": 0.5}``.
Only scorers whose higher values are better can be gated (``refusal`` is 1.0 for a refusal, so
a minimum on it would keep refusals). A rejection names the rule ``score_gate`` and, as its
version, the scorer's name and version (``heuristic_quality@3``): a threshold means something
only for the scorer version that produced the score.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Literal

from pydantic import Field

from filters.types import Score, Verdict

RULE = "score_gate"
GatedScorer = Literal["heuristic_quality", "llm_judge"]
ScoreGate = dict[GatedScorer, Annotated[float, Field(allow_inf_nan=False)]]
"""Scorer name -> minimum value kept (validated by pydantic wherever it is embedded)."""


def check_score_gate(scores: Iterable[Score], gate: Mapping[Any, float]) -> Verdict | None:
    """The gate's verdict on one instance's scores: a rejection, or None when it passes.

    Args:
        scores: the instance's scores (any scorers; those not in the gate are ignored).
        gate: scorer name -> minimum value kept.

    Returns:
        None when every gated score is at least its minimum; otherwise a rejection by
        ``score_gate`` with ``rule_version`` ``"<scorer>@<version>"`` of the first failing
        scorer (in name order) and the value and minimum in the reason. A gated score whose
        value is None (the scorer failed, e.g. an unparsable judge reply) fails the gate:
        an instance nobody could score is not known to be good enough.
    """
    by_name = {s.scorer: s for s in scores}
    for name in sorted(gate):
        score = by_name.get(name)
        if score is None:
            continue  # the scorer did not run on this instance (e.g. the task was rejected)
        minimum = gate[name]
        if score.value is None:
            reason = f"{name} v{score.version} gave no score (minimum {minimum:g})"
        elif score.value < minimum:
            reason = f"{name} v{score.version} scored {score.value:.4g} < minimum {minimum:g}"
        else:
            continue
        return Verdict(False, RULE, f"{name}@{score.version}", reason=reason)
    return None
