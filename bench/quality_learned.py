"""A learned truncation component, measured against scorer v5 (an experiment, not shipped).

A logistic regression on nine text features of an output (v5's truncation factor, a closing
mark at the end, log words, log lines, the last line's words over the median line's, the last
word's sentence-end rate from ``filters.word_ends`` (-1 when not listed), whether that word is
cut inside, and whether the last character is a letter or a digit) is trained on the ``dev``
split alone (the 175 seed answers against their ``truncated`` junk, ``bench/junk.py``), then
scored on ``dev_alpaca`` (out of sample) and ``heldout``. Two figures per split: the model's
probability alone as a ranking of real answers above truncated junk, and the whole scorer with
that probability in place of v5's truncation component (other kinds included, since the
component scales every score).

Measured 2026-12-01 (one look at held-out for each of three variants; the clipped ones,
``min(1, p / 0.5)`` and ``min(1, p / 0.8)``, gave held-out truncated 0.863 and 0.883):

- probability alone, truncated AUC: dev 0.977 (in sample), dev_alpaca 0.982, held-out 0.926
  (v5's whole scorer: 0.948, 0.941, 0.862);
- in the scorer, unclipped: truncated dev 0.974, dev_alpaca 0.978, held-out 0.924; model
  obvious 0.949 (v5 0.940); but held-out list_number 0.938 (v5 0.965, under the goal), and the
  held-out real answers' mean score falls 0.891 -> 0.795 (34 of 252 below 0.5, v5 26): a score
  gate would reject more real answers. So it is not shipped; what it shows is that v5 loses
  most of its held-out truncation AUC to real answers its truncation component marks down (18
  of the 26 held-out real answers below 0.5) and to ties at 1.0 among the rest.

Run: python bench/quality_learned.py   (writes bench/results/quality_learned.json)
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from junk import KINDS, make_junk  # bench/ is sys.path[0] when run as a script
from quality import SPLITS, auc, load_examples, scores
from result_file import write_result
from sklearn.linear_model import LogisticRegression

import filters.quality as scorer
from filters.completion_defects import truncation_factor
from filters.word_ends import end_rate, is_cut_word, last_word

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "bench" / "results" / "quality_learned.json"
TRAIN = ("dev",)


def features(output: str) -> list[float]:
    """The nine features of one output (see the module docstring)."""
    factor, _ = truncation_factor(output)
    text = output.rstrip()
    lines = [line for line in text.splitlines() if line.strip()] or [""]
    word = last_word(text)
    rate = end_rate(word) if word else None
    counts = [len(line.split()) for line in lines]
    median = statistics.median(counts[:-1]) if len(counts) > 1 else counts[0]
    return [
        factor,
        float(text[-1:] in ".!?)\"'"),
        math.log1p(len(text.split())),
        math.log1p(len(lines)),
        counts[-1] / median if median else 1.0,
        -1.0 if rate is None else rate,
        float(bool(word) and is_cut_word(word or "")),
        float(text[-1:].isalpha()),
        float(text[-1:].isdigit()),
    ]


def train() -> LogisticRegression:
    """The model, fitted on :data:`TRAIN`'s real answers (1) and truncated junk (0)."""
    x, y = [], []
    for split in TRAIN:
        examples = load_examples(SPLITS[split])
        x += [features(e[2]) for e in examples]
        y += [1] * len(examples)
        junk = make_junk(examples, "truncated")
        x += [features(e[2]) for e in junk]
        y += [0] * len(junk)
    return LogisticRegression(max_iter=1000).fit(np.array(x), np.array(y))


def main() -> None:
    model = train()

    def probability(output: str) -> float:
        return float(model.predict_proba(np.array([features(output)]))[0, 1])

    rows: list[dict[str, Any]] = []
    original: Callable[[str], tuple[float, str]] = scorer.truncation_factor
    for split, path in SPLITS.items():
        examples = load_examples(path)
        junk = make_junk(examples, "truncated")
        alone = auc([probability(e[2]) for e in examples], [probability(e[2]) for e in junk])
        rows.append({"split": split, "variant": "probability_alone", "auc_truncated": alone})
        scorer.truncation_factor = lambda out: (probability(out), "learned")  # type: ignore[assignment]
        try:
            good = scores(examples)
            row: dict[str, Any] = {"split": split, "variant": "in_scorer_unclipped"}
            for kind in KINDS:
                row[f"auc_{kind}"] = auc(good, scores(make_junk(examples, kind)))
            row["good_mean"] = sum(good) / len(good)
            row["good_below_0.5"] = sum(v < 0.5 for v in good)
        finally:
            scorer.truncation_factor = original  # type: ignore[assignment]
        rows.append(row)
    for r in rows:
        print(
            " ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in r.items())
        )
    write_result(RESULT, rows, [], {"train": list(TRAIN), "features": 9})


if __name__ == "__main__":
    main()
