"""distinct-n: distinct n-grams over all n-grams, in any script, never across two texts."""

from __future__ import annotations

import pytest

from filters.diversity import distinct_n
from filters.errors import InvalidInputError


@pytest.mark.parametrize(
    ("texts", "n", "expected"),
    [
        (["the cat the cat"], 1, 2 / 4),
        (["the cat the cat"], 2, 2 / 3),  # the cat / cat the / the cat
        (["a b", "a b"], 2, 1 / 2),
        (["a b", "c d"], 2, 1.0),  # "b c" spans two texts: not an n-gram
        (["Пиши код, пиши код"], 1, 2 / 4),  # Cyrillic words, case-folded
        (["猫猫犬"], 1, 2 / 3),  # one token per character of an unspaced script
        (["猫猫犬"], 2, 1.0),
        (["one"], 2, 0.0),  # no bigram at all
        ([], 1, 0.0),
        (["a b c"], 3, 1.0),
    ],
)
def test_distinct_n(texts: list[str], n: int, expected: float) -> None:
    assert distinct_n(texts, n) == pytest.approx(expected)


def test_n_below_one_is_refused() -> None:
    with pytest.raises(InvalidInputError):
        distinct_n(["a"], 0)
