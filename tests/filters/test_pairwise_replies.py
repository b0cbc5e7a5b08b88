"""The pairwise reply parser reads each reasonable form a weak judge writes, by kind, and
refuses the rest with a reason: never a guessed winner.

Every form is checked for both positions (a parser that only ever says A fails the B sibling)
and in other cases and markdown."""

from __future__ import annotations

import pytest

from filters.errors import ReplyParseError
from filters.pairwise_replies import (
    CONFLICTING_VERDICTS,
    EMPTY_REPLY,
    FAILURE_REASONS,
    FORMS,
    INVALID_STRENGTH,
    NEGATED_VERDICT,
    NO_VERDICT,
    UNKNOWN_SIDE,
    ZERO_STRENGTH,
    parse_pairwise_reply,
    parse_pairwise_verdict,
)

# (reply with {S} for the side, strength, form); each is checked with S = A and S = B
WIN_FORMS = [
    ("Preferred: {S}\nStrength: 2", 2, "labelled"),
    ("**Preferred:** {S}\n**Strength:** 3", 3, "labelled"),
    ("Preferred = {S}", 1, "labelled"),
    ("Winner: Response {S}", 1, "labelled"),
    ('{{"preferred": "{S}", "strength": 2}}', 2, "labelled"),
    ("{S}", 1, "bare"),
    ("**{S}**", 1, "bare"),
    ("(Response {S}).", 1, "bare"),
    ("Response {S} is better.", 1, "comparative"),
    ("Response **{S}** is clearly better than the other one.", 2, "comparative"),
    ("{S} is much better", 3, "comparative"),
    ("Answer {S} wins.", 1, "comparative"),
    ("The better response is {S}.", 1, "comparative"),
    ("{S} is the better answer because it is correct.", 1, "comparative"),
    ("I prefer {S}.", 1, "choice"),
    ("I would choose Response {S} since it names three fruits.", 1, "choice"),
]


@pytest.mark.parametrize(("side", "sign"), [("A", 1), ("B", -1)])
@pytest.mark.parametrize(("template", "strength", "form"), WIN_FORMS)
def test_each_win_form_in_both_positions(
    template: str, strength: int, form: str, side: str, sign: int
) -> None:
    verdict = parse_pairwise_verdict(template.format(S=side))
    assert (verdict.value, verdict.form) == (sign * strength, form)


@pytest.mark.parametrize(
    ("reply", "value"),
    [
        ("RESPONSE B IS BETTER", -1),
        ("response a is better", 1),
        ("i prefer b.", -1),
        ("b", -1),
        ("preferred: a", 1),
        ("__A__", 1),
        ("`B`", -1),
        ("### Verdict: B", -1),
    ],
)
def test_case_and_markdown_do_not_matter(reply: str, value: int) -> None:
    assert parse_pairwise_reply(reply) == value


@pytest.mark.parametrize(
    "reply",
    [
        "Preferred: tie\nStrength: 0",
        "Both are equal.",
        "Both responses are equally good.",
        "They are equally helpful.",
        "It's a tie.",
        "No clear preference.",
        "Neither is better.",
        "Answer: I think the two answers are equal",
        '{"preferred": "tie"}',
    ],
)
def test_ties_stay_ties(reply: str) -> None:
    assert parse_pairwise_verdict(reply).value == 0


@pytest.mark.parametrize(
    ("reply", "value"),
    [
        ("A is worse than B.", -1),  # the other side wins
        ("Response B is inferior.", 1),
    ],
)
def test_a_side_called_worse_loses(reply: str, value: int) -> None:
    assert parse_pairwise_reply(reply) == value


UNREADABLE = [
    ("", EMPTY_REPLY),
    ("   \n", EMPTY_REPLY),
    ("Hmm, hard to say.", NO_VERDICT),
    ("I prefer a shorter answer in general.", NO_VERDICT),  # "a" the article, not side A
    ("A better answer would list more fruits.", NO_VERDICT),
    ("A is not better than B.", NEGATED_VERDICT),  # B wins, or a tie? not said
    ("B is not better than A.", NEGATED_VERDICT),
    ("Response B isn't better.", NEGATED_VERDICT),
    ("I do not prefer A.", NEGATED_VERDICT),
    ("I don't prefer B", NEGATED_VERDICT),
    ("A is better. No wait, B is better.", CONFLICTING_VERDICTS),
    ("Response A is better, but it's a tie overall.", CONFLICTING_VERDICTS),
    ("Preferred: C\nStrength: 2", UNKNOWN_SIDE),
    ("Preferred: the first", UNKNOWN_SIDE),
    ("Preferred: A\nStrength: 0", ZERO_STRENGTH),
    ("Preferred: B\nStrength: 5", INVALID_STRENGTH),
]


def test_every_form_and_failure_reason_is_tested() -> None:
    assert {form for _, _, form in WIN_FORMS} | {"tie"} == set(FORMS)
    assert {reason for _, reason in UNREADABLE} == set(FAILURE_REASONS)


@pytest.mark.parametrize(("reply", "reason"), UNREADABLE)
def test_unreadable_replies_fail_with_a_reason(reply: str, reason: str) -> None:
    with pytest.raises(ReplyParseError) as caught:
        parse_pairwise_verdict(reply)
    assert caught.value.reason == reason


def test_the_labelled_line_wins_over_the_discussion() -> None:
    # The rubric's own form is read even when the reasoning before it mentions the other side.
    reply = "Response A is shorter and B is better at first sight.\nPreferred: A\nStrength: 1"
    assert parse_pairwise_verdict(reply).value == 1


def test_repeated_statements_take_the_strongest() -> None:
    assert parse_pairwise_reply("B is better. In fact B is much better.") == -3
