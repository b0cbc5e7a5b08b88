"""The per-turn rules of grown conversations: each failure kind with siblings, and what passes."""

from __future__ import annotations

import pytest

from filters.turns import ECHO, LENGTH, NEAR_DUPLICATE, REFUSAL, TurnRules, check_turn

USER0 = "Write a short poem about the ocean at night."
ANSWER0 = "The waves whisper under a silver moon, and the tide keeps time."


@pytest.mark.parametrize(
    ("user", "answer", "rule"),
    [
        ("Make it rhyme, please.", "I'm sorry, but I can't help with that.", REFUSAL),
        ("Make it rhyme, please.", "As an AI language model, I cannot write poems.", REFUSAL),
        ("Make it rhyme, please.", "Make it rhyme, please.", ECHO),
        ("Make it rhyme, please.", "make it RHYME please", ECHO),
        ("Make it rhyme, please.", ANSWER0, ECHO),  # the previous answer again
        (USER0, "Moonlight on the water, a silent tide sings softly to the shore.", ECHO),
        ("Why?", "Because a poem about the ocean needs a rhythm of its own.", LENGTH),
        ("Make it rhyme, please.", "Okay.", LENGTH),
        (
            "Write a short poem about the ocean at night, please.",
            "Stars above the sleeping sea, the night wind hums a melody.",
            NEAR_DUPLICATE,
        ),
        (
            "Now make it rhyme in couplets.",
            "The waves whisper under a silver moon, and the tide keeps its time.",
            NEAR_DUPLICATE,
        ),
    ],
)
def test_failed_turns(user: str, answer: str, rule: str) -> None:
    verdict = check_turn(USER0, ANSWER0, user, answer)
    assert not verdict.accepted and verdict.rule == rule, verdict


@pytest.mark.parametrize(
    ("user", "answer"),
    [
        (
            "Make it rhyme, please.",
            "Silver moon and silent sea,\nthe night tide sings its song to me.",
        ),
        (
            "Actually, I meant a haiku.",
            "Night waves softly fold\nmoonlight on the dark water\nthe tide breathes and sleeps",
        ),
        (
            "Can you explain the metaphor in the second line?",
            "The tide keeping time compares the sea to a clock.",
        ),
    ],
)
def test_real_follow_ups_pass(user: str, answer: str) -> None:
    assert check_turn(USER0, ANSWER0, user, answer).accepted


def test_bounds_are_settings() -> None:
    strict = TurnRules(min_user_words=6)
    assert (
        check_turn(
            USER0, ANSWER0, "Make it rhyme, please.", "Silver moon and silent sea sing.", strict
        ).rule
        == LENGTH
    )
    loose = TurnRules(near_duplicate_threshold=1.0)
    same_ask = "Write a short poem about the ocean at night, please."
    assert check_turn(
        USER0, ANSWER0, same_ask, "Stars above the sleeping sea, wind hums.", loose
    ).accepted
