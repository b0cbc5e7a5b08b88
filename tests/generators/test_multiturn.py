"""Growing conversations on a scripted backend with the real turn rules (filters.turns):
follow-up kinds, provenance, early stops by rule, 2-4 user turns, the system prompt."""

from __future__ import annotations

import random

import pytest
from pydantic import ValidationError

from filters.turns import check_turn
from generators.backends.scripted import ScriptedBackend
from generators.bootstrap import Iteration
from generators.config import BootstrapConfig
from generators.multiturn import (
    FOLLOW_UPS,
    Conversation,
    MultiturnConfig,
    clean_turn,
    grow,
    start_conversations,
    transcript,
)
from generators.prompts import load_template
from generators.types import Instance, PoolTask

TASKS = [
    PoolTask(
        "1", "Write a haiku about rain.", False, "seed", [Instance("", "Soft rain on the roof")]
    ),
    PoolTask(
        "2", "Summarize the text.", False, "seed", [Instance("Cats sleep a lot.", "Cats nap.")]
    ),
    PoolTask("3", "No instances here.", False, "seed"),
]


FOLLOW_UP_TEXTS = [
    "Could you explain the second line in more detail?",
    "Please rewrite it using only words of one syllable.",
    "That part is wrong: fix the grammar of the ending.",
    "Now add a title and sign it with a made-up name.",
    "Make the whole thing shorter, under ten words.",
    "Which image in it matters most, and why?",
]


ANSWER_TEXTS = [
    "The second line shows the rain as a quiet visitor.",
    "Gray drops tap the tin; I sit and hear them fall.",
    "Fixed: the ending now reads as a full sentence.",
    "Title: Roof Song, by Mara Vell.",
    "Rain taps; I listen.",
    "The roof matters most: it turns the rain into music.",
    "Cats nap often, mostly in warm spots.",
]


def rule_check(conv: Conversation, user: str, answer: str) -> str | None:
    verdict = check_turn(conv.last("user"), conv.last("assistant"), user, answer)
    return None if verdict.accepted else f"{verdict.rule}: {verdict.reason}"


def test_conversations_grow_to_their_targets_with_provenance() -> None:
    count = iter(range(1000))

    def reply(prompt: str) -> str:
        n = next(count)
        if prompt.rstrip().endswith("User:"):
            return f" {FOLLOW_UP_TEXTS[n % len(FOLLOW_UP_TEXTS)]}\n\nAssistant: x"
        return f"User: ignored\n{ANSWER_TEXTS[n % len(ANSWER_TEXTS)]}"

    it = Iteration(backend=ScriptedBackend(reply), config=BootstrapConfig(), seed=1)
    config = MultiturnConfig(min_user_turns=2, max_user_turns=4, system_prompt="Be kind.")
    convs = start_conversations(TASKS, rng=random.Random(5), config=config)
    assert [c.task_id for c in convs] == ["1", "2"]  # a task without an instance cannot start
    assert convs[1].messages[:2] == [
        {"role": "system", "content": "Be kind."},
        {"role": "user", "content": "Summarize the text.\n\nCats sleep a lot."},
    ]
    grow(it, convs, rng=random.Random(5), config=config, check=rule_check)
    for conv in convs:
        assert conv.stopped_by is None
        assert 2 <= conv.user_turns == conv.target_user_turns <= 4
        roles = [m["role"] for m in conv.messages]
        assert roles == ["system"] + ["user", "assistant"] * conv.user_turns
        assert len(conv.generation_ids) == 2 * (conv.user_turns - 1)
        assert set(conv.follow_ups) <= set(FOLLOW_UPS)
        assert all(not m["content"].startswith("User:") for m in conv.messages)
    records = {r.id: r for r in it.records}
    for conv in convs:
        stages = [records[g].stage for g in conv.generation_ids]
        assert stages == ["follow_up", "answer"] * (conv.user_turns - 1)
        first = records[conv.generation_ids[0]]
        assert first.template_name == f"multiturn_{conv.follow_ups[0]}"
        assert first.few_shot_ids == [conv.task_id]


@pytest.mark.parametrize(
    ("answer", "rule"),
    [
        ("I'm sorry, but I can't help with that.", "turn_refusal"),
        ("Ok.", "turn_length"),
        ("Soft rain on the roof", "turn_echo"),
    ],
)
def test_a_failed_turn_ends_the_conversation(answer: str, rule: str) -> None:
    def reply(prompt: str) -> str:
        if prompt.rstrip().endswith("User:"):
            return "Please make it about summer rain instead."
        return answer

    it = Iteration(backend=ScriptedBackend(reply), config=BootstrapConfig(), seed=1)
    config = MultiturnConfig(min_user_turns=3, max_user_turns=3)
    convs = start_conversations(TASKS[:1], rng=random.Random(0), config=config)
    grow(it, convs, rng=random.Random(0), config=config, check=rule_check)
    (conv,) = convs
    assert conv.user_turns == 1 and conv.stopped_by is not None
    assert conv.stopped_by.startswith(rule)
    assert len(it.records) == 2  # one round, then nothing more for a stopped conversation
    assert conv.generation_ids == [r.id for r in it.records]


def test_templates_and_text_helpers() -> None:
    for name in [f"multiturn_{k}" for k in FOLLOW_UPS] + ["multiturn_answer"]:
        assert load_template(name, 1).fields == {"conversation"}
    assert transcript(
        [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}]
    ) == ("User: Hi\n\nAssistant: Yo")
    assert clean_turn("  Assistant: Sure thing.\n\nUser: next") == "Sure thing."
    with pytest.raises(ValidationError):
        MultiturnConfig(min_user_turns=4, max_user_turns=2)
    with pytest.raises(ValidationError):
        MultiturnConfig(min_user_turns=1)
