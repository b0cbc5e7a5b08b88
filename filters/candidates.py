"""Exact candidates for ROUGE-L F above a threshold: a prefix-filtered inverted token index.

ROUGE-L F between token lists of lengths m and n is ``2 * LCS / (m + n)`` (rouge-score's F with
beta 1), and the LCS is at most the multiset overlap of the two lists (a common subsequence
is made of shared tokens). So ``F > t`` needs an overlap of at least ``min_lcs(m, n)`` tokens,
which also bounds the lengths (``min_lcs <= min(m, n)`` gives ``n > m * t / (2 - t)``).

Every pool text is indexed under all its *elements*: a token together with its occurrence
number (``("the", 1)``, ``("the", 2)``), so that two multisets' overlap is the plain set overlap
of their elements and repeated tokens are counted exactly. A query of m elements that needs an
overlap of at least ``o`` with any partner probes only its ``m - o + 1`` elements with the
shortest posting lists: at most ``o - 1`` of its elements are left out, so a pool text sharing
``o`` or more elements shares one of the probed ones and is found (the prefix-filtering
principle of Chaudhuri et al. 2006, "A Primitive Operator for Similarity Joins", with the pool
side indexed in full so the order can follow the current posting sizes). Pool texts found
are then kept only when their length can reach the threshold and their hits in the probed
elements plus the unprobed elements could still reach ``min_lcs``. The result is a superset
of every pool text whose ROUGE-L F exceeds the threshold, for any tokens (any script); the
caller decides with the exact ROUGE-L.
"""

from __future__ import annotations

import functools
from array import array
from collections.abc import Hashable, Sequence
from typing import TypeVar

import numpy as np

# The threshold is relaxed by this much when bounding, so that a pair whose F computed in
# floating point lands just above the threshold (e.g. 7/10 rounding to 0.7000000000000001)
# is never pruned: the bound must hold for rouge-score's float arithmetic, not only for reals.
_SLACK = 1e-9

Element = tuple[Hashable, int]
H = TypeVar("H", bound=Hashable)


def min_lcs(threshold: float, m: int, n: np.ndarray) -> np.ndarray:
    """Smallest LCS with which ROUGE-L F of lengths ``m`` and ``n`` can exceed ``threshold``.

    Args:
        threshold: The rejection threshold t in [0, 1] (F > t rejects).
        m: Token count of one text (>= 1).
        n: Token counts of the others (int array, each >= 1).

    Returns:
        int64 array: the least integer L >= 1 with ``2 * L / (m + n) > t - 1e-9``. Where it
        exceeds ``min(m, n)`` no pair of those lengths can pass the threshold.
    """
    relaxed = threshold - _SLACK
    return np.maximum(1, np.floor(relaxed * (m + n) / 2).astype(np.int64) + 1)


def elements(tokens: Sequence[H]) -> list[tuple[H, int]]:
    """A token list as a set of ``(token, occurrence number)`` elements.

    Args:
        tokens: Tokens of one text, in any script (anything hashable).

    Returns:
        One element per token, in order: the k-th occurrence of a token is ``(token, k)``.
    """
    seen: dict[H, int] = {}
    out = []
    for tok in tokens:
        k = seen.get(tok, 0) + 1
        seen[tok] = k
        out.append((tok, k))
    return out


@functools.cache
def probe_size(threshold: float, m: int) -> int:
    """How many of a query's m elements must be probed: m - (least overlap needed) + 1.

    Any ``probe_size`` of the query's elements will do (prefix filtering holds for any
    choice); probing the ones with the shortest posting lists makes it cheapest.

    Args:
        threshold: The ROUGE-L F threshold in [0, 1].
        m: The query's token count.

    Returns:
        0 when m is 0 (nothing can pass), else a count in [1, m].
    """
    if m == 0:
        return 0
    # The need grows with n and n = m is always feasible (the relaxed threshold is below
    # 1), so the least need over all partners is found among n <= m.
    n = np.arange(1, m + 1)
    need = min_lcs(threshold, m, n)
    return m - int(need[need <= n].min()) + 1


