"""ROUGE-L equals rouge-score's: its tokens on ASCII text, its arithmetic on any text."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from filters.rouge import (
    TokenEncoder,
    f_measure,
    rouge_l_f,
    rouge_l_many,
    rouge_l_text,
    rouge_tokenize,
)

rouge_scorer = pytest.importorskip("rouge_score.rouge_scorer")
rouge_tokenize_ref = pytest.importorskip("rouge_score.tokenize")

SCORER = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)


class _OurTokens:
    """rouge-score's tokenizer interface around ours, to check the arithmetic on any script."""

    def tokenize(self, text: str) -> list[str]:
        return rouge_tokenize(text)


SCORER_OUR_TOKENS = rouge_scorer.RougeScorer(["rougeL"], tokenizer=_OurTokens())

ASCII_ADVERSARIAL = [
    "",
    "   ",
    "snake_case and kebab-case, don't; 3.14 x2y",
    "tabs\tand\nnewlines\r\n\x00\x7f",
    "!!! ??? ... ~~~",
    "x" * 5000,
]
ADVERSARIAL = [
    *ASCII_ADVERSARIAL,
    "İstanbul ǅ ﬁre Straße",
    "zero\u200bwidth\u200djoin",
    "Ｆｕｌｌｗｉｄｔｈ ｔｅｘｔ",
    "Cyrillic іmаge vs image",
    "日本語のテキスト and English",
    "émoji 🙂 text 123abc",
]
ASCII = st.text(alphabet=st.characters(max_codepoint=0x7F), max_size=80)


@pytest.mark.parametrize("text", ASCII_ADVERSARIAL)
def test_tokenizer_matches_rouge_score_on_ascii(text: str) -> None:
    assert rouge_tokenize(text) == rouge_tokenize_ref.tokenize(text, None)


@settings(max_examples=300, deadline=None)
@given(ASCII)
def test_tokenizer_matches_rouge_score_on_any_ascii_text(text: str) -> None:
    assert rouge_tokenize(text) == rouge_tokenize_ref.tokenize(text, None)


@settings(max_examples=200, deadline=None)
@given(ASCII, ASCII, st.sampled_from(["🙂", "。", "\u00a0", "«", "—", "\u3000"]))
def test_ascii_words_keep_their_tokens_beside_other_scripts(a: str, b: str, sep: str) -> None:
    # A non-ASCII separator sends the text down the any-script path: the ASCII words on
    # either side must still get exactly rouge-score's tokens (one rule, not two).
    assert rouge_tokenize(f"{a}{sep}{b}") == rouge_tokenize_ref.tokenize(f"{a} {b}", None)
    # An invisible character is no separator: it cannot split a word to dodge the rule.
    assert rouge_tokenize(f"{a}\u200b{b}") == rouge_tokenize_ref.tokenize(a + b, None)


def test_rouge_l_equals_rouge_score_on_real_pairs(seed_tasks, user_oriented) -> None:
    texts = [t["instruction"] for t in seed_tasks + user_oriented]
    rng = random.Random(7)
    pairs = [(rng.choice(texts), rng.choice(texts)) for _ in range(400)]
    pairs += [(t, t.upper() + " and more") for t in texts[:50]]
    for a, b in pairs:
        expected = SCORER.score(a, b)["rougeL"].fmeasure
        assert rouge_l_text(a, b) == expected  # bit for bit, not approximately
        assert rouge_l_text(b, a) == expected


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.sampled_from(["a", "b", "c", "the", "of"]), max_size=30),
    st.lists(st.sampled_from(["a", "b", "c", "the", "of"]), max_size=30),
)
def test_rouge_l_equals_rouge_score_on_repetitive_tokens(a: list[str], b: list[str]) -> None:
    expected = SCORER.score(" ".join(a), " ".join(b))["rougeL"].fmeasure
    assert rouge_l_f(a, b) == expected


@pytest.mark.parametrize("a,b", [(t, u) for t in ASCII_ADVERSARIAL for u in ASCII_ADVERSARIAL])
def test_rouge_l_equals_rouge_score_on_adversarial_ascii(a: str, b: str) -> None:
    assert rouge_l_text(a, b) == SCORER.score(a, b)["rougeL"].fmeasure


@pytest.mark.parametrize("a,b", [(t, u) for t in ADVERSARIAL for u in ADVERSARIAL[6:]])
def test_rouge_l_is_rouge_scores_arithmetic_on_our_tokens(a: str, b: str) -> None:
    assert rouge_l_text(a, b) == SCORER_OUR_TOKENS.score(a, b)["rougeL"].fmeasure


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60), st.text(max_size=60))
def test_rouge_l_is_rouge_scores_arithmetic_on_any_text(a: str, b: str) -> None:
    assert rouge_l_text(a, b) == SCORER_OUR_TOKENS.score(a, b)["rougeL"].fmeasure


def test_many_matches_pairwise(seed_tasks) -> None:
    enc = TokenEncoder()
    toks = [rouge_tokenize(t["instruction"]) for t in seed_tasks]
    codes = [enc.encode(t) for t in toks]
    scores = rouge_l_many(codes[0], codes)
    assert scores.dtype == np.float64
    assert scores.tolist() == [rouge_l_f(toks[0], t) for t in toks]
    assert rouge_l_many(codes[0], []).size == 0


def test_encoder_beyond_code_points_stays_exact() -> None:
    enc = TokenEncoder()
    enc._ids.update({f"t{i}": i + 1 for i in range(0x10FFFF)})  # exhaust the code points
    a, b = enc.encode(["x", "y", "z"]), enc.encode(["x", "z"])
    assert isinstance(a, tuple)
    assert rouge_l_many(a, [b]).tolist() == [f_measure(2, 3, 2)]


def test_f_measure_edges() -> None:
    assert f_measure(0, 0, 5) == 0.0
    assert f_measure(0, 3, 5) == 0.0
    assert f_measure(3, 3, 3) == 1.0
