"""The reference table of sentence-final words behind the scorer's truncation checks (v5)."""

from __future__ import annotations

import pytest

from filters.completion_defects import RARE_END
from filters.word_ends import (
    FREQUENT_COUNT,
    MIN_COUNT,
    build_table,
    end_rate,
    is_cut_word,
    last_word,
    load_table,
)


def test_build_table_counts_uses_and_ends() -> None:
    texts = ["I like data.", "Data is big", "the data (raw) is here:\n- data"] * MIN_COUNT
    rows = {w: (n, e) for w, n, e in build_table(texts)}
    # "data." ends, "Data is" does not, "data (raw)" does not, "- data" ends the text.
    assert rows["data"] == (4 * MIN_COUNT, 2 * MIN_COUNT)
    assert rows["big"] == (MIN_COUNT, MIN_COUNT)  # the end of a text is an end
    assert rows["here"] == (MIN_COUNT, 0)  # ":" is no end


def test_build_table_drops_rare_words() -> None:
    rows = build_table(["common words here."] * MIN_COUNT + ["rareword."] * (MIN_COUNT - 1))
    assert {w for w, _, _ in rows} == {"common", "words", "here"}


def test_packaged_table_orders_function_words_below_nouns() -> None:
    rates = {w: end_rate(w) for w in ("the", "we", "get", "data", "people")}
    assert all(r is not None for r in rates.values())
    low = [rates[w] or 1.0 for w in ("the", "we", "get")]
    high = [rates[w] or 0.0 for w in ("data", "people")]
    assert max(low) < RARE_END < 0.05 < min(high)
    assert end_rate("Worcestershireish") is None
    assert all(n >= MIN_COUNT for n in load_table().uses.values())
    assert all(load_table().uses[w] >= FREQUENT_COUNT for w in load_table().frequent)


@pytest.mark.parametrize("word", ["pa", "neu", "devel", "spiri", "ne"])
def test_cut_words(word: str) -> None:
    assert is_cut_word(word)


@pytest.mark.parametrize("word", ["data", "Kubb", "Worcestershire", "people", "Paris"])
def test_whole_words(word: str) -> None:
    assert not is_cut_word(word)


@pytest.mark.parametrize(
    "text,word",
    [("It is done", "done"), ("Don't", "don't"), ("x = 3", None), ("Hi!", None), ("", None)],
)
def test_last_word(text: str, word: str | None) -> None:
    assert last_word(text) == word