def may_pass(threshold: float, m: int, probe: int, hits: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Which pool texts found by probing can still exceed the threshold against the query.

    Args:
        threshold: The ROUGE-L F threshold in [0, 1].
        m: The query's token count.
        probe: How many of the query's elements were probed (``probe_size``).
        hits: Per pool text found, how many probed elements it holds (int array).
        n: Per pool text found, its token count (int array, same shape).

    Returns:
        Boolean mask over the pool texts: True where the length can reach the threshold and
        the overlap can still reach ``min_lcs``.
    """
    need = min_lcs(threshold, m, n)
    # Overlap <= hits among the probed elements + what the unprobed ones can add: at most the
    # m - probe elements left in the query and the n - hits left in the member.
    rest = np.minimum(m - probe, n - hits)
    mask: np.ndarray = (need <= np.minimum(m, n)) & (hits + rest >= need)
    return mask


# Longest text listed under pairs: a text of n elements has about (n / 2)^2 / 2 pairs in its
# prefix at 0.7 (276 at 48), so a long text (a pasted document) would write and read
# quadratically many lists. Pairs of lengths beyond it meet through single elements instead.
PAIRS_UP_TO = 48


@functools.cache
def listing_sizes(threshold: float, n: int) -> tuple[int, int]:
    """How much of a text of n elements (in the global order) is listed, alone and in pairs.

    Two texts of lengths m and n that must share ``o = min_lcs(m, n)`` elements share the
    ``o`` smallest of them (in any fixed global order of elements); each text holds them
    among its first ``length - o + 1`` elements (prefix filtering, Bayardo et al. 2007), and
    with ``o >= 2`` it holds the two smallest among its first ``length - o + 2`` (the
    l-prefix scheme of Wang, Li and Feng 2012, "Can we beat the prefix filtering?"). So a
    pool that lists a member under each *pair* of elements of that longer prefix, and a
    query probing the pairs of its own, meet on every pair that needs two shared elements or
    more; a pair of common words is far rarer than either word, so the lists probed stay
    short where single-element prefixes of short texts reach common words.

    Which pairs of lengths meet how, the same rule on both sides: ``o = 1`` (short texts at
    low thresholds) through every element alone; ``o >= 2`` and both lengths at most
    :data:`PAIRS_UP_TO` through pairs; ``o >= 2`` and a longer one through the single
    elements of the :func:`probe_size` prefix. A text is listed the ways its feasible
    partners need (feasible lengths form an interval: need grows with the partner's length).

    Args:
        threshold: The ROUGE-L F threshold in [0, 1].
        n: The text's element (token) count.

    Returns:
        ``(singles, pairs)``: list each of the first ``singles`` elements alone and each pair
        among the first ``pairs`` (0: none).
    """
    if n == 0:
        return 0, 0
    # The shortest partner needs the least: one shared element for some partner, or not.
    if int(min_lcs(threshold, n, np.array([1]))[0]) == 1:
        singles = n
    elif n > PAIRS_UP_TO or _feasible(threshold, n, PAIRS_UP_TO + 1):
        singles = probe_size(threshold, n)
    else:
        singles = 0
    if not 2 <= n <= PAIRS_UP_TO:
        return singles, 0  # a partner needing two shared elements has at least two
    least = n - probe_size(threshold, n) + 1  # least need over every feasible partner
    return singles, n - max(2, least) + 2


def _feasible(threshold: float, n: int, partner: int) -> bool:
    """Whether lengths n and ``partner`` can pass the threshold at all."""
    return int(min_lcs(threshold, n, np.array([partner]))[0]) <= min(n, partner)


Listing = tuple[tuple[int, int], ...]


def prefix_lists(token_ids: Sequence[int], threshold: float) -> list[Listing]:
    """The lists a text is listed under in a pool, or probes as a query (see listing_sizes).

    The global order is by token id, highest first (then occurrence): a pool that gives ids
    to its vocabulary commonest first (``service.runs.shared_index``) puts a text's rarest
    elements first. Any fixed order is exact; a frequency order makes the lists short.

    Args:
        token_ids: The text's token ids in text order; an id <= 0 stands for a token the
            pool has no id for: it sorts first (it can be shared with no member) and no list
            holding it is returned.
        threshold: The ROUGE-L F threshold in [0, 1].

    Returns:
        One- and two-element tuples of ``(token id, occurrence)`` elements, a pair in the
        global order; two texts whose ROUGE-L F exceeds the threshold share one of them.
    """
    ordered = sorted(elements(token_ids), key=lambda e: (e[0] > 0, -e[0], e[1]))
    singles, pairs = listing_sizes(threshold, len(ordered))
    out: list[Listing] = [(e,) for e in ordered[:singles] if e[0] > 0]
    head = [(i, e) for i, e in enumerate(ordered[:pairs]) if e[0] > 0]
    out += [(a, b) for i, a in head for j, b in head if i < j]
    return out


# Multipliers (odd 64-bit constants of splitmix/xxhash) that spread (token id, occurrence)
# over the bits of a sketch; fixed, so that every process computes the same bits.
_MIX_ID = np.uint64(0x9E3779B97F4A7C15)
_MIX_OCCURRENCE = np.uint64(0xC2B2AE3D27D4EB4F)
SKETCH_BITS = 64


def element_bits(token_ids: np.ndarray, occurrences: np.ndarray) -> np.ndarray:
    """The sketch bit (0-63) of each element ``(token id, occurrence)``.

    Args:
        token_ids: int array of token ids.
        occurrences: int array, the same shape: each element's occurrence number.

    Returns:
        int64 array of bit numbers.
    """
    mixed = token_ids.astype(np.uint64) * _MIX_ID ^ occurrences.astype(np.uint64) * _MIX_OCCURRENCE
    out: np.ndarray = (mixed >> np.uint64(58)).astype(np.int64)  # the best-mixed 6 bits
    return out


def sketch_bound(query_bits: np.ndarray, sketches: np.ndarray) -> np.ndarray:
    """An upper bound on the overlap of a query with texts known by their sketches.

    A text's sketch is the OR of ``1 << bit`` over its elements' :func:`element_bits`. An
    element the query shares with a text has its bit set in the text's sketch, so the query
    elements whose bit is set there bound the overlap from above (a 10-element text sets
    about 15% of the 64 bits, so an element it lacks seldom counts).

    Args:
        query_bits: :func:`element_bits` of the query's elements (those the pool can hold).
        sketches: uint64 array of the texts' sketches.

    Returns:
        int64 array: per text, the number of query elements whose bit it has.
    """
    per_bit = np.bincount(query_bits, minlength=SKETCH_BITS)
    out = np.zeros(len(sketches), dtype=np.int64)
    for times in np.unique(per_bit[per_bit > 0]).tolist():
        mask = np.bitwise_or.reduce(
            np.left_shift(np.uint64(1), np.flatnonzero(per_bit == times).astype(np.uint64))
        )
        out += times * np.bitwise_count(sketches & mask).astype(np.int64)
    return out


def sketch(token_ids: np.ndarray, occurrences: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Sketches (see :func:`sketch_bound`) of texts whose elements lie end to end.

    Args:
        token_ids: int array, every text's element token ids one after another.
        occurrences: int array, the elements' occurrence numbers.
        starts: int array, where each text's elements start (texts without elements
            are not allowed here: give them sketch 0 yourself).

    Returns:
        uint64 array, one sketch per text.
    """
    bits = np.left_shift(np.uint64(1), element_bits(token_ids, occurrences).astype(np.uint64))
    out: np.ndarray = np.bitwise_or.reduceat(bits, starts)
    return out


class TokenOverlapIndex:
    """Pool of token lists that returns every member that may pass a ROUGE-L threshold.

    Members are numbered from 0 in the order added; texts without tokens are numbered too
    but never returned (their ROUGE-L is 0 against everything).

    Args:
        threshold: ROUGE-L F threshold in [0, 1]; pairs with F strictly above it are sought.
    """

    def __init__(self, threshold: float) -> None:
        """Create an empty index; see the class docstring."""
        self.threshold = threshold
        # Posting lists as int64 arrays: appends stay cheap and numpy reads them without copies.
        self._postings: dict[Element, array[int]] = {}
        # Token counts by member, grown by doubling: a query gathers them with numpy.
        self._lengths = np.zeros(1024, dtype=np.int64)
        self._count = 0

    def __len__(self) -> int:
        """Number of members added."""
        return self._count

    def add(self, tokens: Sequence[Hashable]) -> int:
        """Add one token list.

        Args:
            tokens: The member's tokens.

        Returns:
            The member's number.
        """
        member = self._count
        if member == len(self._lengths):
            self._lengths = np.concatenate([self._lengths, np.zeros_like(self._lengths)])
        self._lengths[member] = len(tokens)
        self._count += 1
        postings = self._postings
        for element in elements(tokens):
            found = postings.get(element)
            if found is None:
                postings[element] = array("q", (member,))
            else:
                found.append(member)
        return member

    def candidates(self, tokens: Sequence[Hashable]) -> list[int]:
        """Members whose ROUGE-L F with ``tokens`` may exceed the threshold.

        Args:
            tokens: The query's tokens.

        Returns:
            Member numbers in increasing order; a superset of the members with ROUGE-L F
            above the threshold (exact: none is missed), usually a small one.
        """
        m = len(tokens)
        probe = probe_size(self.threshold, m)
        if probe == 0:
            return []
        empty = array("q")
        lists = sorted((self._postings.get(e, empty) for e in elements(tokens)), key=len)
        probed = [np.frombuffer(p, dtype=np.int64) for p in lists[:probe] if p]
        if not probed:
            return []
        members, hits = np.unique(np.concatenate(probed), return_counts=True)
        kept: list[int] = members[
            may_pass(self.threshold, m, probe, hits, self._lengths[members])
        ].tolist()
        return kept
