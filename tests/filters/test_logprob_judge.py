"""The logprob pairwise judge: a preference read from the label probabilities after a fixed
answer prefix, never guessed, with both orders still required to agree.

Plain functions stand in for the model here; the real model's probabilities are read in
tests/e2e/test_methods_model.py and tests/generators/test_top_logprobs.py."""

from __future__ import annotations

import hashlib
import math
import re

import pytest

from filters.errors import InvalidInputError
from filters.judge import (
    LOGPROB_ANSWER_PREFIX,
    LOW_LABEL_MASS,
    NO_LABEL,
    NO_LOGPROBS,
    PairwiseJudge,
    comparison_outcome,
    preference_bias,
    read_label_logprobs,
    select_pairs,
)

_RESPONSE = re.compile(r"RESPONSE A:\n(.*)\n\nRESPONSE B:\n(.*)\n\nAnswer with", re.S)


def _top(pa: float, pb: float, other: float = 0.0, *, space: bool = True) -> dict[str, float]:
    """A top-token dict with p(A) = pa, p(B) = pb and the rest on other tokens."""
    s = " " if space else ""
    top = {f"{s}A": math.log(pa), f"{s}B": math.log(pb)}
    if other:
        top[" The"] = math.log(other)
    return top


def read(top: dict[str, float] | None, tie: float = 0.1, mass: float = 0.5) -> float | None:
    return read_label_logprobs("forward", top, tie_threshold=tie, min_label_mass=mass).value


def test_the_value_is_three_times_the_label_share() -> None:
    assert read(_top(0.9, 0.1)) == pytest.approx(2.4)
    assert read(_top(0.1, 0.9)) == pytest.approx(-2.4)
    # Only the share between the labels counts, not the mass left to other tokens.
    assert read(_top(0.45, 0.05, 0.5)) == pytest.approx(2.4)
    # Spaced and unspaced spellings of a label are one label.
    both = {" A": math.log(0.4), "A": math.log(0.2), " B": math.log(0.3)}
    assert read(both) == pytest.approx(3 * (0.6 - 0.3) / 0.9)


@pytest.mark.parametrize(
    ("pa", "pb", "tie", "want"),
    [(0.52, 0.48, 0.1, 0.0), (0.56, 0.44, 0.1, pytest.approx(0.36)), (0.52, 0.48, 0.0, 0.12)],
)
def test_a_share_below_the_tie_threshold_is_a_tie(
    pa: float, pb: float, tie: float, want: object
) -> None:
    value = read(_top(pa, pb), tie=tie)
    assert value == (want if not isinstance(want, float) else pytest.approx(want))


def test_unreadable_probabilities_are_failures_with_reasons_never_guesses() -> None:
    cases = [
        (None, NO_LOGPROBS),
        ({}, NO_LOGPROBS),
        ({" The": -0.1, " a": -2.0, " b": -3.0}, NO_LABEL),  # lower-case is not a label
        ({" C": -0.1, " AB": -2.0}, NO_LABEL),
        (_top(0.2, 0.1, 0.7), LOW_LABEL_MASS),  # the model was about to write something else
    ]
    for top, reason in cases:
        reply = read_label_logprobs("forward", top, tie_threshold=0.1, min_label_mass=0.5)
        assert reply.value is None and reply.failure == reason and reply.form is None
    low = read_label_logprobs("forward", _top(0.2, 0.1, 0.7), tie_threshold=0.1, min_label_mass=0.5)
    assert low.label_logprobs == pytest.approx({"A": math.log(0.2), "B": math.log(0.1)})


@pytest.mark.parametrize(("tie", "mass"), [(-0.1, 0.5), (1.0, 0.5), (0.1, 1.5), (0.1, -0.1)])
def test_thresholds_out_of_range_are_refused(tie: float, mass: float) -> None:
    with pytest.raises(InvalidInputError):
        read_label_logprobs("forward", _top(0.9, 0.1), tie_threshold=tie, min_label_mass=mass)
    with pytest.raises(InvalidInputError):
        PairwiseJudge(
            label_logprobs=lambda p, x: [None] * len(p), tie_threshold=tie, min_label_mass=mass
        )


