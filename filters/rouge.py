"""Exact ROUGE-L F-measure, equal to ``rouge-score``'s on ASCII text, for text in any script.

The Self-Instruct paper rejects a new instruction when ``RougeScorer(["rougeL"],
use_stemmer=False)`` gives an F-measure above 0.7 against any pool instruction. This module
reproduces that number bit for bit without importing ``rouge-score``: the same tokens on ASCII
text (lowercase, anything outside ``[a-z0-9]`` splits tokens, no stemmer) and the same
arithmetic, with the longest common subsequence computed by ``rapidfuzz`` instead of a Python
DP table. rouge-score drops every letter outside ``[a-z]``, so on other scripts its tokens are
empty or meaningless; :func:`rouge_tokenize` extends the rule to them (see there).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

import numpy as np
import regex
from rapidfuzz.distance import LCSseq
from rapidfuzz.process import cdist

from filters.normalization import normalize_text

# Bump when rouge_tokenize gives other tokens for some text: verdicts, stored MinHash
# signatures (see filters.signatures.SHINGLE_SCHEME) and shared indexes depend on it.
# 1: rouge-score's [a-z0-9]+ on every text. 2: the same on ASCII text, any script elsewhere.
# 3: vowel signs outside grapheme clusters (Myanmar, Tai Tham) kept with their character.
TOKENS_VERSION = 3

# rouge-score lowercases, replaces runs of anything outside [a-z0-9] by a space and splits;
# keeping the maximal [a-z0-9] runs of the lowercased text is the same thing in one pass.
_TOKEN_RE = re.compile(r"[a-z0-9]+")

# Scripts written without spaces between words (Unicode Script_Extensions names). Their text
# is cut into user-perceived characters: a dictionary segmenter (jieba, MeCab, PyThaiNLP, ICU)
# gives other words with every dictionary release, which would silently change stored
# verdicts and signatures, while characters are fixed by Unicode; and a character is the
# unit the multilingual ROUGE variants use for Chinese and Japanese. Tibetan is not here:
# its tsheg (a punctuation mark) already separates syllables, as a space would.
UNSPACED_SCRIPTS = (
    "Han", "Hiragana", "Katakana", "Bopomofo", "Yi", "Thai", "Lao", "Khmer", "Myanmar",
    "Tai_Tham", "New_Tai_Lue", "Javanese", "Balinese",
)  # fmt: skip
_UNSPACED = "".join(rf"\p{{scx={s}}}" for s in UNSPACED_SCRIPTS)
# A letter or digit of an unspaced script starts a one-character token; \X extends it to the
# whole grapheme cluster, so a Thai vowel or tone mark stays with its consonant, and \p{M}*
# keeps the vowel signs Unicode leaves out of clusters (Myanmar U+102C, Tai Tham U+1A63...:
# not Grapheme_Cluster_Break=SpacingMark), which no token took before version 3.
_UNSPACED_START = rf"[[{_UNSPACED}]&&[\p{{L}}\p{{N}}]]"
# Otherwise a token is a maximal run of letters, digits and combining marks of any other
# script: words for scripts written with spaces, the marks (Devanagari vowel signs, Arabic
# harakat, Hebrew points) kept with their base. Punctuation, symbols (emoji), spaces and "_"
# split, as in rouge-score.
_UNICODE_TOKEN_RE = regex.compile(
    rf"(?V1)(?={_UNSPACED_START})\X\p{{M}}*|[[\p{{L}}\p{{N}}\p{{M}}]--[{_UNSPACED}]]+"
)
_UNSPACED_RE = regex.compile(rf"(?V1){_UNSPACED_START}")

# Token ids become code points so that a tokenized text is a compact str that rapidfuzz
# compares natively; surrogates are skipped so the strings stay valid Unicode.
_SURROGATE_START = 0xD800
_SURROGATE_SPAN = 0x800
MAX_CODE_ID = 0x10FFFF - _SURROGATE_SPAN

Encoded = str | tuple[int, ...]


def code_point(token_id: int) -> str:
    """The character that stands for a token id in a str code (surrogates skipped).

    Args:
        token_id: An id in [0, :data:`MAX_CODE_ID`].

    Returns:
        One character; distinct ids give distinct characters.
    """
    return chr(token_id if token_id < _SURROGATE_START else token_id + _SURROGATE_SPAN)


def code_points(token_ids: np.ndarray) -> np.ndarray:
    """:func:`code_point` of many ids at once, as the characters' code points.

    Args:
        token_ids: Integer array of ids, each >= 0.

    Returns:
        int64 array; ``bytes`` of it as ``<u4`` decode with ``utf-32-le`` to the str code when
        every id is at most :data:`MAX_CODE_ID` (above that the values leave Unicode).
    """
    ids = token_ids.astype(np.int64)
    out: np.ndarray = ids + _SURROGATE_SPAN * (ids >= _SURROGATE_START)
    return out


def token_ids(points: np.ndarray) -> np.ndarray:
    """Inverse of :func:`code_points`.

    Args:
        points: Integer array made by :func:`code_points`.

    Returns:
        int64 array of the token ids.
    """
    points = points.astype(np.int64)
    out: np.ndarray = points - _SURROGATE_SPAN * (points >= _SURROGATE_START + _SURROGATE_SPAN)
    return out


def rouge_tokenize(text: str) -> list[str]:
    """The ROUGE-L tokens of a text in any script; the one tokenizer of dedup and decontamination.

    On ASCII text the tokens are exactly ``rouge_score.tokenize.tokenize(text, stemmer=None)``
    (the paper's rule): lowercased ``[a-z0-9]+`` runs. Other text is NFKC-folded (fullwidth
    letters and digits become ASCII), stripped of invisible format characters (zero-width
    space/joiners) and casefolded, then cut into:

    * one token per character (grapheme cluster) of a script written without spaces
      (:data:`UNSPACED_SCRIPTS`: Chinese, Japanese kana, Thai, Lao, Khmer, Myanmar...);
    * otherwise maximal runs of letters, digits and combining marks of any script (words of
      Latin, Cyrillic, Greek, Arabic, Hebrew, Devanagari, Hangul...).

    Punctuation, symbols (emoji included), spaces and ``_`` only separate tokens, so a text
    made of them has none. The rule restricted to ASCII is rouge-score's, so the English part
    of mixed text gets the same tokens as it would alone.

    Args:
        text: Any text.

    Returns:
        The tokens in order (possibly empty).
    """
    if text.isascii():
        return list(_TOKEN_RE.findall(text.lower()))
    folded = unicodedata.normalize("NFKC", normalize_text(text).casefold())
    return list(_UNICODE_TOKEN_RE.findall(folded))


def rouge_token_spans(text: str) -> list[tuple[int, int, str]]:
    """Where :func:`rouge_tokenize`'s tokens lie in the text, for showing them (highlights).

    Args:
        text: Any text.

    Returns:
        ``(start, end, token)`` per token in order; ``text[start:end]`` is the token as
        written. On ASCII text the tokens are exactly :func:`rouge_tokenize`'s. Elsewhere the
        spans are found on the unfolded text and each token is its span's folded form, so a
        zero-width joiner inside a word (which folding removes) splits it here: a display
        approximation, never used for a verdict.
    """
    if text.isascii():
        return [(m.start(), m.end(), m.group()) for m in _TOKEN_RE.finditer(text.lower())]
    return [
        (m.start(), m.end(), "".join(rouge_tokenize(m.group())))
        for m in _UNICODE_TOKEN_RE.finditer(text)
    ]


def has_unspaced_script(text: str) -> bool:
    """Whether the text holds a letter or digit of a script written without spaces.

    Args:
        text: Any text.

    Returns:
        True when some character belongs to :data:`UNSPACED_SCRIPTS` (e.g. a Han character).
    """
    return not text.isascii() and _UNSPACED_RE.search(text) is not None


def f_measure(lcs: int, target_len: int, prediction_len: int) -> float:
    """ROUGE-L F-measure from an LCS length, with rouge-score's exact arithmetic.

    Args:
        lcs: Length of the longest common subsequence.
        target_len: Number of target tokens.
        prediction_len: Number of prediction tokens.

    Returns:
        The F-measure (symmetric in the two lengths); 0.0 when either side is empty.
    """
    if target_len == 0 or prediction_len == 0:
        return 0.0
    precision = lcs / prediction_len
    recall = lcs / target_len
    if precision + recall > 0:
        return 2 * precision * recall / (precision + recall)
    return 0.0


def rouge_l_f(a_tokens: Sequence[str], b_tokens: Sequence[str]) -> float:
    """ROUGE-L F-measure between two token lists, equal to rouge-score's ``rougeL`` fmeasure.

    Args:
        a_tokens: Tokens of one text (from :func:`rouge_tokenize`).
        b_tokens: Tokens of the other text.

    Returns:
        The F-measure in [0, 1].
    """
    if not a_tokens or not b_tokens:
        return 0.0
    encoder = TokenEncoder()
    lcs = LCSseq.similarity(encoder.encode(a_tokens), encoder.encode(b_tokens))
    return f_measure(lcs, len(a_tokens), len(b_tokens))


def rouge_l_text(a: str, b: str) -> float:
    """ROUGE-L F-measure between two texts (tokenized with :func:`rouge_tokenize`).

    Args:
        a: One text.
        b: The other text.

    Returns:
        The F-measure in [0, 1].
    """
    return rouge_l_f(rouge_tokenize(a), rouge_tokenize(b))


class TokenEncoder:
    """Map tokens to small integers and token lists to compact, comparable codes.

    Two texts encoded by the same encoder have an LCS (as code sequences) equal to the LCS
    of their token lists, so the exact ROUGE-L can run on the codes. Codes are ``str`` while
    the vocabulary fits in Unicode's code points and tuples of ints beyond that (both exact).
    """

    def __init__(self) -> None:
        """Create an empty vocabulary."""
        self._ids: dict[str, int] = {}

    def __len__(self) -> int:
        """Number of distinct tokens seen."""
        return len(self._ids)

    def encode(self, tokens: Sequence[str]) -> Encoded:
        """Encode a token list.

        Args:
            tokens: Tokens, e.g. from :func:`rouge_tokenize`.

        Returns:
            A str with one code point per token, or a tuple of ints once the vocabulary has
            outgrown the code point range.
        """
        ids = self._ids
        nums = [ids.setdefault(tok, len(ids) + 1) for tok in tokens]
        if len(ids) > MAX_CODE_ID:
            return tuple(nums)
        # code_point inlined: this is the hot loop of the in-memory pool
        return "".join([chr(n if n < _SURROGATE_START else n + _SURROGATE_SPAN) for n in nums])


def rouge_l_many(query: Encoded, others: Sequence[Encoded]) -> np.ndarray:
    """ROUGE-L F-measures of one encoded text against many, in one C++ call when possible.

    Args:
        query: Code of the query text (from a :class:`TokenEncoder`).
        others: Codes of the other texts, from the same encoder.

    Returns:
        float64 array of F-measures, one per item of ``others``, bitwise equal to
        :func:`f_measure` on each pair.
    """
    if not others:
        return np.zeros(0, dtype=np.float64)
    if isinstance(query, str) and all(isinstance(o, str) for o in others):
        lcs = cdist([query], others, scorer=LCSseq.similarity, dtype=np.int32)[0]
    else:
        lcs = np.array([LCSseq.similarity(query, o) for o in others], dtype=np.int32)
    return f_measures(lcs, len(query), np.array([len(o) for o in others], dtype=np.int64))


def f_measures(lcs: np.ndarray, query_len: int, other_lens: np.ndarray) -> np.ndarray:
    """Vectorised :func:`f_measure` with the same float operations in the same order.

    Args:
        lcs: LCS lengths, one per pair.
        query_len: Token count of the query (the "target").
        other_lens: Token counts of the others (the "predictions").

    Returns:
        float64 F-measures; 0.0 where a side is empty or the LCS is 0.
    """
    lcs = lcs.astype(np.float64)
    other = other_lens.astype(np.float64)
    out = np.zeros(len(lcs), dtype=np.float64)
    ok = (other > 0) & (lcs > 0) & (query_len > 0)
    if ok.any():
        precision = lcs[ok] / other[ok]
        recall = lcs[ok] / float(query_len)
        out[ok] = 2 * precision * recall / (precision + recall)
    return out
