"""Evol-Instruct's elimination rules, each failure kind with siblings, and what passes."""

from __future__ import annotations

import pytest

from filters.evolution import (
    ANSWER_REFUSAL,
    ANSWER_TOO_SHORT,
    COPIES_PROMPT,
    NO_NEW_INFORMATION,
    EliminationConfig,
    check_answer,
    check_evolved,
)

PARENT = "Write a short poem about the ocean at night."


@pytest.mark.parametrize(
    "evolved",
    [
        PARENT,
        "write a SHORT poem about the ocean, at night!",
        "Write a poem about the ocean at night.",  # a word dropped adds nothing
        "Write a short poem about the ocean at night. Write a short poem.",
        "Write a short poem about the ocean at night, a short poem.",
    ],
)
def test_no_new_information(evolved: str) -> None:
    verdict = check_evolved(PARENT, evolved)
    assert not verdict.accepted and verdict.rule == NO_NEW_INFORMATION


@pytest.mark.parametrize(
    "evolved",
    [
        "#Rewritten Prompt#: Write a short poem about the ocean at night in iambic meter.",
        "Given prompt: write a haiku about the ocean at night, with a moon.",
        "Write a haiku about the sea at dusk, unlike the given prompt.",
        "# Created Prompt #\nCompose a limerick about a lighthouse keeper's cat.",
        "As a prompt rewriter, I ask: write a sonnet about tides and the moon.",
        "Rewrite the REWRITTEN  PROMPT into a ballad about storms at sea.",
    ],
)
def test_copies_the_evolving_prompts_wording(evolved: str) -> None:
    verdict = check_evolved(PARENT, evolved)
    assert not verdict.accepted and verdict.rule == COPIES_PROMPT


@pytest.mark.parametrize(
    "evolved",
    [
        "Write a short poem about the ocean at night in iambic pentameter, with exactly 14 lines.",
        "Compose a limerick about a lighthouse keeper's cat.",  # in-breadth: all new words
        "Write a short poem about the ocean at night; then explain each metaphor you used.",
        "写一首关于夜晚海洋的短诗，要求押韵。",  # per-character tokens: new characters count
    ],
)
def test_real_evolutions_pass(evolved: str) -> None:
    assert check_evolved(PARENT, evolved).accepted


def test_new_word_floor_is_a_setting() -> None:
    evolved = "Write a short poem about the ocean at night, in French."
    assert check_evolved(PARENT, evolved).accepted  # 2 new words: "in", "french"
    strict = EliminationConfig(min_new_words=3)
    assert check_evolved(PARENT, evolved, strict).rule == NO_NEW_INFORMATION
    assert check_evolved(PARENT, PARENT, EliminationConfig(min_new_words=0)).accepted


@pytest.mark.parametrize(
    "answer",
    [
        "I'm sorry, but I can't help with that request.",
        "As an AI language model, I cannot write poems about real oceans.",
        "Sorry, I am unable to complete this task.",
    ],
)
def test_refused_answers(answer: str) -> None:
    verdict = check_answer(answer)
    assert not verdict.accepted and verdict.rule == ANSWER_REFUSAL


@pytest.mark.parametrize("answer", ["", "   ", "Yes.", "Ocean night", "..."])
def test_too_short_answers(answer: str) -> None:
    verdict = check_answer(answer)
    assert not verdict.accepted and verdict.rule == ANSWER_TOO_SHORT


@pytest.mark.parametrize(
    "answer",
    [
        "The waves whisper under a silver moon,\nand the tide keeps time.",
        "Step 1: add 3 and 4 to get 7. Step 2: multiply by 2 to get 14.",
        "夜晚的海洋静悄悄。",
    ],
)
def test_real_answers_pass(answer: str) -> None:
    assert check_answer(answer).accepted
