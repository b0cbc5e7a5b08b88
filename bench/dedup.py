"""Near-duplicate filtering: Alpaca-style exhaustive ROUGE-L versus the near-duplicate index.

Pools of 1k, 10k and 50k Stanford Alpaca instructions (shuffled with a fixed seed). Candidates
per pool: lightly edited pool items (1-3 word edits) plus unseen Alpaca instructions. The
exhaustive method is the original Alpaca script's loop, single process: rouge-score's
``_score_lcs`` of the tokenized candidate against every tokenized pool instruction; it is
timed on a sample of candidates where a full pass would take too long (the table says so).
Recall of both methods is measured against the exhaustive ROUGE-L > 0.7 decision for every
candidate, computed with the exact C++ ROUGE-L (bit-equal to rouge-score, checked here on
the timed sample and in tests/filters/test_rouge.py).

The natural stream (``bench/natural_stream.py``) adds paraphrases, not word edits: real
instructions and rule-based paraphrases of them, checked in order against everything kept
before (the paper's loop), with the exhaustive rule on the same kept set as truth.

Run: python bench/dedup.py   (writes bench/results/dedup.json)
"""

from __future__ import annotations

import json
import platform
import random
import resource
import time
from pathlib import Path

import numpy as np
from natural_stream import INDEX_METHOD, run_natural_stream  # bench/ is on sys.path
from rouge_score import rouge_scorer

from filters.near_duplicates import NearDuplicateIndex
from filters.rouge import TokenEncoder, rouge_l_many, rouge_tokenize

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "alpaca_data.json"
RESULT = ROOT / "bench" / "results" / "dedup.json"
POOLS = (1_000, 10_000, 50_000)
EXHAUSTIVE_SAMPLE = {1_000: 200, 10_000: 40, 50_000: 24}
EDITED, UNSEEN = 500, 500  # candidates per pool size
BATCH = 100  # candidates per check_batch call, as a worker would send them
SEED = 42
THRESHOLD = 0.7
FILLERS = ("please", "also", "really", "the", "quickly", "new", "simple", "carefully", "now")


def perturb(text: str, rng: random.Random, edits: int) -> str:
    """Word-level light edits: drop, swap, insert, case change."""
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
            words[i] = words[i].upper()
    return " ".join(words)


def load_instructions() -> list[str]:
    with open(DATA, encoding="utf-8") as fh:
        instructions = [row["instruction"] for row in json.load(fh)]
    random.Random(SEED).shuffle(instructions)
    return instructions


def make_candidates(instructions: list[str], pool_size: int) -> list[str]:
    rng = random.Random(SEED + pool_size)
    edited = [
        perturb(instructions[rng.randrange(pool_size)], rng, rng.randint(1, 3))
        for _ in range(EDITED)
    ]
    unseen = instructions[50_000 : 50_000 + UNSEEN]  # never in any pool
    return edited + unseen


def exact_truth(pool: list[str], candidates: list[str]) -> list[float]:
    """Best ROUGE-L of each candidate over the whole pool (exact, C++)."""
    encoder = TokenEncoder()
    codes = [encoder.encode(rouge_tokenize(t)) for t in pool]
    return [float(rouge_l_many(encoder.encode(rouge_tokenize(c)), codes).max()) for c in candidates]


def run_exhaustive(pool: list[str], sample: list[str]) -> tuple[float, list[float]]:
    """The Alpaca loop: rouge-score LCS against every pool instruction; seconds per candidate."""
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    pool_tokens = [scorer._tokenizer.tokenize(t) for t in pool]  # done once, as Alpaca does
    start = time.perf_counter()
    best = []
    for cand in sample:
        tokens = scorer._tokenizer.tokenize(cand)
        best.append(max(rouge_scorer._score_lcs(tokens, p).fmeasure for p in pool_tokens))
    return (time.perf_counter() - start) / len(sample), best


def run_index(pool: list[str], candidates: list[str]) -> dict:
    """Build the index, then check all candidates in batches (not added to the pool)."""
    start = time.perf_counter()
    index = NearDuplicateIndex(threshold=THRESHOLD)
    index.add_many((f"p{i}", t, None) for i, t in enumerate(pool))
    build_s = time.perf_counter() - start
    keyed = [(f"c{i}", t) for i, t in enumerate(candidates)]
    start = time.perf_counter()
    verdicts = []
    for i in range(0, len(keyed), BATCH):
        verdicts += index.check_batch(keyed[i : i + BATCH], add_accepted=False)
    per_candidate = (time.perf_counter() - start) / len(candidates)
    prepared = index.prepare([(k, t, None) for k, t in keyed])  # for the candidate count only
    per_query = np.mean([len(c) for c in index.storage.candidates([p.tokens for p in prepared])])
    return {
        "build_s": build_s,
        "s_per_candidate": per_candidate,
        "rejected": [not v.accepted for v in verdicts],
        "candidates_per_query": float(per_query),
    }