def test_exactly_one_way_to_ask_the_judge() -> None:
    with pytest.raises(InvalidInputError):
        PairwiseJudge()
    with pytest.raises(InvalidInputError):
        PairwiseJudge(lambda p: p, label_logprobs=lambda p, x: [None] * len(p))


def _by_quality(prompts: list[str], prefix: str) -> list[dict[str, float] | None]:
    """Prefers a response starting with "good" (p = 0.8), whatever its place or length."""
    assert prefix == LOGPROB_ANSWER_PREFIX
    out: list[dict[str, float] | None] = []
    for p in prompts:
        match = _RESPONSE.search(p)
        assert match, p
        ga, gb = match.group(1).startswith("good"), match.group(2).startswith("good")
        out.append(_top(0.5, 0.5) if ga == gb else _top(0.8, 0.2) if ga else _top(0.2, 0.8))
    return out


def _first_shown(prompts: list[str], prefix: str) -> list[dict[str, float] | None]:
    """A weak model's habit: the first label whatever is shown (p = 0.8)."""
    return [_top(0.8, 0.2) for _ in prompts]


ITEMS = [
    ("Name a fruit.", "", "good apple", "a banana is a long yellow fruit"),
    ("Name a fruit.", "", "plain pear and more words", "good cherry"),
    ("Name a colour.", "", "good red", "good blue"),
]


def test_quality_wins_are_kept_in_both_orders_and_ties_stay_ties() -> None:
    judge = PairwiseJudge(label_logprobs=_by_quality)
    assert judge.mode == "logprob"
    judgements = judge.compare(ITEMS)
    assert [j.forward for j in judgements] == pytest.approx([1.8, -1.8, 0.0])
    assert [j.backward for j in judgements] == pytest.approx([1.8, -1.8, 0.0])
    assert [comparison_outcome(j, min_margin=1.0) for j in judgements] == ["kept", "kept", "tie"]
    kept = select_pairs(judgements, min_margin=1.0)
    assert [(p.item, p.chosen) for p in kept] == [(0, 0), (1, 1)]
    # Below the margin: 1.8 < 2.0.
    assert select_pairs(judgements, min_margin=2.0) == []
    bias = preference_bias(ITEMS, judgements, select_pairs(judgements, min_margin=1.0))
    assert bias["position_swap_consistency"] == 1.0
    assert bias["replies_by_form"] == {"logprob": 12} and bias["reply_failures"] == {}
    stored = judgements[0].replies[0].label_logprobs
    assert stored == pytest.approx({"A": math.log(0.8), "B": math.log(0.2)})


def test_a_position_biased_logprob_judge_keeps_no_pair_and_the_figure_says_why() -> None:
    judgements = PairwiseJudge(label_logprobs=_first_shown).compare(ITEMS)
    assert [comparison_outcome(j, min_margin=0.0) for j in judgements] == ["inconsistent"] * 3
    bias = preference_bias(ITEMS, judgements, [])
    assert bias["position_swap_consistency"] == 0.0 and bias["parsed"] == 3


def test_the_recorded_hash_covers_the_rubric_and_the_answer_prefix() -> None:
    logprob = PairwiseJudge(label_logprobs=_first_shown)
    text = PairwiseJudge(lambda p: ["Preferred: tie"] * len(p))
    assert text.mode == "text"
    want = hashlib.sha256(f"{logprob.rubric}\0{LOGPROB_ANSWER_PREFIX}".encode()).hexdigest()
    assert logprob.rubric_sha256 == want != text.rubric_sha256
    assert "Answer with the letter of the better response, A or B." in logprob.rubric
