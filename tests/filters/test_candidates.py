"""The exact candidate index: its bound holds for float ROUGE-L, and it never misses a pair."""

from __future__ import annotations

import random
from collections.abc import Callable

import numpy as np
import pytest

from filters import candidates
from filters.candidates import (
    TokenOverlapIndex,
    element_bits,
    elements,
    listing_sizes,
    min_lcs,
    prefix_lists,
    probe_size,
    sketch,
    sketch_bound,
)
from filters.rouge import f_measure, rouge_l_f

THRESHOLDS = (0.0, 0.3, 0.5, 0.7, 0.75, 0.8, 0.9, 0.95, 1.0)


@pytest.mark.parametrize("threshold", THRESHOLDS)
def test_min_lcs_never_excludes_a_pair_the_float_rule_passes(threshold: float) -> None:
    # Every (m, n, lcs) up to 80 tokens, with rouge-score's own float arithmetic: a pair
    # whose F is above the threshold always has an LCS of at least min_lcs.
    for m in range(1, 81):
        n = np.arange(1, 81)
        need = min_lcs(threshold, m, n)
        for j, nn in enumerate(n.tolist()):
            passing = [lcs for lcs in range(min(m, nn) + 1) if f_measure(lcs, m, nn) > threshold]
            if passing:
                assert min(passing) >= need[j], (m, nn)


def test_min_lcs_keeps_the_float_boundary() -> None:
    # 7/10 is 0.7 in reals; in floats 2PR/(P+R) may land a hair above. The bound keeps L = 7.
    assert min_lcs(0.7, 10, np.array([10])).tolist() == [7]
    assert min_lcs(0.7, 7, np.array([7])).tolist() == [5]  # 10/14 = 0.714 > 0.7
    assert min_lcs(0.0, 3, np.array([5])).tolist() == [1]  # F > 0 needs one shared token


def test_elements_number_repeated_tokens() -> None:
    assert elements(["the", "cat", "the", "the"]) == [
        ("the", 1),
        ("cat", 1),
        ("the", 2),
        ("the", 3),
    ]
    assert elements([]) == []


def _assert_exact(pool: list[list[str]], queries: list[list[str]], threshold: float) -> int:
    """Every pool member over the threshold is a candidate; returns how many pairs passed."""
    index = TokenOverlapIndex(threshold)
    for tokens in pool:
        index.add(tokens)
    passing = 0
    for q in queries:
        found = set(index.candidates(q))
        truth = {i for i, p in enumerate(pool) if rouge_l_f(q, p) > threshold}
        assert truth <= found, (q, sorted(truth - found))
        passing += len(truth)
    return passing


ADVERSARIAL_POOL = [
    ["a", "b", "c", "d", "e", "f"],
    ["the"] * 7,
    ["x"],
    ["x", "y"],
    ["one", "two", "three", "four", "five", "six", "seven"],
    ["図", "書", "館", "に", "行", "く"],  # character tokens of a script without spaces
    ["😀", "naïve", "straße", "tokens with spaces", "", "ß"],  # anything hashable goes
    [],
]


@pytest.mark.parametrize(
    ("query", "expected_member"),
    [
        (["b", "c", "d", "e", "f", "a"], 0),  # rotation: LCS 5 of 6, F 0.833
        (["f", "a", "b", "c", "d", "e"], 0),
        (["the"] * 5 + ["x", "y"], 1),  # repeated tokens: LCS 5, F 2*5/14 = 0.714
        (["the"] * 6, 1),  # F 12/13
        (["x"], 2),  # one token each, F 1
        (["x", "y", "z"], 3),  # F 0.8
        (["one", "two", "three", "four", "five", "eight", "nine"], 4),  # F 5/7 = 0.714
        (["seven", "one", "two", "three", "four", "five", "six"], 4),  # moved word: F 6/7
        (["図", "書", "館", "へ", "行", "く"], 5),  # one character changed: F 5/6
        (["😀", "naïve", "straße", "tokens with spaces", "", "ss"], 6),
    ],
)
def test_adversarial_pairs_over_the_threshold_are_found(
    query: list[str], expected_member: int
) -> None:
    assert rouge_l_f(query, ADVERSARIAL_POOL[expected_member]) > 0.7
    assert _assert_exact(ADVERSARIAL_POOL, [query], 0.7) >= 1
    index = TokenOverlapIndex(0.7)
    for tokens in ADVERSARIAL_POOL:
        index.add(tokens)
    assert expected_member in index.candidates(query)