def bench_pool(instructions: list[str], size: int) -> list[dict]:
    pool = instructions[:size]
    candidates = make_candidates(instructions, size)
    truth = exact_truth(pool, candidates)
    is_dup = [t > THRESHOLD for t in truth]
    positives = sum(is_dup)
    rng = random.Random(SEED)
    sample_idx = sorted(rng.sample(range(len(candidates)), EXHAUSTIVE_SAMPLE[size]))
    ex_cost, ex_best = run_exhaustive(pool, [candidates[i] for i in sample_idx])
    agree = all((b > THRESHOLD) == is_dup[i] for b, i in zip(ex_best, sample_idx, strict=True))
    exact_equal = all(b == truth[i] for b, i in zip(ex_best, sample_idx, strict=True))
    idx = run_index(pool, candidates)
    found = sum(r and d for r, d in zip(idx["rejected"], is_dup, strict=True))
    false_pos = sum(r and not d for r, d in zip(idx["rejected"], is_dup, strict=True))
    common = {"pool": size, "candidates": len(candidates), "duplicates": positives}
    return [
        {
            **common,
            "method": "exhaustive rouge-score (Alpaca loop, 1 process)",
            "timed_candidates": len(sample_idx),
            "sampled": len(sample_idx) < len(candidates),
            "s_per_candidate": ex_cost,
            "candidates_per_s": 1 / ex_cost,
            "recall": 1.0,
            "precision": 1.0,
            "decisions_match_exact": agree,
            "similarities_bit_equal": exact_equal,
        },
        {
            **common,
            "method": INDEX_METHOD,
            "timed_candidates": len(candidates),
            "sampled": False,
            "s_per_candidate": idx["s_per_candidate"],
            "candidates_per_s": 1 / idx["s_per_candidate"],
            "recall": found / positives if positives else None,
            "precision": (found / (found + false_pos)) if found + false_pos else None,
            "build_s": idx["build_s"],
            "candidates_per_query": idx["candidates_per_query"],
        },
    ]


def goal(name: str, value: float, target: float, direction: str) -> dict:
    met = value >= target if direction == "higher" else value <= target
    return {"name": name, "value": value, "target": target, "direction": direction, "met": met}


def main() -> None:
    t0 = time.perf_counter()
    instructions = load_instructions()
    rows = []
    for size in POOLS:
        rows += bench_pool(instructions, size)
        print_table(rows[-2:])
    ex = {r["pool"]: r["s_per_candidate"] for r in rows if r["method"] != INDEX_METHOD}
    ix = {r["pool"]: r for r in rows if r["method"] == INDEX_METHOD}
    natural = run_natural_stream(instructions, threshold=THRESHOLD, batch=BATCH, seed=SEED)
    print_natural(natural)
    rows += natural
    nat = next(r for r in natural if r["method"] == INDEX_METHOD)
    goals = [
        goal("natural_recall", nat["recall"], 0.999, "higher"),
        goal("natural_precision", nat["precision"], 1.0, "higher"),
        goal("speedup_50k", ex[50_000] / ix[50_000]["s_per_candidate"], 1000, "higher"),
        goal("recall_50k", ix[50_000]["recall"], 0.97, "higher"),
        goal(
            "cost_growth_1k_50k",
            ix[50_000]["s_per_candidate"] / ix[1_000]["s_per_candidate"],
            5,
            "lower",
        ),
    ]
    result = {
        "rows": rows,
        "goals": goals,
        "env": {
            "python": platform.python_version(),
            "machine": platform.machine(),
            "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "total_s": time.perf_counter() - t0,
        },
    }
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    for g in goals:
        print(
            f"{g['name']}: {g['value']:.4g} (target {g['direction']} {g['target']}) met={g['met']}"
        )
    print(f"wrote {RESULT} in {result['env']['total_s']:.0f} s")


def print_natural(rows: list[dict]) -> None:
    for r in rows:
        print(
            f"natural stream {r['stream']:>6}  {r['method']:<48} "
            f"{r['s_per_candidate'] * 1e3:10.3f} ms/cand  rejected by truth {r['duplicates']}  "
            f"recall {r['recall']:.4f}  precision {r['precision']:.4f}"
        )


def print_table(rows: list[dict]) -> None:
    for r in rows:
        timed = (
            f"{r['timed_candidates']} sampled" if r["sampled"] else f"all {r['timed_candidates']}"
        )
        recall = "n/a" if r["recall"] is None else f"{r['recall']:.3f}"
        print(
            f"pool {r['pool']:>6}  {r['method']:<48} {r['s_per_candidate'] * 1e3:10.3f} ms/cand "
            f"{r['candidates_per_s']:10.1f} cand/s  recall {recall}  timed: {timed}"
        )


if __name__ == "__main__":
    main()
