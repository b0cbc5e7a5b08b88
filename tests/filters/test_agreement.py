"""The index's decisions equal the exhaustive ROUGE-L > 0.7 rule of the real rouge-score.

Pool: the 175 seed tasks and the 252 user-oriented instructions. Candidates: perturbed
copies of them (word drops, swaps, insertions, case changes; 1 to 8 edits, so some fall
below 0.7) plus unrelated originals checked against the other half of the pool.
"""

from __future__ import annotations

import random

import pytest

from filters.near_duplicates import NearDuplicateIndex
from tests.filters.perturb import perturb

rouge_scorer = pytest.importorskip("rouge_score.rouge_scorer")
rouge_tokenizer = pytest.importorskip("rouge_score.tokenize")


def exhaustive_best(cand: list[str], pool: list[tuple[str, list[str]]]) -> tuple[str, float]:
    """Best match by rouge-score's own LCS scoring (the paper's exhaustive loop).

    Pairs whose lengths alone cap ROUGE-L F at 0.7 or less (F <= 2 min(m, n) / (m + n))
    are skipped: they cannot change a > 0.7 decision, and rouge-score's Python LCS is slow.
    """
    best_key, best = "", -1.0
    for key, tokens in pool:
        if 2 * min(len(cand), len(tokens)) <= 0.7 * (len(cand) + len(tokens)):
            continue
        f = rouge_scorer._score_lcs(cand, tokens).fmeasure
        if f > best:
            best_key, best = key, f
    return best_key, best


@pytest.mark.slow
def test_index_agrees_with_exhaustive_rouge_score(seed_tasks, user_oriented) -> None:
    originals = [(t["id"], t["instruction"]) for t in seed_tasks + user_oriented]
    rng = random.Random(20240611)
    candidates = []
    for i, (key, text) in enumerate(originals):
        for copy in range(2):
            candidates.append((f"{key}~{copy}", perturb(text, rng, rng.randint(1, 8))))
        if i % 4 == 0:
            candidates.append((f"{key}~cased", text.upper()))
    pool_tokens = [(k, rouge_tokenizer.tokenize(t, None)) for k, t in originals]

    index = NearDuplicateIndex()
    index.add_many((k, t, None) for k, t in originals)
    verdicts = index.check_batch(candidates, add_accepted=False)
    # Within a batch candidates also see each other; checked one by one they see the pool only.
    singles = [index.check_batch([c], add_accepted=False)[0] for c in candidates]

    truth_pos = found = false_pos = 0
    for (_key, text), verdict, single in zip(candidates, verdicts, singles, strict=True):
        _, best = exhaustive_best(rouge_tokenizer.tokenize(text, None), pool_tokens)
        is_dup = best > 0.7
        truth_pos += is_dup
        found += is_dup and not single.accepted
        false_pos += not is_dup and not single.accepted
        if not single.accepted:
            # The evidence is rouge-score's number for that pair, bit for bit.
            nearest = dict(pool_tokens)[single.nearest_id]
            expected = rouge_scorer._score_lcs(rouge_tokenizer.tokenize(text, None), nearest)
            assert single.similarity == expected.fmeasure > 0.7
        if not single.accepted:
            assert not verdict.accepted  # the batch can only add reasons to reject
    recall = found / truth_pos
    assert truth_pos > 600 and truth_pos < len(candidates)  # both outcomes are exercised
    assert false_pos == 0  # precision 1.0
    print(f"agreement: {truth_pos} duplicates of {len(candidates)}, recall {recall:.4f}")
    assert recall >= 0.95, f"recall {recall:.3f}"


def test_batch_equals_sequential_exhaustive_decision(seed_tasks) -> None:
    """Within a batch, each candidate is judged against pool + earlier accepted ones."""
    rng = random.Random(5)
    texts = [t["instruction"] for t in seed_tasks[:60]]
    batch = [(f"c{i}", perturb(rng.choice(texts), rng, rng.randint(0, 3))) for i in range(80)]
    index = NearDuplicateIndex()
    verdicts = index.check_batch(batch)
    accepted: list[tuple[str, list[str]]] = []
    for (key, text), verdict in zip(batch, verdicts, strict=True):
        tokens = rouge_tokenizer.tokenize(text, None)
        _, best = exhaustive_best(tokens, accepted) if accepted else ("", 0.0)
        if best > 0.7:
            assert not verdict.accepted
            assert verdict.similarity == best
        elif verdict.accepted:
            accepted.append((key, tokens))
        else:  # a rejection is only ever the rule's
            raise AssertionError(f"{key} rejected but exhaustive best is {best}")
    assert 0 < len(index) < len(batch) and len(index) == len(accepted)
