"""Whether an output is a placeholder: a template slot or a stand-in word, not an answer.

A model that copies its prompt's template, or a data set whose writer could not answer (an
image, a recording), leaves a slot where the answer belongs: ``"<noinput>"``, ``"<nooutput>"``,
``"[Your answer here]"``, ``"{answer}"``, ``"[Insert Bar Chart]"``, ``"<Melody goes here>"``; or
a stand-in such as ``"N/A"``, ``"TODO"`` or lorem ipsum. On the Stanford Alpaca data (52,002
rows) and the 175 Self-Instruct seed tasks, :func:`placeholder` finds 91 outputs (45
``"<nooutput>"`` or ``"<noinput>"``, 3 ``"N/A"``, the rest slots such as ``"[Insert Bar
Chart]"`` for drawing and audio tasks); none is an answer. One word alone is a slot only in
braces or angle brackets (``"(a)"`` and ``"[Positive]"`` are answers), and in angle brackets
only when the instruction does not ask about markup (``"<b>"``, ``"<table>"`` answer it).
"""

from __future__ import annotations

import re

from filters.echo import FIELD_LABEL
from filters.rouge import rouge_tokenize

# One bracketed run of words (no digits: "[1, 2, 3]" is a list, "(2, 3)" a point), optionally
# a template variable's "$" or doubled braces: "<noinput>", "[Insert Bar Chart]", "{{ answer }}".
# One word alone is a slot only in braces or angle brackets (see placeholder).
_SLOT = re.compile(
    r"\$?([<\[{(])\1?[ \t]*[^\W\d_]+(?:[ \t/_'’-]+[^\W\d_]+)*[ \t]*[>\]})]{1,2}", re.IGNORECASE
)
# Stand-ins a writer leaves for an answer to come or none at all (whole answer, any case).
_STAND_IN = re.compile(
    r"(?:n/a|todo|tbd|tba|fixme|lorem ipsum\b.*|(?:insert|your) (?:answer|response|output)"
    r"(?: here)?)[.!]?",
    re.IGNORECASE | re.DOTALL,
)
# An instruction about markup, whose answer may be one tag.
_MARKUP = re.compile(r"\b(?:html|xml|tags?|elements?|markup|svg|jsx)\b", re.IGNORECASE)


def placeholder(output: str, *, instruction: str = "") -> str | None:
    """The placeholder ``output`` holds instead of an answer, or None.

    Args:
        output: The instance's output; field labels (``"Output: <output>"``) and surrounding
            quotes are set aside.
        instruction: The task's instruction: when it asks about markup (HTML, XML, tags), one
            word in angle brackets is a tag, not a slot.

    Returns:
        The placeholder text when the whole output is a template slot (one bracketed run of
        words without digits, two or more or one in braces or angle brackets: ``"<noinput>"``,
        ``"[Your answer here]"``, ``"{{answer}}"``) or a
        stand-in (``"N/A"``, ``"TODO"``, ``"TBD"``, ``"FIXME"``, lorem ipsum, ``"Insert answer
        here"``); else None.
    """
    text = FIELD_LABEL.sub(" ", output).strip().strip("\"'“”‘’`").strip()
    if _STAND_IN.fullmatch(text):
        return text
    slot = _SLOT.fullmatch(text)
    if slot is None:
        return None
    if len(rouge_tokenize(text)) > 1:
        return text
    # One word: a template variable ("{answer}", "<noinput>"), unless a tag is the answer; in
    # round or square brackets an option or a label ("(a)", "[Positive]").
    if slot.group(1) == "{" or (slot.group(1) == "<" and not _MARKUP.search(instruction)):
        return text
    return None
