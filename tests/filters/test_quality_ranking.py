"""The heuristic quality scorer ranks each kind of junk below real answers (issue 18).

Each kind has siblings: other positions, scripts, markers and sizes, so a test proves the
kind is caught, not one string. The measured ranking is bench/quality.py.
"""

from __future__ import annotations

import pytest

from filters.completion_defects import residue_factor, truncation_factor
from filters.quality import score_heuristic_quality

INSTR = "Give three tips for staying healthy."
ANSWER = "Eat a balanced diet. Exercise for thirty minutes a day. Sleep eight hours a night."


def value(output: str, inp: str = "", instruction: str = INSTR) -> float:
    score = score_heuristic_quality(instruction, inp, output).value
    assert score is not None
    return score


@pytest.mark.parametrize(
    "instruction,inp,output",
    [
        (INSTR, "", ANSWER),
        (INSTR, "", "1. Eat vegetables.\n2. Walk daily.\n3. Sleep well."),
        (INSTR, "", "- Eat vegetables\n- Walk daily\n- Sleep well"),  # list items end bare
        ("Is the review positive or negative?", "I loved it.", "Positive"),
        ("Solve for x.", "2x + 1 = 7", "x = 3"),
        ("Fix the grammar.", "She go to school every days.", "She goes to school every day."),
        ("Write a function that adds two numbers.", "", "def add(a, b):\n    return a + b"),
        ("Make a table of two fruits.", "", "Fruit | Colour\nApple | Red\nBanana | Yellow"),
        ("Translate to Japanese.", "Good morning.", "おはようございます。"),
        ("List two sorting algorithms.", "", "1. Quicksort\n2. Merge sort\n\n1. Heap sort"),
    ],
)
def test_real_answers_score_high(instruction: str, inp: str, output: str) -> None:
    assert value(output, inp, instruction) > 0.9


@pytest.mark.parametrize(
    "output",
    [
        INSTR,
        f"Output: {INSTR}",
        INSTR.lower().rstrip("."),
        f"Answer:\n{INSTR}",
    ],
)
def test_echoed_instruction_scores_below_real(output: str) -> None:
    assert value(output) < 0.5 < value(ANSWER)


@pytest.mark.parametrize(
    "output",
    [
        f"{ANSWER}\n\n5. Write a poem about the sea.",
        f"{ANSWER}\n12) Summarise the article.",
        f"{ANSWER}\n4.",
        f"{ANSWER}\nTask 7: Write a haiku.",
        f"{ANSWER}\n\nInstruction: Name three rivers.",
        "3. Name three rivers in Europe.",
        "1. Eat well.\n2. Walk.\n3. Sleep.\n\n9. Describe your favourite city.",
    ],
)
def test_list_number_residue_scores_below_real(output: str) -> None:
    assert residue_factor(output)[0] < 1.0
    assert value(output) < 0.7 < value(ANSWER)


@pytest.mark.parametrize(
    "output",
    [
        "Eat a balanced diet. Exercise for thirty minutes a day. Sleep eight",
        "Eat a balanced diet, exercise daily and",
        "Eat a balanced diet, exercise daily, sleep eight hours,",
        "Eat a balanced diet with plenty of the",
        "1. Eat vegetables.\n2. Walk daily.\n3. Sleep eight hours on",
        "Comer bien. Dormir ocho horas. Caminar todos los dias por la",
        "First, preheat the oven (",
        "- Eat vegetables\n- Walk daily\n-",
        "Fruit | Colour\nApple | Red\n|",
    ],
)
def test_truncated_outputs_score_below_real(output: str) -> None:
    assert truncation_factor(output)[0] < 1.0
    assert value(output) < value(ANSWER)


@pytest.mark.parametrize(
    "output",
    [
        "stay healthy " * 30,
        ANSWER + "\n" + "\n".join(["Sleep eight hours a night."] * 8),
        "eat " * 50,
        "水を飲む。" * 30,
    ],
)
def test_degenerate_outputs_score_below_real(output: str) -> None:
    assert value(output) < 0.5 < value(ANSWER)


@pytest.mark.parametrize("output", ["Output:", "Answer:\n", "Response 2:", '""', "-", "..."])
def test_bare_labels_and_punctuation_score_zero(output: str) -> None:
    assert value(output) == 0.0
