"""Lexical diversity of a set of texts: distinct-n.

distinct-n (Li et al., 2016, "A Diversity-Promoting Objective Function for Neural Conversation
Models") is the number of distinct n-grams over the total number of n-grams in all texts. The
tokens are the project's one any-script tokenizer (:func:`filters.rouge.rouge_tokenize`), so
distinct-n is defined for text in every script, and n-grams never span two texts.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from filters.errors import InvalidInputError
from filters.rouge import rouge_tokenize


def ngrams(text: str, n: int) -> Iterator[tuple[str, ...]]:
    """The n-grams of one text's ROUGE tokens, in order (none when it has fewer than n).

    Raises:
        InvalidInputError: n < 1.
    """
    if n < 1:
        raise InvalidInputError(f"n must be at least 1, got {n}")
    tokens = rouge_tokenize(text)
    return (tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def distinct_n(texts: Iterable[str], n: int) -> float:
    """distinct-n of `texts`: distinct n-grams / all n-grams, in [0, 1].

    Args:
        texts: The texts (e.g. a run's accepted instructions).
        n: The n-gram size (1 for distinct-1, 2 for distinct-2).

    Returns:
        The ratio; 0.0 when the texts hold no n-gram at all.

    Raises:
        InvalidInputError: n < 1.
    """
    seen: set[tuple[str, ...]] = set()
    total = 0
    for text in texts:
        for gram in ngrams(text, n):
            seen.add(gram)
            total += 1
    return len(seen) / total if total else 0.0
