"""How often an English word ends a sentence, and whether a last word was cut mid-word.

A cut answer stops on a word inside a sentence (``"...excited to meet"``, ``"7. Get"``) or
inside a word (``"Prepare pa"``, ``"I ne"``); a finished one stops where sentences, list items
and lines end (``"...lemon juice"``). :mod:`filters.completion_defects` asks this module two
questions about the last word of an output that ends without punctuation:

- :func:`end_rate`: the share of a word's uses in a reference corpus that end a sentence, a
  line or the text (``get`` 0.009, ``the`` 0.0001, ``data`` 0.12); a cut at a random word
  lands on a low one far more often than a real ending does.
- :func:`is_cut_word`: the word is rare in the reference but begins a frequent word (``pa``
  of ``part``, ``neu`` of ``neural``): a cut inside a word.

The reference is a versioned table, ``data/word_ends.<TABLE_VERSION>.txt``, built by
:func:`build_table` (``bench/build_word_ends.py``) from the outputs of the even rows of the
Stanford Alpaca data (26,001 answers written by text-davinci-003, CC BY-NC 4.0; only counts
are kept): every word of at least :data:`MIN_COUNT` uses, with its uses and its ending uses.
The odd rows are ``bench/quality.py``'s second dev split; neither the Self-Instruct seed tasks
nor the user-oriented set (its first dev and its held-out splits) is in it.
"""

from __future__ import annotations

import bisect
import functools
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources

TABLE_VERSION = "v1"
MIN_COUNT = 20  # words used fewer times are not listed: too few uses for a rate
# A rare word that begins a word used this often is taken for a cut one.
FREQUENT_COUNT = 50
# A word: letters, with inner apostrophes ("don't", "children’s").
WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")
_LAST_WORD = re.compile(WORD.pattern + r"$")
# What may sit between a word and the end it makes: closing quotes, brackets, emphasis.
_CLOSERS = "\"'”’)]*"
_ENDS = frozenset(".!?\n;")
# end_rate's smoothing: as if every word had also been seen 5 times, ending half a time.
_PRIOR_ENDS, _PRIOR_USES = 0.5, 5
# The smoothed rate of a word with no uses: what end_rate would give a word the table lacks
# (0.1), for callers that must rank such a word rather than skip it.
PRIOR_RATE = _PRIOR_ENDS / _PRIOR_USES


@dataclass(frozen=True)
class WordEnds:
    """The reference table: uses and ending uses per word (casefolded).

    Attributes:
        uses: Word -> times it occurs in the reference.
        ends: Word -> times it ends a sentence, a line or the text there.
        frequent: The words used at least :data:`FREQUENT_COUNT` times, sorted (for prefixes).
    """

    uses: dict[str, int]
    ends: dict[str, int]
    frequent: tuple[str, ...]


def build_table(outputs: Iterable[str]) -> list[tuple[str, int, int]]:
    """Count every word's uses and ending uses over reference texts.

    Args:
        outputs: The reference texts (answers, not instructions).

    Returns:
        ``(word, uses, ending_uses)`` for each casefolded word used at least
        :data:`MIN_COUNT` times, most used first (ties by word). A use ends when the next
        character, after closing quotes and brackets, is ``.`` ``!`` ``?`` ``;``, a new line or
        the end of the text.
    """
    uses: Counter[str] = Counter()
    ends: Counter[str] = Counter()
    for text in outputs:
        for match in WORD.finditer(text):
            word = match.group(0).casefold()
            uses[word] += 1
            rest = text[match.end() : match.end() + 4].lstrip(_CLOSERS)
            if not rest or rest[0] in _ENDS:
                ends[word] += 1
    rows = [(w, n, ends[w]) for w, n in uses.items() if n >= MIN_COUNT]
    return sorted(rows, key=lambda r: (-r[1], r[0]))


@functools.cache
def load_table() -> WordEnds:
    """The packaged reference table (read once per process)."""
    path = resources.files("filters") / "data" / f"word_ends.{TABLE_VERSION}.txt"
    uses: dict[str, int] = {}
    ends: dict[str, int] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        word, n, e = line.split("\t")
        uses[word], ends[word] = int(n), int(e)
    frequent = tuple(sorted(w for w, n in uses.items() if n >= FREQUENT_COUNT))
    return WordEnds(uses=uses, ends=ends, frequent=frequent)


def last_word(text: str) -> str | None:
    """The casefolded word ``text`` ends on, or None when it ends on anything else."""
    match = _LAST_WORD.search(text.rstrip())
    return match.group(0).casefold() if match else None


def end_rate(word: str) -> float | None:
    """Share of ``word``'s reference uses that end a sentence, a line or the text, smoothed.

    Returns:
        ``(ends + 0.5) / (uses + 5)`` in (0, 1); None for a word the table does not list
        (used fewer than :data:`MIN_COUNT` times: a name, a term, a typo or a cut word).
    """
    table = load_table()
    uses = table.uses.get(word.casefold())
    if uses is None:
        return None
    return (table.ends[word.casefold()] + _PRIOR_ENDS) / (uses + _PRIOR_USES)


def is_cut_word(word: str) -> bool:
    """Whether ``word`` looks like the start of a word cut off: rare, and a frequent word's prefix.

    ``"pa"`` (of ``part``), ``"neu"`` (of ``neural``) and ``"devel"`` are; ``"data"``,
    ``"Kubb"`` and ``"Worcestershire"`` are not (listed, or beginning no frequent word).
    """
    table = load_table()
    folded = word.casefold()
    if folded in table.uses:
        return False
    at = bisect.bisect_left(table.frequent, folded)
    return at < len(table.frequent) and table.frequent[at].startswith(folded)
