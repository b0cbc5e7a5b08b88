"""Heuristic quality, refusal detection and rates."""

from __future__ import annotations

import json

import pytest

from filters.quality import SCORER_NAME, SCORER_VERSION, score_heuristic_quality
from filters.refusal import PATTERNS_VERSION, detect_refusal, is_refusal, refusal_rates

INSTR = "Give three tips for staying healthy."
GOOD = "1. Eat a balanced diet with vegetables. 2. Exercise regularly. 3. Sleep eight hours."


def test_good_output_scores_high_with_components() -> None:
    score = score_heuristic_quality(INSTR, "", GOOD)
    assert score.scorer == SCORER_NAME and score.version
    assert score.value is not None and score.value > 0.9
    assert set(score.details["components"]) == {
        "length",
        "lexical_diversity",
        "repetition",
        "echo",
        "residue",
        "truncation",
    }
    json.dumps(score.details)  # storable as JSON


@pytest.mark.parametrize(
    "inp,out",
    [
        ("", "the cat the cat the cat the cat the cat the cat the cat the cat"),  # loop
        ("", INSTR),  # echoes the instruction
        ("I love this movie so much", "I love this movie so much"),  # echoes the input
        ("", "word " * 5000),  # runaway length and repetition
    ],
)
def test_degenerate_outputs_score_low(inp: str, out: str) -> None:
    value = score_heuristic_quality(INSTR, inp, out).value
    assert value is not None and value < 0.5


@pytest.mark.parametrize("out", ["", "   ", "\u200b", "!!!"])
def test_empty_outputs_score_zero(out: str) -> None:
    assert score_heuristic_quality(INSTR, "", out).value == 0.0


@pytest.mark.parametrize(
    "good,looping",
    [
        ("多喝水，早睡早起，每天散步半小时。", "健康很重要。" * 20),
        ("水をたくさん飲み、早く寝て、毎日散歩しましょう。", "健康が大事です。" * 20),
        ("Пейте больше воды, спите восемь часов и гуляйте.", "вода " * 40),
        ("Comer bien, dormir ocho horas y caminar.", "comer " * 40),
    ],
)
def test_output_in_any_script_is_scored(good: str, looping: str) -> None:
    # Text without Latin letters used to have no tokens and score 0 whatever it said.
    assert score_heuristic_quality(INSTR, "", good).value == 1.0
    assert score_heuristic_quality(INSTR, "", looping).value < 0.3
    assert score_heuristic_quality(INSTR, "", good).version == SCORER_VERSION == "10"


@pytest.mark.parametrize(
    "text",
    [
        "I'm sorry, but I can't help with that request.",
        "I’m sorry, but I can’t do that.",  # curly apostrophes
        "As an AI language model, I don't have personal opinions.",
        "I cannot help with creating malware.",
        "I am unable to provide that information.",
        "Sorry, I can't assist with this.",
        "I must decline this request.",
        "АS AN AI LANGUAGE MODEL I cannot say.",  # Cyrillic А
        "I'm sorry,\u200b but I cannot comply.",
    ],
)
def test_refusals_are_flagged(text: str) -> None:
    score = detect_refusal(text)
    assert score.value == 1.0 and score.scorer == "refusal" and score.version == PATTERNS_VERSION
    assert score.details["matched"]


@pytest.mark.parametrize(
    "text",
    [
        "Here are three tips: eat well, sleep, exercise.",
        "The error means the program cannot open the file.",
        "Sorry for the delay! The answer is 42.",
        "",
        "Lo siento mucho por tu pérdida.",
        "x" * 500 + " I cannot help with that.",  # late phrase is content, not a refusal
    ],
)
def test_answers_are_not_refusals(text: str) -> None:
    assert not is_refusal(text)


def test_refusal_rates_are_separate() -> None:
    records = [(False, True), (False, False), (False, False), (False, False)]
    records += [(True, False), (True, True)]
    rates = refusal_rates(records)
    assert rates["over_refusal_rate"] == 0.25
    assert rates["under_refusal_rate"] == 0.5
    assert (rates["benign_count"], rates["harmful_count"]) == (4, 2)
    assert "refusal_rate" not in rates
    empty = refusal_rates([])
    assert empty["over_refusal_rate"] is None and empty["under_refusal_rate"] is None
