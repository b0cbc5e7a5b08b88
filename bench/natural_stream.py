"""The paper's loop over a paraphrase-rich stream: the index against the exhaustive rule.

Sources: the 175 Self-Instruct seed instructions and the last 3,000 of the shuffled Alpaca
instructions. Each source gets 0-3 paraphrases (:mod:`bench.paraphrases`), some made
from an earlier paraphrase, so pairs of paraphrases meet too; the whole stream is shuffled
with a fixed seed. Instructions are checked in order, in batches as a worker sends them,
against everything kept before. Truth for each instruction is the exhaustive ROUGE-L > 0.7
rule against exactly the set the index has kept at that point (the C++ ROUGE-L, bit-equal to
rouge-score). For contrast, the MinHash LSH that proposed candidates before rule version 2
(256 permutations, 51 bands of 5 rows, unigram shingles) is queried on the same states.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import numpy as np
from datasketch import MinHashLSH
from paraphrases import paraphrase  # bench/ is on sys.path: the benches run as scripts

from filters.near_duplicates import NearDuplicateIndex
from filters.rouge import TokenEncoder, rouge_l_f, rouge_l_many, rouge_tokenize
from filters.signatures import MinHasher

SEEDS = Path(__file__).resolve().parents[2] / "shared" / "data" / "self_instruct_seed_tasks.jsonl"
ALPACA_SOURCES = slice(-3000, None)
PARAPHRASES_PER_SOURCE = (0, 1, 1, 2, 3)
F_EDGES = (0.0, 0.5, 0.6, 0.7, 0.75, 0.8, 0.9, 0.99, 1.0)
INDEX_METHOD = "exact token-overlap candidates + ROUGE-L"
LSH_BANDS_ROWS = (51, 5)
LSH_METHOD = "MinHash LSH 51x5 + ROUGE-L (rule version 1)"


def build_stream(instructions: list[str], seed: int) -> tuple[list[str], list[tuple[str, str]]]:
    """The shuffled stream, and each paraphrase with the text it was made from.

    Args:
        instructions: Alpaca instructions, shuffled as in the main bench.
        seed: Seed of the paraphrases and of the order.

    Returns:
        ``(stream, pairs)``: the texts in checking order, and ``(origin, paraphrase)`` pairs.
    """
    with open(SEEDS, encoding="utf-8") as fh:
        seeds = [json.loads(line)["instruction"] for line in fh if line.strip()]
    rng = random.Random(seed)
    stream = seeds + instructions[ALPACA_SOURCES]
    pairs = []
    for source in list(stream):
        origin = source
        for _ in range(rng.choice(PARAPHRASES_PER_SOURCE)):
            text = paraphrase(origin, rng, rng.randint(2, 5))
            pairs.append((origin, text))
            stream.append(text)
            origin = text if rng.random() < 0.5 else source
    rng.shuffle(stream)
    return stream, pairs


def describe_pairs(pairs: list[tuple[str, str]]) -> dict:
    """ROUGE-L histogram of paraphrases against their origins, and their unigram Jaccard."""
    f, jaccard = [], []
    for a, b in pairs:
        ta, tb = rouge_tokenize(a), rouge_tokenize(b)
        f.append(rouge_l_f(ta, tb))
        sa, sb = set(ta), set(tb)
        jaccard.append(len(sa & sb) / len(sa | sb) if sa | sb else 1.0)
    fa, ja = np.array(f), np.array(jaccard)
    band = (fa > 0.7) & (fa <= 0.8)
    counts, _ = np.histogram(fa, bins=F_EDGES)
    return {
        "paraphrase_pairs": len(pairs),
        "paraphrase_f_edges": list(F_EDGES),
        "paraphrase_f_counts": counts.tolist(),
        "pairs_f_in_0.7_0.8": int(band.sum()),
        "jaccard_mean_in_band": float(ja[band].mean()) if band.any() else None,
        "jaccard_min_in_band": float(ja[band].min()) if band.any() else None,
    }


def run_natural_stream(
    instructions: list[str], *, threshold: float, batch: int, seed: int
) -> list[dict]:
    """Run the loop; one row for the index, one for the exhaustive rule, one for the old LSH.

    Args:
        instructions: Alpaca instructions, shuffled as in the main bench.
        threshold: ROUGE-L threshold (paper: 0.7).
        batch: Instructions per ``check_batch`` call.
        seed: Seed of the stream.

    Returns:
        Result rows with recall and precision against the exhaustive rule and timings.
    """
    stream, pairs = build_stream(instructions, seed)
    index = NearDuplicateIndex(threshold=threshold)
    hasher = MinHasher(num_perm=256, seed=1)
    lsh = MinHashLSH(num_perm=256, params=LSH_BANDS_ROWS)
    encoder = TokenEncoder()
    kept_codes: list = []
    kept_keys: dict[str, int] = {}
    index_s = truth_s = lsh_s = 0.0
    truth_dup = index_dup = found = lsh_found = in_band = 0
    for start in range(0, len(stream), batch):
        keyed = [(f"n{start + i}", t) for i, t in enumerate(stream[start : start + batch])]
        t0 = time.perf_counter()
        verdicts = index.check_batch(keyed)
        index_s += time.perf_counter() - t0
        for (key, text), verdict in zip(keyed, verdicts, strict=True):
            tokens = rouge_tokenize(text)
            code = encoder.encode(tokens)
            t0 = time.perf_counter()
            best = float(rouge_l_many(code, kept_codes).max()) if kept_codes else 0.0
            truth_s += time.perf_counter() - t0
            t0 = time.perf_counter()
            minhash = hasher.minhashes([tokens])[0]
            proposed = [kept_keys[k] for k in lsh.query(minhash)] if tokens else []
            lsh_best = max(
                rouge_l_many(code, [kept_codes[i] for i in proposed]).tolist(), default=0.0
            )
            lsh_s += time.perf_counter() - t0
            is_dup, rejected = best > threshold, not verdict.accepted
            truth_dup += is_dup
            index_dup += rejected
            found += is_dup and rejected
            lsh_found += is_dup and lsh_best > threshold
            in_band += is_dup and best <= 0.8
            if verdict.accepted:
                kept_keys[key] = len(kept_codes)
                kept_codes.append(code)
                if tokens:
                    lsh.insert(key, minhash, check_duplication=False)
    common = {"stream": len(stream), "candidates": len(stream), "duplicates": truth_dup}
    n = len(stream)

    def row(method: str, seconds: float, hits: int, flagged: int) -> dict:
        return {
            **common,
            "method": method,
            "s_per_candidate": seconds / n,
            "candidates_per_s": n / seconds,
            "recall": hits / truth_dup if truth_dup else None,
            "precision": hits / flagged if flagged else None,
        }

    return [
        {
            **row("exhaustive ROUGE-L (C++, truth)", truth_s, truth_dup, truth_dup),
            "duplicates_f_in_0.7_0.8": in_band,
            **describe_pairs(pairs),
        },
        {**row(INDEX_METHOD, index_s, found, index_dup), "kept": len(kept_codes)},
        row(LSH_METHOD, lsh_s, lsh_found, lsh_found),
    ]
