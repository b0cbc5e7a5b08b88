"""Perturbed copies of real instructions: word drops, swaps, insertions, case changes."""

from __future__ import annotations

import random

FILLERS = ("please", "also", "really", "the", "quickly", "new", "simple", "carefully", "now")


def perturb(text: str, rng: random.Random, edits: int) -> str:
    """Apply ``edits`` random word-level edits to ``text``.

    Args:
        text: The original.
        rng: Source of randomness (seeded by the caller).
        edits: Number of edits.

    Returns:
        The edited text (words re-joined by single spaces).
    """
    words = text.split()
    for _ in range(edits):
        op = rng.choice(("drop", "swap", "insert", "case"))
        if op == "drop" and len(words) > 2:
            words.pop(rng.randrange(len(words)))
        elif op == "swap" and len(words) > 1:
            i = rng.randrange(len(words) - 1)
            words[i], words[i + 1] = words[i + 1], words[i]
        elif op == "insert" or not words:
            words.insert(rng.randrange(len(words) + 1), rng.choice(FILLERS))
        else:
            i = rng.randrange(len(words))
            words[i] = words[i].upper() if rng.random() < 0.5 else words[i].lower()
    return " ".join(words)