def test_far_and_empty_queries_have_no_candidates() -> None:
    index = TokenOverlapIndex(0.7)
    for tokens in ADVERSARIAL_POOL:
        index.add(tokens)
    assert index.candidates([]) == []
    assert index.candidates(["nothing", "shared", "here"]) == []
    assert index.candidates(["x"] + ["filler"] * 5) == []  # length rules out every member
    assert len(index) == len(ADVERSARIAL_POOL)


def _edit(tokens: list[str], rng: random.Random, vocab: list[str], edits: int) -> list[str]:
    """Random substitutions, insertions, deletions and block moves (paraphrase-like)."""
    out = list(tokens)
    for _ in range(edits):
        op = rng.randrange(4)
        if op == 0 and out:
            out[rng.randrange(len(out))] = rng.choice(vocab)
        elif op == 1:
            out.insert(rng.randrange(len(out) + 1), rng.choice(vocab))
        elif op == 2 and len(out) > 1:
            out.pop(rng.randrange(len(out)))
        elif len(out) > 2:
            i, j = sorted(rng.sample(range(len(out) + 1), 2))
            block, rest = out[i:j], out[:i] + out[j:]
            k = rng.randrange(len(rest) + 1)
            out = rest[:k] + block + rest[k:]
    return out


@pytest.mark.parametrize("threshold", (0.5, 0.7, 0.8))
@pytest.mark.parametrize("vocab_size", (4, 30))
def test_random_paraphrases_are_never_missed(threshold: float, vocab_size: int) -> None:
    # Small vocabularies make repeated tokens and chance overlaps common; lengths 1 to 40.
    rng = random.Random(vocab_size * 1000 + int(threshold * 100))
    vocab = [f"w{i}" for i in range(vocab_size - 2)] + ["é", "字"]
    pool = [[rng.choice(vocab) for _ in range(rng.randint(1, 40))] for _ in range(150)]
    queries = [_edit(rng.choice(pool), rng, vocab, rng.randint(1, 8)) for _ in range(300)]
    passing = _assert_exact(pool, queries, threshold)
    assert passing >= 50  # the test exercises many pairs that pass, not only far ones


def test_candidates_stay_few_on_unrelated_texts() -> None:
    # The filter is exact; it must also prune: unrelated texts over a large vocabulary.
    rng = random.Random(5)
    vocab = [f"w{i}" for i in range(5000)]
    index = TokenOverlapIndex(0.7)
    for _ in range(2000):
        index.add([rng.choice(vocab) for _ in range(rng.randint(5, 20))])
    counts = [
        len(index.candidates([rng.choice(vocab) for _ in range(rng.randint(5, 20))]))
        for _ in range(200)
    ]
    assert sum(counts) / len(counts) < 3  # of 2000 members (1.2 measured)


