"""A list number or numbered label left at the start of a text.

The paper's splitter (yizhongw/self-instruct ``bootstrap_instructions.py``) cuts a completion at
its line-start list numbers; what a small model numbers some other way survives as the start of
an instruction: ``"2. Rewrite ..."``, ``"(2) ..."``, ``"Step 2: ..."``, ``"Sentence 2: ..."``,
``"Q2: ..."``, ``"问题2：..."`` (the demo export of issue 15 held such residue in most of its
machine examples). This module is the one definition of that residue; ``filters.heuristics``
rejects instructions that start with it and ``filters.echo`` sets it aside before comparing an
output with its instruction.

What counts, on the NFKC form of the text (so ``２．`` is ``2.`` and ``：`` is ``:``):

- a bare number of at most 3 digits marked as a list item: ``2.``, ``2)``, ``2、``, ``(2)``,
  ``[2]``, ``【2】``, ``#2``, ``2:``, ``2 -``; a Roman numeral up to 39 (``II.``, ``iv)``); a
  letter item ``b)``;
- a label of one word in any script, or of two or three words ending in an English label noun
  (task, question, sentence...), then an optional ``#``/``No.``, then a number (digits or
  Roman), then ``:`` or a dash: ``Step 2:``, ``Example #3 -``, ``Frage 3:``, ``Sample task 12:``
  (not ``Multiply by 3: 4, 5, 6``); a one-word label may also end with ``.`` or ``)`` when a
  sentence starts after it (``Aufgabe 3. Schreibe ...``, ``Question 7) Why ...``, not ``Give 2)
  examples``); a few labels written onto their number (``Q2:``, ``Ex3.``); the Chinese ordinal
  ``第3题：``/``第二步：``; a Chinese numeral item ``二、``; a bracketed letter or Roman numeral
  ``(b)``, ``(iv)``; a circled number ``②`` ``❸`` (read as ``(2)``, before NFKC makes it ``2``).

What does not: a count or a year followed by words (``3 friends ...``, ``2024 was ...``,
``5 ways to ...``, ``10:30``), a decimal or version (``2.5``, ``3.x``), arithmetic
(``3 - 2``, ``What is 12 - 5?``), a title ending the text (``Describe Beethoven's Symphony
No. 9.``), initials (``I. M. Pei``), and a numbered label that is part of the task: when the
same label comes back later with the next number (``Sentence 1: ... Sentence 2: ... Are these
paraphrases?``), the labels name the task's own items.
"""

from __future__ import annotations

import unicodedata

import regex

from filters.normalization import normalize_text

_ROMAN = r"(?:X{0,3}(?:IX|IV|VI{0,3}|I{1,3})|X{1,3})"  # 1..39, upper case
_ROMAN_ANY_CASE = rf"(?-i:{_ROMAN}|{_ROMAN.lower()})"
_WORD = r"\p{L}[\p{L}\p{M}'’]*"
# The last word of a label of two or three words: "Sample task 12:", "Practice question 3 -".
# Any words would also take "Multiply by 3: 4, 5, 6" for a label.
_LABEL_NOUN = (
    r"(?:task|instruction|question|prompt|item|example|step|problem|exercise|sentence|part"
    r"|section|query|case|sample|test|text|paragraph|passage|statement|option)s?\b"
)
# A number of the label form: digits, or a Roman numeral in upper case (a lower-case one would
# read as a word: "Describe part iv: ..." is rare, "Explain the mix: ..." is not).
_LABEL_NUMBER = rf"(?:\d{{1,3}}|(?-i:{_ROMAN}))"
# Text, not a digit, after a dash: "2 - Rewrite" is an item, "3 - 2" is arithmetic.
_DASH = r"[-–—](?=[ \t]+[^\d\s])"
# A new sentence after "Label 3." or "Label 3)": an upper-case or caseless letter. "Give 2)
# examples" and "Symphony No. 9." ending the text are not labels.
_SENTENCE_START = r"(?-i:\p{Lu}|\p{Lo})"
_LEADING_LIST_NUMBER = regex.compile(
    rf"""(?ix)
    (?:
        [(\[【] \d{{1,3}} [)\]】]
      | [(\[【] (?:[a-z]|{_ROMAN_ANY_CASE}) [)\]】](?=\s)
      | [一二三四五六七八九十]{{1,3}}[ \t]?[、.)]
      | \#[ \t]?\d{{1,3}}\b
      | \d{{1,3}}[ \t]?[.)、](?=\s|$|(?-i:\p{{Lu}})|\p{{Lo}})
      | \d{{1,3}}[ \t]?:(?!\d)
      | \d{{1,3}}[ \t]*{_DASH}
      | {_ROMAN_ANY_CASE}[.)](?=\s+(?!\p{{L}}\.))
      | [a-z]\)(?=\s)
      | (?P<label>(?:(?:{_WORD}[ \t]){{1,2}}{_LABEL_NOUN})|{_WORD})[ \t]*(?:\#|no\.?|nr\.?)?[ \t]*
        (?P<number>{_LABEL_NUMBER})[ \t]*(?::(?!\d)|{_DASH})
      | (?P<label>{_WORD})[ \t]*\#?[ \t]*(?P<number>{_LABEL_NUMBER})[ \t]*
        [.)](?=\s+{_SENTENCE_START})
      | (?P<label>q|ex|no|nr|task|step|item|example|question|problem|exercise)
        (?P<number>\d{{1,3}})[ \t]*[:.)](?!\d)
      | 第[ \t]*[\d一二三四五六七八九十]{{1,3}}[ \t]*\p{{L}}{{0,2}}[ \t]*[:.、)]
    )
    """
)
_ROMAN_VALUES = {"I": 1, "V": 5, "X": 10}


