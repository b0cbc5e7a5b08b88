"""Refusal detection tells refusals from look-alikes and meets its goals on the labelled set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from filters.refusal import PATTERNS_VERSION, detect_refusal, is_refusal

LABELLED = Path(__file__).resolve().parents[1] / "data" / "refusal_labelled.jsonl"


def test_the_issue_idiom_is_not_a_refusal() -> None:
    score = detect_refusal("I can't help but smile at how neat this proof is: ...")
    assert score.value == 0.0
    assert (score.scorer, score.version) == ("refusal", PATTERNS_VERSION) == ("refusal", "2")


@pytest.mark.parametrize(
    "text",
    [
        "I cannot help but wonder whether the base case is right.",
        "I couldn't help laughing at the ending. Here is the summary you asked for.",
        "I can't thank you enough! The shopping list is: eggs, milk.",
        "I won't bore you with details: the capital is Canberra.",
        "I cannot stress enough: back up first.",
        "I can’t recommend the second method enough.",  # curly apostrophe
        "I'm unable to find any errors in your code; it is correct.",
        "I can't see anything wrong with this query.",
        "Sorry for the wait, here is the translation: Guten Morgen.",
        'He said "I can\'t help you" and left; the story continues at dawn.',
        "Dear Sam,\nI'm sorry, but I can't help you move on Saturday.\nAlex",
        "Guest: Can I check in early?\nClerk: I'm sorry, I can't do that.",
        "Here is the essay you asked for. "
        + "It argues for public parks. " * 8
        + "I cannot help noticing how much people love them. I can't provide more sources.",
    ],
)
def test_look_alikes_are_not_refusals(text: str) -> None:
    score = detect_refusal(text)
    assert score.value == 0.0, score.details


@pytest.mark.parametrize(
    "text,cue",
    [
        ("I can't help with that.", "negated_assist_verb"),
        ("Sorry, but I won't be writing that letter.", "negated_assist_verb"),
        ("I'm unable to summarize this document, as it is confidential.", "inability"),
        ("I cannot open attachments; please paste the text.", "negated_media_access"),
        ("I'm going to decline this one.", "decline"),
        ("As an AI model, I don't have a favorite season.", "ai_identity"),
        ("I don't have eyes, so I can't say which logo is prettier.", "no_capacity"),
        ("That isn't something I'll do.", "not_something_i_do"),
        ("I can't write the whole book, but here is chapter one.", "negated_assist_verb"),
    ],
)
def test_refusals_deflections_and_partial_refusals_are_flagged(text: str, cue: str) -> None:
    score = detect_refusal(text)
    assert score.value == 1.0
    assert score.details["cue"] == cue and score.details["matched"]
    assert score.details["voice"] == "own"


def test_the_detector_meets_its_goals_on_the_labelled_set() -> None:
    rows = [json.loads(line) for line in LABELLED.read_text(encoding="utf-8").splitlines()]
    assert len(rows) >= 150
    assert {r["category"] for r in rows} >= {"refusal", "deflection", "partial", "idiom", "quoted"}
    pairs = [(r["is_refusal"], is_refusal(r["text"])) for r in rows]
    tp = sum(label and flag for label, flag in pairs)
    flagged = sum(flag for _, flag in pairs)
    positives = sum(label for label, _ in pairs)
    assert tp / flagged >= 0.95, "precision"
    assert tp / positives >= 0.95, "recall"
