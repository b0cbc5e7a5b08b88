"""What an instruction asks for by number, and how many items an answer gives.

Two counts an instruction can name: items (``"List five books"``: :func:`requested_count`, held
against the answer's list by :func:`count_shortfall`, scorer v6) and copies (``"Repeat 'hello'
five times"``: :func:`requested_copies`, scorer v10), which tell the quality scorer
(:mod:`filters.quality`) a list cut short and a repetition that was asked for. Numbers are
digits or English number words; copies also Chinese numerals (``"重复三遍"``).
"""

from __future__ import annotations

import re

import regex

# A list number at a line start: "3." or "3)" then a space, a letter ("1.Once upon", scorer
# v6: unread, it made the next item's "2." look out of turn) or the line's end; not "1.5 cups".
NUMBERED_LINE = re.compile(r"^[ \t]*(\d{1,3})[.)](?:[ \t]|$|(?=[^\W\d_]))", re.MULTILINE)
# A count the instruction asks for: a number (digits or an English word) then, within 3 words, a
# plural noun ("five books", "10 fun activities", "3 plant-based alternate ingredients"). Not
# after a hyphen, a digit group or a currency ("GPT-3 models", "4.5 moles", "$15 each"), nor a
# bound ("5 sentences or fewer").
_NUMBER_WORDS = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen", "twenty",
)  # fmt: skip
_COUNT = re.compile(
    r"(?<![-\w.,$])(\d{1,2}|" + "|".join(_NUMBER_WORDS) + r")[ \t]+(?:[\w'-]+[ \t]+){0,3}?"
    r"[^\W\d_][\w'-]*s\b(?![ \t]+or[ \t]+(?:fewer|less))",
    re.IGNORECASE,
)
# Counts outside this range are not lists of items ("1 cup", "100 words").
_MIN_COUNT, _MAX_COUNT = 2, 20
# List numbers anywhere after a space or at the start ("1. Werewolf 2. Who Am I? 3. Charades").
_INLINE_NUMBER = re.compile(r"(?:^|\s)(\d{1,2})[.)]\s")
_BULLET_LINE = re.compile(r"^[ \t]*[-*+•][ \t]*\S", re.MULTILINE)
# Chinese numerals for copies ("三遍"), and the English words that name them.
_CJK_NUMBERS = {
    "两": 2, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9, "十": 10,
}  # fmt: skip
_TIMES_WORDS = {"twice": 2, "thrice": 3}
# The copies an instruction asks for (scorer v10): "twice", "three times", "5 times", "重复三遍";
# not a product ("3 times 5") nor a question ("how many times").
_COPIES = regex.compile(
    r"\b(twice|thrice)\b|\b(\d{1,2}|" + "|".join(_NUMBER_WORDS) + r")\s+times\b(?!\s*[\d(])"
    r"|([\d" + "".join(_CJK_NUMBERS) + r"]{1,2})\s*[遍次]",
    regex.IGNORECASE,
)
# Copies past this are read as this many.
_MAX_COPIES = 100


def requested_count(instruction: str) -> int | None:
    """The number of items ``instruction`` asks for, or None when it names none.

    The smallest count of :data:`_MIN_COUNT` to :data:`_MAX_COUNT` followed within 3 words by a
    plural noun: ``"List 4 advantages and 4 disadvantages"`` -> 4, ``"Name three plants"`` -> 3;
    ``"Convert 10 years into days"`` -> 10 too (a count of non-list things is harmless: only an
    answer that is a list is held to it).
    """
    counts = []
    for match in _COUNT.finditer(instruction):
        token = match.group(1).casefold()
        counts.append(int(token) if token.isdigit() else _NUMBER_WORDS.index(token))
    counts = [n for n in counts if _MIN_COUNT <= n <= _MAX_COUNT]
    return min(counts) if counts else None


def listed_items(output: str) -> int:
    """How many items ``output`` lists: its highest list number or its bullet lines.

    List numbers count at line starts (the highest: two lists of 4 are 4, not 8) and inline,
    as a run 1, 2, 3... (``"1. Werewolf 2. Who Am I? 3. Charades"`` -> 3); bullets (``-`` ``*``
    ``+`` ``•``) by their lines. 0: no list.
    """
    at_line_start = [int(m.group(1)) for m in NUMBERED_LINE.finditer(output)]
    return max(max(at_line_start, default=0), inline_run(output), len(_BULLET_LINE.findall(output)))


def inline_run(text: str) -> int:
    """How far list numbers after a space or at the start count 1, 2, 3... in ``text``
    (``"1. Werewolf 2. Who Am I? 3. Charades"`` -> 3; numbers out of turn are skipped)."""
    due = 1
    for match in _INLINE_NUMBER.finditer(text):
        if int(match.group(1)) == due:
            due += 1
    return due - 1


def count_shortfall(instruction: str, output: str) -> tuple[float, str]:
    """Whether the answer's list stops short of the count its instruction names (scorer v6).

    A cut list keeps its complete items and ends on one of them (``"...\\n3. The Cruel"`` for
    ``"Generate a list of five books"``), which its text alone cannot tell from a finished list.

    Returns:
        (factor, evidence): 0.3 when the instruction names a count (:func:`requested_count`)
        and the output is a list of at least one item but fewer than that
        (:func:`listed_items`); else (1.0, ""). Answers that are no list are not judged: a
        count in prose ("hibiscus, orchids and caladiums") is not counted.
    """
    wanted = requested_count(instruction)
    if wanted is None:
        return 1.0, ""
    found = listed_items(output)
    if 0 < found < wanted:
        items = "item" if found == 1 else "items"
        return 0.3, f"lists {found} {items} where the instruction asks for {wanted}"
    return 1.0, ""


def requested_copies(instruction: str) -> int:
    """How many copies of something ``instruction`` asks for (scorer v10), 1 when none.

    ``"Repeat 'hello' five times"`` -> 5, ``"Say it twice"`` -> 2, ``"把“你好”重复三遍"`` -> 3;
    ``"Multiply 3 times 5"`` and ``"How many times ..."`` ask for none. The answer repeats its
    unit that often, which the loop statistics must not read as a loop: the type-token ratio is
    scaled by it and a 3-gram's first that many uses are free. Counts over :data:`_MAX_COPIES`
    are read as that many.
    """
    copies = 1
    for match in _COPIES.finditer(instruction):
        token = next(group for group in match.groups() if group).casefold()
        copies = max(copies, min(_copies_number(token), _MAX_COPIES))
    return copies


def _copies_number(token: str) -> int:
    """The number a copies token names: digits, an English word, ``twice``, Chinese numerals
    of one or two characters (``"三"``, ``"十二"``: ten and two)."""
    if token.isdigit():
        return int(token)
    if token in _TIMES_WORDS:
        return _TIMES_WORDS[token]
    if token in _NUMBER_WORDS:
        return _NUMBER_WORDS.index(token)
    values = [_CJK_NUMBERS[ch] for ch in token]
    return sum(values) if len(values) == 2 and values[0] == 10 else values[0]
