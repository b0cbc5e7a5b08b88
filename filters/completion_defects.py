"""Two defects of a model's output visible in its text alone: prompt residue and truncation.

Residue: the instance prompt is a numbered list of tasks with labelled fields, so a small model
runs on past its answer into the next task (``"...\\n\\n5. Write a poem"``, ``"Task 3:"``,
``"Instruction: ..."``) or leaves a bare list number (``"...\\n4."``); the demo export of issue 15
held both. Truncation: the output stops mid-sentence (the length limit, or a stop sequence hit
early); ``generators.parsing`` drops completions whose finish reason says so, this catches the
ones whose text says so.

Both return a factor in [0, 1] (1: no sign of the defect) and the evidence in words.
"""

from __future__ import annotations

import re

from filters.echo import FIELD_LABEL

# A list number at a line start: "3." or "3)" then a space or the line's end.
_NUMBERED_LINE = re.compile(r"^[ \t]*(\d{1,3})[.)](?:[ \t]|$)", re.MULTILINE)
_BARE_NUMBER = re.compile(r"\d{1,3}[.)]?")
# Ends that close a sentence, a quote, a bracket, code or markup.
_CLOSED = frozenset(".!?。！？…\"'”’»)]}>`*|;$%+")
# A dangling end: a separator or opening character after which text must follow.
_OPEN = frozenset(",:(-–—/&[{“‘«")
_BULLETS = frozenset("-*+•–|")
# English words no finished sentence ends on (articles, prepositions, conjunctions).
_DANGLING_WORDS = frozenset((
    "a", "an", "the", "and", "or", "but", "of", "to", "in", "on", "at", "for", "with", "from",
    "by", "as", "into", "than", "that", "which", "who", "whose", "is", "are", "was", "were",
    "be", "been", "has", "have", "had", "will", "would", "can", "could", "should", "may",
    "might", "my", "your", "his", "her", "their", "our", "its", "this", "these", "those",
    "such", "very",
))  # fmt: skip
_INNER_END = re.compile(r"(?<=[^\W\d_])[.!?。！？](?=\s+\S)")
# A line of a list, a table or code: such outputs end without a full stop when complete.
_ITEM_LINE = re.compile(r"^(?:[ \t]+\S|[ \t]*(?:[-*+•–]|\d{1,3}[.)-]|[a-z][.)])[ \t]|.*\|)")


def residue_factor(output: str) -> tuple[float, str]:
    """How free ``output`` is of the prompt's list numbers and field labels.

    Returns:
        (factor, evidence): 0.2 when a line starts with a field label (``Task 3:``,
        ``Instruction:``, ``Input:`` ...), a bare list number ends a multi-line output, or the
        line numbers do not count 1, 2, 3... (a list may restart at 1); else (1.0, "").
    """
    label = FIELD_LABEL.search(output)
    if label:
        return 0.2, f"field label {label.group(0).strip()!r}"
    lines = [line.strip() for line in output.strip().splitlines() if line.strip()]
    if len(lines) > 1 and _BARE_NUMBER.fullmatch(lines[-1]):
        return 0.2, f"ends with a bare list number {lines[-1]!r}"
    expected = 1
    for match in _NUMBERED_LINE.finditer(output):
        number = int(match.group(1))
        if number not in (expected, 1):
            return 0.2, f"list number {number} where {expected} was due"
        expected = number + 1
    return 1.0, ""


def truncation_factor(output: str) -> tuple[float, str]:
    """How finished the end of ``output`` looks.

    Returns:
        (factor, evidence): 0.1 when it ends on a separator (``,`` ``:`` ``(`` ``-`` ...), a
        new line holding only a bullet (``-`` ``+`` ``|`` ...) or an English word no sentence
        ends on (``the``, ``and``, ``of`` ...); 0.3 when its last line
        ends without closing punctuation although most of the text's other sentences or lines
        close theirs; 0.7 when its last line is prose of 6 or more words ending without
        punctuation; else 1.0. Otherwise list items, table rows and code lines may end bare;
        so may short answers (labels, numbers, names).
    """
    text = output.rstrip()
    if not text:
        return 1.0, ""  # emptiness is the length component's business
    last = text[-1]
    if last in _OPEN:
        return 0.1, f"ends with {last!r}"
    last_line = text.splitlines()[-1]
    words = last_line.split()
    if len(text.splitlines()) > 1 and last_line.strip() in _BULLETS:
        return 0.1, f"ends with a bare list marker {last_line.strip()!r}"
    if words and words[-1].casefold() in _DANGLING_WORDS:
        return 0.1, f"ends with the word {words[-1]!r}"
    if last in _CLOSED or not last.isalnum():
        return 1.0, ""
    earlier = _closed_share(text[: len(text) - len(last_line)])
    if earlier is not None and earlier >= 0.5:
        return 0.3, "last sentence unfinished where the others close"
    if len(words) >= 6 and not _ITEM_LINE.match(last_line):
        return 0.7, "long last line without closing punctuation"
    return 1.0, ""


def _closed_share(text: str) -> float | None:
    """Share of ``text``'s sentences and lines that end closed; None when it has none."""
    ends = [line.rstrip()[-1] for line in text.splitlines() if line.strip()]
    # Sentence ends inside a line count too: ". " after a letter (not a list number's "2. ").
    inner = len(_INNER_END.findall(text))
    if not ends and not inner:
        return None
    closed = sum(e in _CLOSED for e in ends) + inner
    return closed / (len(ends) + inner)
