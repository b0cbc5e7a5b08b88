"""The pairwise judge: both orders, ties kept as ties, length control, selection, bias figures.

A plain function stands in for the model (these test parsing and bookkeeping, not a model)."""

from __future__ import annotations

import re

import pytest

from filters.errors import InvalidInputError, JudgeError
from filters.judge import (
    PairJudgement,
    PairwiseJudge,
    preference_bias,
    select_pairs,
)

_RESPONSE = re.compile(r"RESPONSE A:\n(.*)\n\nRESPONSE B:\n(.*)\n\nReply with", re.S)


def responses(prompt: str) -> tuple[str, str]:
    match = _RESPONSE.search(prompt)
    assert match, prompt
    return match.group(1), match.group(2)


def test_each_text_reaches_the_judge_verbatim_in_both_orders() -> None:
    seen: list[str] = []

    def complete(prompts: list[str]) -> list[str]:
        seen.extend(prompts)
        return ["Preferred: tie\nStrength: 0"] * len(prompts)

    judge = PairwiseJudge(complete, length_control=False)
    hostile = ("Explain ${response_a} and {input}", "", "a $$ b ${x}", "RESPONSE B:\n\\1")
    (judgement,) = judge.compare([hostile])
    assert judgement.tie and judgement.consistent
    assert responses(seen[0]) == (hostile[2], hostile[3])
    assert responses(seen[1]) == (hostile[3], hostile[2])
    assert "INPUT:\n(none)" in seen[0] and seen[0].count("Explain ${response_a}") == 1


def _positional(prompts: list[str]) -> list[str]:
    return ["Preferred: A\nStrength: 2"] * len(prompts)  # always the first shown


def _longer(prompts: list[str]) -> list[str]:
    out = []
    for p in prompts:
        a, b = responses(p)
        la, lb = len(a.split()), len(b.split())
        out.append("Preferred: tie" if la == lb else f"Preferred: {'A' if la > lb else 'B'}")
    return out


def _first_word_quality(prompts: list[str]) -> list[str]:
    # "good" beats anything else whatever the length or position
    out = []
    for p in prompts:
        a, b = responses(p)
        ga, gb = a.startswith("good"), b.startswith("good")
        out.append(
            "Preferred: tie" if ga == gb else f"Preferred: {'A' if ga else 'B'}\nStrength: 3"
        )
    return out


ITEMS = [
    ("Name a fruit.", "", "good apple", "a banana is a long yellow fruit"),
    ("Name a fruit.", "", "plain pear and more words here", "good cherry"),
    ("Name a colour.", "", "red", "blue"),
]


def test_a_position_biased_judge_keeps_no_pair() -> None:
    judgements = PairwiseJudge(_positional).compare(ITEMS)
    assert not any(j.consistent for j in judgements)
    assert select_pairs(judgements, min_margin=0) == []
    bias = preference_bias(ITEMS, judgements, [])
    assert bias["position_swap_consistency"] == 0.0 and bias["kept_pairs"] == 0


def test_length_only_wins_are_flagged() -> None:
    judgements = PairwiseJudge(_longer).compare(ITEMS)
    assert all(j.consistent for j in judgements)
    assert judgements[2].forward == 0 and judgements[2].backward == 0  # equal length: tie
    assert judgements[2].tie
    pairs = select_pairs(judgements, min_margin=1)
    assert [(p.item, p.chosen, p.length_only) for p in pairs] == [(0, 1, True), (1, 0, True)]
    bias = preference_bias(ITEMS, judgements, pairs)
    assert bias["spearman_preference_vs_length"] == pytest.approx(1.0)
    assert bias["length_ratio"]["p50"] > 1 and bias["length_only_pairs"] == 2


def test_quality_wins_survive_the_length_control() -> None:
    judgements = PairwiseJudge(_first_word_quality).compare(ITEMS)
    pairs = select_pairs(judgements, min_margin=2)
    assert [(p.item, p.chosen, p.margin, p.length_only) for p in pairs] == [
        (0, 0, 3.0, False),
        (1, 1, 3.0, False),
    ]
    assert judgements[2].tie  # ties stay ties
    bias = preference_bias(
        ITEMS,
        judgements,
        pairs,
        generators=[("judge", "other"), ("judge", "other"), ("judge", "judge")],
        judge_model="judge",
    )
    assert bias["position_swap_consistency"] == 1.0 and bias["ties"] == 1
    assert bias["self_preference"] == 0.5  # one own win of two mixed pairs
    assert bias["spearman_preference_vs_length"] == pytest.approx(-1.0)
    assert bias["length_ratio"]["p50"] < 1


def test_margin_threshold_and_inconsistent_orders() -> None:
    weak = PairJudgement(forward=1, backward=1, length_controlled=1.0)
    strong = PairJudgement(forward=-3, backward=-2, length_controlled=-1.0)
    split = PairJudgement(forward=2, backward=-1)
    unparsed = PairJudgement(forward=None, backward=2)
    pairs = select_pairs([weak, strong, split, unparsed], min_margin=1.5)
    assert [(p.item, p.chosen, p.margin) for p in pairs] == [(1, 1, 2.5)]
    with pytest.raises(InvalidInputError):
        select_pairs([weak], min_margin=4)


def test_a_short_reply_list_is_an_error() -> None:
    with pytest.raises(JudgeError):
        PairwiseJudge(lambda prompts: prompts[:1]).compare(ITEMS)


def test_unread_replies_are_kept_with_their_reason() -> None:
    replies = iter(["Response A is better.", "I do not prefer A.", "**B**", "Hmm."])
    (judgement,) = PairwiseJudge(lambda prompts: [next(replies) for _ in prompts]).compare(
        ITEMS[:1]
    )
    assert (judgement.forward, judgement.backward, judgement.length_controlled) == (1, None, None)
    assert [(r.order, r.value, r.form, r.failure) for r in judgement.replies] == [
        ("forward", 1, "comparative", None),
        ("backward", None, None, "negated_verdict"),
        ("controlled_forward", -1, "bare", None),
        ("controlled_backward", None, None, "no_verdict"),
    ]
    bias = preference_bias(ITEMS[:1], [judgement], [])
    assert bias["parsed"] == 0 and bias["reply_failures"] == {"negated_verdict": 1, "no_verdict": 1}
    assert bias["replies_by_form"] == {"comparative": 1, "bare": 1}
