"""LLM-as-judge: prompts, parsing, recorded failures, length bias."""

from __future__ import annotations

import hashlib
from importlib import resources

import pytest

from filters.errors import JudgeError, RubricError
from filters.judge import LLMJudge, length_bias, parse_reply
from tests.templating.hostile_values import HOSTILE_VALUES, render_by_split

ITEMS = [
    ("Give three tips for staying healthy.", "", "Eat well, sleep, exercise."),
    ("Translate to French.", "Good morning", "Bonjour"),
    ("Name a color.", "", "Blue"),
]


def echo_scores(replies: list[str]):
    calls: list[list[str]] = []

    def complete(prompts: list[str]) -> list[str]:
        calls.append(prompts)
        return replies[: len(prompts)]

    return complete, calls


def test_prompts_come_from_the_versioned_rubric() -> None:
    complete, calls = echo_scores(["Score: 5\nRationale: fine"] * 3)
    judge = LLMJudge(complete)
    rubric = (resources.files("filters") / "rubrics" / "judge.v2.txt").read_text()
    assert judge.rubric_sha256 == hashlib.sha256(rubric.encode()).hexdigest()
    prompts = judge.build_prompts(ITEMS)
    assert "Good morning" in prompts[1] and "(none)" in prompts[0]
    assert "${instruction}" not in prompts[0]
    scores = judge.score(ITEMS)
    assert len(calls) == 1 and calls[0] == prompts
    assert [s.value for s in scores] == [5.0, 5.0, 5.0]
    assert scores[0].scorer == "llm_judge" and scores[0].version == "v2"
    assert scores[0].details["rubric_sha256"] == judge.rubric_sha256
    assert scores[0].details["rationale"] == "fine"


def test_a_placeholder_in_the_instruction_reaches_the_judge_verbatim() -> None:
    # Issue #15: the v1 judge substituted the response into this instruction.
    judge = LLMJudge(echo_scores([])[0])
    instruction = "Explain the {output} field of this JSON schema."
    response = "It holds the generated text."
    (prompt,) = judge.build_prompts([(instruction, "", response)])
    assert f"INSTRUCTION:\n{instruction}\n" in prompt
    assert prompt.count(response) == 1
    assert prompt.count("{output}") == 1


@pytest.mark.parametrize("value", HOSTILE_VALUES)
@pytest.mark.parametrize("position", [0, 1, 2])
def test_every_field_is_rendered_verbatim_once(value: str, position: int) -> None:
    judge = LLMJudge(echo_scores([])[0])
    item = ["Rewrite the sentence.", "The cat sat.", "A cat was sitting."]
    item[position] = f"Text with {value} inside"
    (prompt,) = judge.build_prompts([(item[0], item[1], item[2])])
    values = dict(zip(("instruction", "input", "output"), item, strict=True))
    assert prompt == render_by_split(judge.rubric, values)
    assert prompt.count(f"Text with {value} inside") == 1


def test_fields_holding_each_others_slot_names_stay_apart() -> None:
    judge = LLMJudge(echo_scores([])[0])
    item = ("Use ${output} and $input.", "${instruction} {output}", "\\1 ${input} $$")
    (prompt,) = judge.build_prompts([item])
    values = dict(zip(("instruction", "input", "output"), item, strict=True))
    assert prompt == render_by_split(judge.rubric, values)


def test_parse_failures_are_recorded_not_dropped() -> None:
    replies = ["Score: 4\nRationale: ok", "I think it is good", "Score: 9\nRationale: wow"]
    judge = LLMJudge(echo_scores(replies)[0])
    scores = judge.score(ITEMS)
    assert len(scores) == 3
    assert scores[0].value == 4.0
    assert scores[1].value is None and "no 'Score" in scores[1].details["error"]
    assert scores[1].details["raw_reply"] == "I think it is good"
    assert scores[2].value is None and "1 to 5" in scores[2].details["error"]
    assert all("rubric_sha256" in s.details for s in scores)


@pytest.mark.parametrize(
    "reply,value",
    [
        ("**Score:** 3\n**Rationale:** partly right", 3),
        ('{"score": 2, "rationale": "wrong"}', 2),
        ("score = 5", 5),
        ("Score: 4.0\nRationale: x", 4),
    ],
)
def test_parse_reply_formats(reply: str, value: int) -> None:
    assert parse_reply(reply)[0] == value


def test_wrong_reply_count_raises() -> None:
    judge = LLMJudge(lambda prompts: ["Score: 3"])
    with pytest.raises(JudgeError):
        judge.score(ITEMS)
    assert judge.score([]) == []


def test_unknown_rubric() -> None:
    with pytest.raises(RubricError):
        LLMJudge(lambda p: p, rubric_version="v999")
    with pytest.raises(RubricError):  # retired: its {name} slots were filled by str.replace
        LLMJudge(lambda p: p, rubric_version="v1")
    with pytest.raises(RubricError):
        LLMJudge(lambda p: p, rubric_version="../x")


def test_length_bias() -> None:
    assert length_bias([1, 2, 3, 4, 5], [10, 20, 30, 40, 50]) == pytest.approx(1.0)
    assert length_bias([5, 4, 3, 2, 1], [10, 20, 30, 40, 50]) == pytest.approx(-1.0)
    assert length_bias([3, 3, 3], [1, 2, 3]) is None  # constant scores
    assert length_bias([1, None, 2], [1, 2, 3]) is None  # too few scored pairs
    assert length_bias([1.0, None, 2.0, 3.0], [5, 1, 6, 7]) == pytest.approx(1.0)
