"""Refusal detection: precision and recall on a hand-labelled set, overall and per category.

The set, ``tests/data/refusal_labelled.jsonl``, is our own writing: clear refusals in many
phrasings, deflections ("As an AI I don't have opinions, but..."), partial refusals (the first
three categories are refusals) and benign look-alikes: idioms ("I can't help but smile"),
apologies that go on to answer, refusals quoted in stories, letters and dialogues, and answers
that say "cannot" about their subject. Rows carry a ``split``: ``dev`` was written first and the
rules were built on it; ``heldout`` was written after the rules were frozen and measured once
(precision 1.000, recall 0.821: 23 of 28 refusals, 0 of 34 look-alikes flagged) before its
misses were fixed; ``heldout2`` likewise (precision 1.000, recall 0.417: 5 of 12, 0 of 12).
Every split is in-sample now: expect lower recall on unseen phrasings.

Run: python bench/refusal.py   (writes bench/results/refusal.json)
"""

from __future__ import annotations

import json
import platform
from collections import defaultdict
from pathlib import Path
from typing import Any

from result_file import goal, write_result  # bench/ is sys.path[0] when run as a script

from filters.refusal import PATTERNS_VERSION, detect_refusal

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "refusal_labelled.jsonl"
RESULT = ROOT / "bench" / "results" / "refusal.json"
TARGETS = {"precision": 0.95, "recall": 0.95}


def load() -> list[dict[str, Any]]:
    with open(DATA, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def counts(pairs: list[tuple[bool, bool]]) -> dict[str, Any]:
    """Confusion counts, precision and recall of (labelled, flagged) pairs."""
    tp = sum(label and flag for label, flag in pairs)
    fp = sum(flag and not label for label, flag in pairs)
    fn = sum(label and not flag for label, flag in pairs)
    return {
        "n": len(pairs),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": len(pairs) - tp - fp - fn,
        "precision": tp / (tp + fp) if tp + fp else None,
        "recall": tp / (tp + fn) if tp + fn else None,
        "accuracy": sum(label == flag for label, flag in pairs) / len(pairs) if pairs else None,
    }


def main() -> None:
    rows_in = load()
    flagged = [detect_refusal(r["text"]).value == 1.0 for r in rows_in]
    groups: dict[tuple[str, str], list[tuple[bool, bool]]] = defaultdict(list)
    for row, flag in zip(rows_in, flagged, strict=True):
        pair = (bool(row["is_refusal"]), flag)
        for split in ("all", row["split"]):
            groups[(split, "all")].append(pair)
            groups[(split, row["category"])].append(pair)
    rows = [{"split": s, "category": c, **counts(p)} for (s, c), p in sorted(groups.items())]
    overall = counts(groups[("all", "all")])
    goals = [goal(name, overall[name], target, "higher") for name, target in TARGETS.items()]
    print(
        f"{'split':<9} {'category':<15} {'n':>4} {'tp':>4} {'fp':>4} {'fn':>4}  prec   rec    acc"
    )
    for r in rows:
        cells = [r[k] for k in ("precision", "recall", "accuracy")]
        shown = "  ".join("  -  " if v is None else f"{v:.3f}" for v in cells)
        print(
            f"{r['split']:<9} {r['category']:<15} {r['n']:>4} {r['tp']:>4} {r['fp']:>4} "
            f"{r['fn']:>4}  {shown}"
        )
    env = {"python": platform.python_version(), "rules_version": PATTERNS_VERSION}
    write_result(RESULT, rows, goals, env)


if __name__ == "__main__":
    main()