def _number_value(number: str) -> int:
    """The value of a decimal or (upper-case) Roman numeral of :data:`_LABEL_NUMBER`."""
    if number.isdigit():
        return int(number)
    values = [_ROMAN_VALUES[ch] for ch in number]
    return sum(-v if v < nxt else v for v, nxt in zip(values, [*values[1:], 0], strict=True))


def _roman(value: int) -> str:
    """An upper-case Roman numeral for 1..49."""
    tens, ones = divmod(value, 10)
    units = ("", "I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX")
    return ("XL" if tens == 4 else "X" * tens) + units[ones]


def _labels_the_task(match: regex.Match[str], text: str) -> bool:
    """Whether a numbered label comes back later with the next number (the task's own items)."""
    label, number = match.group("label"), match.group("number")
    if label is None or number is None:
        return False
    value = _number_value(number) + 1
    following = str(value) if number.isdigit() else f"(?:{value}|{_roman(value)})"
    later = regex.compile(
        rf"(?<!\w){regex.escape(label)}[ \t]*(?:\#|no\.?|nr\.?)?[ \t]*{following}(?![\dIVX])",
        regex.IGNORECASE,
    )
    return later.search(text, match.end()) is not None


def _marker(norm: str) -> str | None:
    """:func:`leading_list_number` of an already normalised text."""
    match = _LEADING_LIST_NUMBER.match(norm)
    if match is None or _labels_the_task(match, norm):
        return None
    return match.group(0)


# Circled and other enclosed numbers ("②", "❷", "㉑") NFKC-fold to bare digits ("2 改写"),
# which read as a count; they are read as the bracketed number they stand for.
_ENCLOSED = {
    cp: f"({int(unicodedata.numeric(chr(cp)))})"
    for block in ((0x2460, 0x24FF), (0x2776, 0x2793), (0x3251, 0x325F), (0x32B1, 0x32BF))
    for cp in range(block[0], block[1] + 1)
    if "CIRCLED" in unicodedata.name(chr(cp), "") and unicodedata.numeric(chr(cp), -1) > 0
}


def _normalized(text: str) -> str:
    """``normalize_text``, an enclosed number opening the text first written as ``(N)``."""
    stripped = text.lstrip()
    if stripped and ord(stripped[0]) in _ENCLOSED:
        text = _ENCLOSED[ord(stripped[0])] + " " + stripped[1:]
    return normalize_text(text)


def leading_list_number(text: str) -> str | None:
    """The list number or numbered label a text starts with, if any.

    Args:
        text: Any text; it is normalised (:func:`filters.normalization.normalize_text`:
            NFKC, invisible characters removed, whitespace collapsed) first.

    Returns:
        The marker as it appears in the normalised text (e.g. ``"Sentence 2:"``, ``"(2)"``),
        or None when the text does not start with one (see the module docstring for both
        lists).
    """
    return _marker(_normalized(text))


def strip_list_number(text: str) -> str:
    """The normalised text without its leading list number, if it has one.

    Args:
        text: Any text.

    Returns:
        ``normalize_text(text)`` with a leading marker of :func:`leading_list_number` and the
        spaces after it removed.
    """
    norm = _normalized(text)
    marker = _marker(norm)
    return norm[len(marker) :].lstrip() if marker else norm
