"""The words two instructions share, as the near-duplicate rule counts them, for a side-by-side.

The rule (Self-Instruct; `filters.rouge`) scores the longest common subsequence (LCS) of the
two token lists, so the words marked are one LCS, not every word the texts share: what the
page shows is what the score counted.

The LCS table costs len(a) * len(b) cells (about 0.3 CPU-s a million in CPython); texts past
`MAX_CELLS` (a long seed instruction beside a long candidate) are shown without marks rather
than tying up a worker thread for seconds per page view.
"""

from __future__ import annotations

from dataclasses import dataclass

from filters.rouge import rouge_token_spans

MAX_CELLS = 1_000_000


@dataclass(frozen=True)
class Piece:
    """A run of text; `shared` when it is a token of the common subsequence."""

    text: str
    shared: bool


def _lcs_positions(a: list[str], b: list[str]) -> tuple[set[int], set[int]]:
    """Indices into `a` and `b` of one longest common subsequence (classic DP, O(len a * len b):
    instructions are short)."""
    m, n = len(a), len(b)
    table = [[0] * (n + 1) for _ in range(m + 1)]
    for i in range(m - 1, -1, -1):
        for j in range(n - 1, -1, -1):
            table[i][j] = (
                table[i + 1][j + 1] + 1 if a[i] == b[j] else max(table[i + 1][j], table[i][j + 1])
            )
    left: set[int] = set()
    right: set[int] = set()
    i = j = 0
    while i < m and j < n:
        if a[i] == b[j]:
            left.add(i)
            right.add(j)
            i, j = i + 1, j + 1
        elif table[i + 1][j] >= table[i][j + 1]:
            i += 1
        else:
            j += 1
    return left, right


def _pieces(text: str, spans: list[tuple[int, int, str]], keep: set[int]) -> list[Piece]:
    pieces: list[Piece] = []
    at = 0
    for index, (start, end, _) in enumerate(spans):
        if index not in keep:
            continue
        if start > at:
            pieces.append(Piece(text[at:start], False))
        pieces.append(Piece(text[start:end], True))
        at = end
    if at < len(text):
        pieces.append(Piece(text[at:], False))
    return pieces


def shared_words(a: str, b: str) -> tuple[list[Piece], list[Piece]]:
    """Both texts cut into pieces, the tokens of one ROUGE-L LCS of the two marked `shared`.

    Joining each side's pieces gives its text back unchanged. Past `MAX_CELLS` token pairs
    each text is one unmarked piece.
    """
    a_spans, b_spans = rouge_token_spans(a), rouge_token_spans(b)
    if len(a_spans) * len(b_spans) > MAX_CELLS:
        return [Piece(a, False)], [Piece(b, False)]
    left, right = _lcs_positions([t for *_, t in a_spans], [t for *_, t in b_spans])
    return _pieces(a, a_spans, left), _pieces(b, b_spans, right)