@pytest.mark.parametrize("threshold", (0.1, 0.3, 0.5, 0.7, 0.9))
def test_prefix_lists_in_the_global_order_never_lose_a_pair(threshold: float) -> None:
    """Every pair of id lists with ROUGE-L F above the threshold shares a list of
    prefix_lists, and sketch_bound never rules it out (never below the true overlap), on
    lists with repeated and unknown (<= 0) ids; low thresholds reach the single lists."""
    rng = random.Random(int(threshold * 10))
    found = 0
    for _ in range(3000):
        a = [rng.randint(-2, 25) for _ in range(rng.randint(1, 16))]
        b = [t if rng.random() < 0.85 else rng.randint(1, 25) for t in a if rng.random() < 0.9]
        b = [t for t in b if t > 0] or [1]  # a pool text: every token has an id
        if rng.random() < 0.3:
            b.insert(rng.randrange(len(b) + 1), rng.randint(1, 25))
        overlap = sum(min(a.count(t), b.count(t)) for t in set(a) if t > 0)
        bits_b = [(t, k) for t, k in elements(b)]
        sketch_b = sketch(
            np.array([t for t, _ in bits_b]), np.array([k for _, k in bits_b]), np.array([0])
        )
        known = [(t, k) for t, k in elements(a) if t > 0]
        query_bits = element_bits(np.array([t for t, _ in known]), np.array([k for _, k in known]))
        assert sketch_bound(query_bits, sketch_b)[0] >= overlap
        if rouge_l_f(a, b) <= threshold:
            continue
        found += 1
        assert set(prefix_lists(a, threshold)) & set(prefix_lists(b, threshold)), (a, b)
    assert found > 300


@pytest.mark.parametrize("longest_paired", (16, candidates.PAIRS_UP_TO))
@pytest.mark.parametrize("threshold", (0.0, 0.3, 0.5, 0.7, 0.75, 0.8, 0.9, 1.0))
def test_every_pair_of_lengths_over_the_threshold_meets_on_a_listing(
    threshold: float, longest_paired: int, pairs_up_to: Callable[[int], None]
) -> None:
    """Boundary lengths: for every (m, n) up to 40 and every overlap that can pass in floats
    (7/10 at 0.7 included), texts sharing exactly their last elements in the global order
    meet on a listing - the worst case of prefix filtering - on both sides of the length
    where pairs give way to single elements (16: crossed inside the range)."""
    pairs_up_to(longest_paired)
    for m in range(1, 41):
        for n in range(1, 41):
            passing = [o for o in range(1, min(m, n) + 1) if f_measure(o, m, n) > threshold]
            if not passing:
                continue
            o = min(passing)
            # Shared ids 1..o are the commonest (last in the order); each text's own ids
            # are rarer, so the shared elements sit at the very end of both orders.
            a = list(range(1, o + 1)) + list(range(1000, 1000 + m - o))
            b = list(range(1, o + 1)) + list(range(2000, 2000 + n - o))
            assert set(prefix_lists(a, threshold)) & set(prefix_lists(b, threshold)), (m, n, o)


def test_listing_sizes_at_the_boundaries() -> None:
    # 0.7: one token matches one token only (alone); 10 tokens need 6 shared with some partner
    # (7 of them with n = 10: 7/10 rounds above 0.7), so pairs among the first 10 - 6 + 2.
    assert listing_sizes(0.7, 0) == (0, 0)
    assert listing_sizes(0.7, 1) == (1, 0)
    assert listing_sizes(0.7, 2) == (0, 2)
    assert listing_sizes(0.7, 10) == (0, 6)
    # Low thresholds: a partner may need one shared token, so every element is listed alone.
    assert listing_sizes(0.1, 5) == (5, 5)
    assert listing_sizes(0.0, 3) == (3, 3)
    # Past PAIRS_UP_TO (48) single elements only, and from the length whose partners can
    # reach 49 (27 at 0.7: 2 * 27 / (27 + 49) = 0.71) single elements as well as pairs.
    assert listing_sizes(0.7, 26)[0] == 0 and listing_sizes(0.7, 27) == (13, 14)
    assert listing_sizes(0.7, 48)[1] > 0 and listing_sizes(0.7, 49) == (probe_size(0.7, 49), 0)


def test_prefix_lists_of_repeated_unknown_and_other_script_tokens() -> None:
    # Ids stand for tokens of any script; repeats are distinct elements; unknown ids (<= 0)
    # sort first and are never listed.
    lists = prefix_lists([5, 5, 9, -1, 3], 0.7)
    assert all(t > 0 for listing in lists for t, _ in listing)
    assert ((9, 1), (5, 1)) in lists and ((5, 1), (5, 2)) in lists
    assert prefix_lists([], 0.7) == []
    assert prefix_lists([-1], 0.7) == []
    assert prefix_lists([4], 0.7) == [((4, 1),)]
