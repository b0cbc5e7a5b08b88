"""Two defects of a model's output visible in its text alone: prompt residue and truncation.

Residue: the instance prompt is a numbered list of tasks with labelled fields, so a small model
runs on past its answer into the next task (``"...\\n\\n5. Write a poem"``, ``"Task 3:"``,
``"Instruction: ..."``) or leaves a bare list number (``"...\\n4."``); the demo export of issue 15
held both. Truncation: the output stops mid-sentence (the length limit, or a stop sequence hit
early); ``generators.parsing`` drops completions whose finish reason says so, this catches the
ones whose text says so.

A third sign of truncation needs the instruction: it names a count (``"List five ways..."``)
and the answer's list stops short of it (:func:`filters.requested_counts.count_shortfall`,
scorer v6).

All return a factor in [0, 1] (1: no sign of the defect) and the evidence in words.
"""

from __future__ import annotations

import itertools
import re
import unicodedata

import regex

from filters.requested_counts import NUMBERED_LINE, inline_run
from filters.rouge import has_unspaced_script, rouge_tokenize
from filters.word_ends import PRIOR_RATE, end_rate, is_cut_word, last_word

# The instance prompt's own field labels (generators/templates: "Task:", "Input:", "Output:",
# "Example 1"). "Answer:", "Response:" and an unnumbered "Example:" are not in the prompt and
# head lines of real answers (a question-answer pair, an idiom's example sentence), so they
# are no residue (scorer v4; v3 counted them and scored such answers 0.18).
# Space runs possessive (``*+``): "Output" then 20k spaces and no colon stays linear.
_PROMPT_LABEL = re.compile(
    r"^[ \t]*(?:(?:input|output|instruction|task)[ \t]*+(?:\d+[ \t]*+)?:"
    r"|example[ \t]*+\d+[ \t]*+(?::[ \t]*+)?$)",
    re.IGNORECASE | re.MULTILINE,
)
_BARE_NUMBER = re.compile(r"\d{1,3}[.)]?")
# Ends that close a sentence, a quote, a bracket, code or markup; and every script's sentence
# marks (scorer v10): Unicode's Sentence_Terminal, so the Devanagari danda, the Arabic question
# mark, the Urdu full stop, the Armenian, Ethiopic, Myanmar and Khmer full stops close a line
# or a sentence as "." does (v9 knew only ".!?" and the CJK "。！？", and read a Hindi answer
# whose lines end "।" as open).
_CLOSED = frozenset(".!?。！？…\"'”’»)]}>`*|;$%+")
_TERMINAL = regex.compile(r"[\p{Sentence_Terminal}…]")
_LAST_OF = {";": "."}
# An option's letter or a list number standing as a word ("B)", "3.").
_MARKER_WORD = re.compile(r"(?:[A-Za-z]|\d{1,3})[.)]")
# A quotation's attribution closes it: '"A real friend ..." - Walter Winchell' (scorer v7).
_ATTRIBUTION = re.compile(r"[\"”]\s*[-–—~]+\s*[^\W\d_][^\s\"”]*(?:\s+[^\W\d_][^\s\"”]*){0,3}$")
# A dangling end: a separator or opening character after which text must follow.
_OPEN = frozenset(",:(-–—/&[{“‘«")
_BULLETS = frozenset("-*+•–|")
# A line holding only an option's letter ("B)") or a comment or heading mark ("#", "##"): the
# start of a line that never came (scorer v7).
_BARE_MARKER = re.compile(r"[ \t]*(?:[A-Za-z][.)]|#+|//)[ \t]*")
# English words no finished sentence ends on (articles, prepositions, conjunctions).
_DANGLING_WORDS = frozenset((
    "a", "an", "the", "and", "or", "but", "of", "to", "in", "on", "at", "for", "with", "from",
    "by", "as", "into", "than", "that", "which", "who", "whose", "is", "are", "was", "were",
    "be", "been", "has", "have", "had", "will", "would", "can", "could", "should", "may",
    "might", "my", "your", "his", "her", "their", "our", "its", "this", "these", "those",
    "such", "very",
))  # fmt: skip
# A post's closing hashtags ("...peace and joy. #SelfCare #Weekend") end it as a full stop would
# (scorer v6: read as an open last sentence, real tweets scored 0.27).
_HASHTAG_END = re.compile(r"(?:^|\s)#[^\W\d_]\w*$")
# A web address ends where it ends, "/" included ("https://example.org/full/"; scorer v7).
_URL_END = re.compile(r"(?:^|\s)(?:https?://|www\.)\S+$")
# A phonemic transcription closes on its slash ("/kæt/", "cat: /ˈkæt/"; scorer v10: v9 read the
# slash as an open "and/or" and scored the IPA answer 0.09).
_TRANSCRIPTION_END = re.compile(r"(?:^|[\s(:])/[^/\s][^/\n]*/$")
# HTML tags, and the elements whose end tag a complete document must hold (scorer v7).
_HTML_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9]*)\b[^<>]*?(/?)>")
_HTML_ELEMENTS = frozenset((
    "html", "head", "body", "div", "span", "form", "ul", "ol", "table", "section", "a", "h1",
    "h2", "h3", "h4", "h5", "h6", "title", "script", "style", "button", "label", "select",
    "textarea", "nav", "header", "footer", "main", "article", "aside", "svg", "b", "i", "em",
    "strong", "code", "pre", "blockquote", "figure", "figcaption", "video", "audio", "canvas",
    "iframe",
))  # fmt: skip
# A text that opens with an element of _HTML_ELEMENTS ("<html>", "<div class=...>") is HTML
# even before it closes any (scorer v10: "<html>\n   <div>" was read as no HTML).
_STARTS_HTML = re.compile(r"\s*<([a-zA-Z][a-zA-Z0-9]*)\b[^<>]*>\s*<")
# A Python block header (scorer v10): a line opening a block must end with ":".
_BLOCK_HEADER = re.compile(r"[ \t]*(?:if|elif|else|for|while|def|class|with|try|except)\b")
# Ends after which text must follow in a worked answer or a mapping ("x =", "Masashi ->").
_OPEN_ENDS = ("->", "=>", "→", "<-", "=")
_PAIRS = (("(", ")"), ("[", "]"), ("{", "}"), ("“", "”"))
_INCHES = re.compile(r'\d["”]')
# A list item: a bullet or a list number at a line start, then its text.
_LIST_ITEM = re.compile(r"^[ \t]*(?:[-*+•][ \t]*|\d{1,3}[.)][ \t]+)([^\W\d_].*)$")
# Punctuation around a word, stripped before looking it up.
_STRIP = "\"'“”‘’()[]{},.;:!?*"
# A sentence's end inside a line: after a word of two letters or more, or the pronoun "I"
# ("Who am I?"), since one letter and a full stop is an initial or an option's label
# ("J. Maas", "C. Rupee", "A. To read CDs"; scorer v6), then a space; a sentence mark of
# another script ("。", "！", "।", "؟") needs no space after it (scorer v10: Chinese and
# Japanese write none, and v9 found no inner end in a cut Chinese answer).
_INNER_END = regex.compile(
    r"(?V1)(?:(?<=[\p{L}\p{M}]{2})|(?<=\bI))\p{Sentence_Terminal}(?=\s+\S)"
    r"|(?<=[\p{L}\p{M}])[\p{Sentence_Terminal}--[.!?]](?=\S)"
)
# A field of a record: a short label, a colon, a value of up to 4 words ("Kevin Costner:
# Supporting", "OS: Windows 10"; scorer v10); a line of dialogue says a sentence instead.
_FIELD_LINE = re.compile(r"[ \t]*[^\W\d_][^:\n]{0,30}:[ \t]+\S+(?:[ \t]+\S+){0,3}[ \t]*")
# Clause marks of scripts written without spaces: a line of such prose that holds one and
# ends on a character, not a sentence mark, stopped mid-sentence (scorer v10).
_UNSPACED_CLAUSE = frozenset("，、；：")
# Such a line is prose from this many characters (a name or a label is shorter).
_UNSPACED_PROSE_CHARS = 10
# A line of a list, a table or code: such outputs end without a full stop when complete. Also
# (scorer v7) an option's letter ("A. The Sun danced in the sky") and a short label before a
# colon ("Positive: That was an amazing show", "apprehension (noun): fear or anxiety").
_ITEM_LINE = re.compile(
    r"^(?:[ \t]+\S|[ \t]*(?:[-*+•–]|\d{1,3}[.)-]|[A-Za-z][.)])[ \t]|.*\||[^\s:][^:]{0,40}:[ \t])"
)
# End rates (filters.word_ends) of words that finish answers: "data" 0.12, "people" 0.09,
# "translation" 0.17; a word below RARE_END ("get" 0.010, "we" 0.0009) all but never ends one.
# Between them a doubtful end's factor is scaled from END_FLOOR up to 1 (scorer v5, tuned on
# bench/quality.py's two dev splits only). Bare list items and short lines are not scaled: real
# ones end on "well" (0.05) or "green" (0.05) and would fall below a score gate.
RARE_END = 0.015
FULL_END = 0.25
END_FLOOR = 0.4
BARE_END_FLOOR = 0.9
# Answers of this many words or fewer are labels ("No", "C. Rupee"), which end anywhere; the
# graded penalty spares them (a one-word answer escapes the rare-end rule too).
_LABEL_WORDS = 2


def residue_factor(output: str) -> tuple[float, str]:
    """How free ``output`` is of the prompt's list numbers and field labels.

    Returns:
        (factor, evidence): 0.2 when a line starts with a field label of the instance prompt
        (``Task 3:``, ``Instruction:``, ``Input:``, ``Example 2`` ...), a bare list number ends
        a multi-line output (with its mark, ``"4."``, or without one where the line before
        starts with the number before it and goes on: ``"2 | Up | 2020"``), or the line
        numbers do not count 1, 2, 3... (a list may restart at 1); else (1.0, "").
    """
    label = _PROMPT_LABEL.search(output)
    if label:
        return 0.2, f"field label {label.group(0).strip()!r}"
    expected = 1
    for match in NUMBERED_LINE.finditer(output):
        number = int(match.group(1))
        if number not in (expected, 1):
            return 0.2, f"list number {number} where {expected} was due"
        expected = number + 1
    lines = [line.strip() for line in output.strip().splitlines() if line.strip()]
    last = lines[-1] if len(lines) > 1 else ""
    # A number with its mark ("4.") is a counter; without one ("3") only where the line before
    # it starts with the number before it and goes on ("2. Walk.", "2 | Up | 2020"): a
    # column of numbers ("2\n3\n5\n7") or a value after its lead-in ("The product is:\n42")
    # ends on a number that is the answer.
    if _BARE_NUMBER.fullmatch(last) and (
        not last.isdigit() or re.match(rf"{int(last) - 1}\D.*\w", lines[-2]) is not None
    ):
        return 0.2, f"ends with a bare list number {last!r}"
    return 1.0, ""


def truncation_factor(output: str) -> tuple[float, str]:
    """How finished the end of ``output`` looks.

    Returns:
        (factor, evidence): 1.0 at once for a letter's unsigned close (``"Sincerely,"``), a web
        address (scorer v7) or a phonemic transcription (``"/kæt/"``, scorer v10); 0.1 when it ends
        on a separator (``,`` ``:`` ``(`` ``-`` ...), an operator or arrow (``=`` ``->``), a new
        line holding only a bullet (``-`` ``+`` ``|`` ...), an option letter (``B)``) or a comment
        mark (``#``), an English word no sentence ends on (``the``, ``and``, ``of`` ...; not a
        one-word answer, nor a capital ``A`` naming a note or option), or Python code's block
        header without its ``:`` (scorer v10); 0.3 when a bracket, curly quote, double quote, code
        fence or HTML element opened is never closed, when the last list item breaks the shape
        every earlier item keeps (all ``key: value`` or all closed by the same mark, any sentence
        mark counting as one, and ``.`` closing a list of ``;``), or a table's last row is cut
        (scorer v10), or when its last line ends without closing punctuation although most of the
        text's other sentences or lines close theirs (a letter's sign-off after ``Sincerely,``, an
        indented block's last line, an inline numbered list and short ``label: value`` fields,
        scorer v10, excepted; an option letter or initial closes no sentence; any script's sentence
        mark closes one, scorer v10: ``।`` ``؟`` ``。``); 0.7 when its last line is prose of 6 or
        more words, one a function word, or of 10 or more characters of a script written without
        spaces with a clause mark (``，`` ``、``; scorer v10), ending without punctuation (not a
        formula, a title-case line, an item or ``label: value`` line, or a line after 3+ mostly
        bare ones); else 1.0. Otherwise list items, table rows, code lines, closing hashtags and a
        quotation's attribution (``"..." - Unknown``) may end bare; so may short answers (labels,
        numbers, names). A text ending on a letter is then judged by its last word
        (:mod:`filters.word_ends`, scorer v5): 0.1 when the word is cut (rare, and the start of a
        frequent word: ``"Prepare pa"``; not a one-word answer or an upper-case keyword) or, in an
        output of 2 words or more (an option's letter or a list number is no word), when it almost
        never ends a sentence (end rate under 0.015: ``"7. Get"``); a factor already under 1, past
        2 words, is multiplied by 0.4 to 1 as the word's end rate rises from 0.015 to 0.25; a
        factor of 1, past 2 words, becomes 0.9 to 1 the same way (scorer v6: :func:`_bare_end`).
    """
    text = output.rstrip()
    if not text:
        return 1.0, ""  # emptiness is the length component's business
    last = text[-1]
    if _is_closing_line(text) or _URL_END.search(text) or _TRANSCRIPTION_END.search(text):
        return 1.0, ""
    if last in _OPEN:
        return 0.1, f"ends with {last!r}"
    if text.endswith(_OPEN_ENDS):
        return 0.1, f"ends with {text.split()[-1]!r}"
    lines = text.splitlines()
    last_line = lines[-1]
    words = last_line.split()
    if len(lines) > 1 and (last_line.strip() in _BULLETS or _BARE_MARKER.fullmatch(last_line)):
        return 0.1, f"ends with a bare list marker {last_line.strip()!r}"
    if words and words[-1].casefold() in _DANGLING_WORDS and not _is_letter_name(text, words):
        return 0.1, f"ends with the word {words[-1]!r}"
    unclosed = _unclosed(text)
    if unclosed:
        return 0.3, unclosed
    header = _open_block_header(lines)
    if header:
        return 0.1, header
    broken = _breaks_list_shape(lines)
    if broken:
        return 0.3, broken
    if _is_closed(last) or not _is_letter_or_digit(last) or _HASHTAG_END.search(text):
        return 1.0, ""
    if _ATTRIBUTION.search(last_line):
        return 1.0, ""
    # A letter's name ("C, D, F, A") or a one-word answer is judged by its shape alone.
    word = None if _is_letter_name(text, words) else last_word(text)
    if word is not None and is_cut_word(word) and not _is_whole_term(text, words):
        return 0.1, f"ends inside a word: {word!r} begins frequent words but is none"
    factor, evidence = _unpunctuated_end(text, lines, last_line, words)
    rate = None if word is None else end_rate(word)
    # An option's letter or a list number is no word ("B) Solar" is a one-word answer).
    n_words = len([w for w in text.split() if not _MARKER_WORD.fullmatch(w)])
    if rate is not None and n_words > 1:
        if rate < RARE_END and not _is_field_list(lines):
            return 0.1, f"ends on {word!r}, which ends {rate:.1%} of its uses in the reference"
        if rate < FULL_END and n_words > _LABEL_WORDS and factor < 1.0:
            scaled = factor * (END_FLOOR + (1.0 - END_FLOOR) * rate / FULL_END)
            evidence = f"{evidence}; ends on {word!r} (ends {rate:.1%} of its uses)"
            return scaled, evidence.lstrip("; ")
    return _bare_end(word, n_words, factor, evidence)


def _bare_end(word: str | None, n_words: int, factor: float, evidence: str) -> tuple[float, str]:
    """A text that reads finished by its shape yet ends on a word, not a mark (scorer v6).

    A cut list item or short line reads finished (``"- Explore the Louvre"``, ``"He has a
    dream"``), and so do many real ones (``"- Sleep well"``, ``"Leonardo da Vinci"``): the last
    word's end rate (a word the table lacks: :data:`filters.word_ends.PRIOR_RATE`) scales the
    factor from :data:`BARE_END_FLOOR` to 1 at :data:`FULL_END`. The floor is high on purpose:
    the evidence is weak, so it only orders such answers below ones that end closed, and moves
    no answer across a score gate (a v5 variant scaled these by 0.4 and scored real
    ``"- Sleep well"`` 0.5).
    """
    if factor < 1.0 or word is None or n_words <= _LABEL_WORDS:
        return factor, evidence
    rate = end_rate(word)
    known = rate is not None
    rate = PRIOR_RATE if rate is None else rate
    if rate >= FULL_END:
        return factor, evidence
    mild = BARE_END_FLOOR + (1.0 - BARE_END_FLOOR) * rate / FULL_END
    seen = f"ends {rate:.1%} of its uses" if known else "not in the reference"
    return mild, f"ends bare on {word!r} ({seen})"


def _unpunctuated_end(
    text: str, lines: list[str], last_line: str, words: list[str]
) -> tuple[float, str]:
    """The factor of a text ending on a letter or digit, by its shape alone (scorer v4): 1.0
    for a letter's sign-off, an indented block, an inline list or a field list (scorer v10);
    0.3 when the other sentences close; 0.7 for long open prose."""
    if _is_sign_off(lines) or _is_indented_block(lines) or _is_inline_list(last_line):
        return 1.0, ""
    if _is_field_list(lines):
        return 1.0, ""
    earlier = _closed_share(text[: len(text) - len(last_line)], last_line)
    if earlier is not None and earlier >= 0.5:
        return 0.3, "last sentence unfinished where the others close"
    prose = len(words) >= 6 and _is_prose(words) and not _is_title(words)
    prose = prose or _is_unspaced_prose(last_line)
    if prose and not _ITEM_LINE.match(last_line) and not _lines_end_open(lines[:-1]):
        return 0.7, "long last line without closing punctuation"
    return 1.0, ""


def _is_letter_name(text: str, words: list[str]) -> bool:
    """Whether a last word that ends no sentence is a whole answer or a letter's name (scorer v7).

    A one-word answer names its answer (``"a"``: the second shortest word); a capital ``"A"``
    after a comma or another letter names a note, an option or a grid cell (``"C, D, F, A"``,
    ``"S A N A N A"``), not the article a cut sentence stops on.
    """
    if len(text.split()) == 1:
        return True
    before = words[-2] if len(words) > 1 else ""
    return words[-1] == "A" and (before.endswith(",") or len(before.strip(",;")) <= 2)


def _is_whole_term(text: str, words: list[str]) -> bool:
    """Whether a word the table lacks is a whole answer or a capitalised term (scorer v7).

    :func:`filters.word_ends.is_cut_word` takes a rare word that begins a frequent one for a cut
    (``"pa"`` of ``part``); but a one-word answer (``"mineral"``) was not cut, and a cut lands
    inside a lower-case word: an upper-case keyword or acronym (``"... ORDER BY timestamp
    DESC"``) is written whole.
    """
    if len(text.split()) == 1:
        return True
    raw = words[-1].strip(_STRIP) if words else ""
    return len(raw) > 1 and raw.isupper()


def _is_inline_list(line: str) -> bool:
    """Whether a line lists 3 or more items numbered 1, 2, 3... inline (scorer v7).

    ``"1. Werewolf 2. Who Am I? 3. Charades 4. Kubb"`` ends bare as a list does, whatever marks
    an item's own text holds.
    """
    return inline_run(line) >= 3


def _is_indented_block(lines: list[str]) -> bool:
    """Whether the last line is indented, as are 2 or more earlier lines (scorer v7).

    Code and nested lists end on such a line (``"    return result"``) complete, with no mark,
    whatever the sentences above them do; a cut sentence seldom sits indented in a block.
    """
    indented = [line for line in lines if line[:1] in (" ", "\t") and line.strip()]
    return bool(lines) and lines[-1][:1] in (" ", "\t") and len(indented) >= 3


def _lines_end_open(earlier: list[str]) -> bool:
    """Whether most of 3 or more earlier lines end without a closing mark (scorer v6).

    Verse, menus and unmarked lists end their lines bare, the last one too (``"Make a better
    place for you and for me"`` after such lines is the song's end, not a cut sentence).
    """
    filled = [line.rstrip() for line in earlier if line.strip()]
    bare = sum(not _is_closed(line[-1]) for line in filled)
    return len(filled) >= 3 and 2 * bare > len(filled)


def _is_title(words: list[str]) -> bool:
    """Whether a line is in title case: every word with a letter, bar function words, capitalised.

    Titles and headlines end bare when complete (``"The Health Hazards of Urban Air
    Pollution"``, ``"December 2020: Virus Cases Reach an All-Time High"``; scorer v6).
    """
    major = [w for w in words if w.casefold() not in _DANGLING_WORDS and _has_letter(w)]
    return len(major) >= 3 and all(w[0].isupper() or not w[0].isalpha() for w in major)


def _has_letter(word: str) -> bool:
    return any(ch.isalpha() for ch in word)


def _is_prose(words: list[str]) -> bool:
    """Whether most of a line's whitespace-separated words hold a letter (scorer v6).

    Equations, number sequences and chess positions (``"x = 3, y = 2"``, ``"11 * 21 + 84 =
    233"``) end without punctuation when complete; words of a sentence hold letters, and at
    least one of them is a function word (:data:`_DANGLING_WORDS`, scorer v7).
    """
    if 2 * sum(map(_has_letter, words)) <= len(words):
        return False
    # A sentence binds its words with function words; a run of names, labels or sorted words
    # ("blue indigo orange red green yellow", "Mount Everest, 8,848 m - Himalayas") has none
    # and is complete without a mark (scorer v7).
    return any(w.strip(_STRIP).casefold() in _DANGLING_WORDS for w in words)


def _unclosed(text: str) -> str | None:
    """Evidence of a bracket, quote, code fence or HTML element opened and never closed, or None.

    Only a surplus of openers counts: list numbers (``1)``) and smileys close more than they
    open. Straight single quotes are not counted (apostrophes use them alone); straight double
    quotes are, with the curly ones, by parity (scorer v6: writers mix ``"x”``), unless a digit
    stands before one (``12"``: inches).
    """
    for opener, closer in _PAIRS:
        if text.count(opener) > text.count(closer):
            return f"{opener!r} opened and never closed"
    for fence in ("```", '"""', "'''"):
        if text.count(fence) % 2:
            return f"{fence} opened and never closed"
    if sum(map(text.count, '"“”')) % 2 and not _INCHES.search(text):
        return "a double quote opened and never closed"
    tag = _open_html_element(text)
    if tag:
        return f"HTML element <{tag}> opened and never closed"
    return None


def _open_html_element(text: str) -> str | None:
    """The innermost HTML element a text that closes some elements leaves open (scorer v7).

    Only texts with a closing tag, or opening with a tag followed by another (scorer v10:
    ``"<html>\n   <div>"``), are HTML; only element names of :data:`_HTML_ELEMENTS` count
    (``<anonymized>``, ``List<String>`` and ``#include <string>`` are no HTML), and not those
    whose end tag is optional or absent (``<p>``, ``<li>``, ``<br>``, ``<input>``). On the
    2,174 dev real answers of ``bench/quality.py`` none is left open.
    """
    if "</" not in text and not _STARTS_HTML.match(text):
        return None
    stack: list[str] = []
    for match in _HTML_TAG.finditer(text):
        closing, name, self_closing = match.group(1), match.group(2).casefold(), match.group(3)
        if self_closing or name not in _HTML_ELEMENTS:
            continue
        if not closing:
            stack.append(name)
        elif name in stack:
            while stack.pop() != name:
                pass
    return stack[-1] if stack else None


def _breaks_list_shape(lines: list[str]) -> str | None:
    """Evidence that the last line, a list item or table row, lacks the shape of earlier ones.

    Needs 3 or more earlier items (or 2 earlier table rows with one cell count): fewer show
    no pattern. None when the shape holds.
    """
    filled = [line.rstrip() for line in lines if line.strip()]
    cells = [line.count("|") for line in filled]
    if len(cells) > 2 and cells[-1] and len(set(cells[:-1])) == 1 and cells[-1] < cells[0]:
        return "last table row has fewer cells than the others"
    # A row cut after its separator ("Bananas  |") where no earlier row ends on one, or a line
    # without cells right under 2+ rows of one shape ("...\nFiber | 2 g\nVitamin C"; scorer v10).
    rows = _table_rows([line.rstrip() for line in lines[:-1]])  # a blank line ends a table
    if rows and cells[-1] and filled[-1].endswith("|"):
        if not any(row.endswith("|") for row in rows):
            return "last table row ends on an empty cell"
    elif len(rows) >= 2 and not cells[-1] and filled[-1][-1:].isalnum():
        return "last line under a table has no cells"
    items = [m.group(1).rstrip() for m in map(_LIST_ITEM.match, lines) if m]
    last = _LIST_ITEM.match(lines[-1])
    if last is None or len(items) < 4:
        return None
    earlier, tail = items[:-1], last.group(1).rstrip()
    if all(":" in item[:-1] for item in earlier) and ":" not in tail:
        return "last list item lacks the 'key: value' shape of the others"
    # A sentence's marks are one shape: a recipe's last step ends "Enjoy!" after steps closed
    # by "." (scorer v7: 0.27 before).
    ends = {_sentence_mark(item[-1]) for item in earlier}
    tail_end = _sentence_mark(tail[-1:])
    # Items closed by ";" end on "." (scorer v7): the list's last item closes the sentence.
    if (
        len(ends) == 1
        and _is_closed(end := ends.pop())
        and tail_end not in (end, _LAST_OF.get(end))
    ):
        return f"last list item does not end with {end!r} as the others do"
    return None


def _is_closing_line(text: str) -> bool:
    """Whether a letter ends on its complimentary close, unsigned (scorer v7).

    ``"...hearing from you.\n\nSincerely,"`` or ``"With heartfelt gratitude,"``: a short
    capitalised line ending with a comma, after 2 or more lines whose last closes its sentence.
    A greeting (``"Dear Ms. Lee,"``) heads a letter, so a cut right after one has no closed line
    before it.
    """
    filled = [line.strip() for line in text.splitlines() if line.strip()]
    if len(filled) < 3 or not filled[-1].endswith(","):
        return False
    close = filled[-1]
    return len(close.split()) <= 4 and close[0].isupper() and _is_closed(filled[-2][-1])


def _is_sign_off(lines: list[str]) -> bool:
    """A letter's closing: a short last line (a name) after a line ending with a comma."""
    filled = [line.strip() for line in lines if line.strip()]
    return len(filled) > 1 and filled[-2].endswith(",") and len(filled[-1].split()) <= 4


def _closed_share(before: str, last_line: str) -> float | None:
    """Share of the sentences and lines before the last one that end closed; None if none.

    Lines of ``before`` count by their last character; sentence ends inside any line, the
    last included (``". "`` after a letter, not a list number's ``"2. "``), count as closed:
    a one-line answer whose last sentence alone is open was cut there (scorer v4).
    """
    ends = [line.rstrip()[-1] for line in before.splitlines() if line.strip()]
    inner = len(_INNER_END.findall(before)) + len(_INNER_END.findall(last_line))
    if not ends and not inner:
        return None
    closed = sum(map(_is_closed, ends)) + inner
    return closed / (len(ends) + inner)


def _is_closed(mark: str) -> bool:
    """Whether a text or line ending on ``mark`` closes it: :data:`_CLOSED`, or a sentence mark
    of any script (:data:`_TERMINAL`, scorer v10)."""
    return mark in _CLOSED or _TERMINAL.fullmatch(mark) is not None


def _sentence_mark(mark: str) -> str:
    """``"."`` for any script's sentence mark (a list's last item may close with ``"!"`` where
    the others close with ``"."``, or ``"。"``; scorer v7, v10), else ``mark`` itself."""
    return "." if _TERMINAL.fullmatch(mark) else mark


def _is_unspaced_prose(line: str) -> bool:
    """Whether a line is prose of a script written without spaces (scorer v10): at least
    :data:`_UNSPACED_PROSE_CHARS` of its characters (``"长城是古代的防御工程，东起山海关"``),
    and a clause mark (``，``, ``、``) binding them, as an English sentence's function words do."""
    return (
        has_unspaced_script(line)
        and len(rouge_tokenize(line)) >= _UNSPACED_PROSE_CHARS
        and any(ch in _UNSPACED_CLAUSE for ch in line)
    )


def _is_letter_or_digit(char: str) -> bool:
    """Whether ``char`` is part of a word: a letter, a digit or a combining mark (scorer v10: a
    Myanmar or Devanagari word may end on a vowel sign, which v9 read as closing punctuation)."""
    return char.isalnum() or unicodedata.category(char).startswith("M")


def _table_rows(lines: list[str]) -> list[str]:
    """The table rows that end ``lines``: the last run of lines with one count (1 or more) of
    ``|``, markdown rulers (``---|---``) included (scorer v10)."""
    rows: list[str] = []
    for line in reversed(lines):
        count = line.count("|")
        if not count or (rows and count != rows[-1].count("|")):
            break
        rows.append(line)
    return rows[::-1]


def _is_field_list(lines: list[str]) -> bool:
    """Whether the last two lines are fields, ``label: value`` (scorer v10).

    A field's value is up to 4 words and does not close with a mark (dialogue lines say
    sentences). A record's or a classification's value ends where it ends (``"Tom Hanks: Lead\nKevin
    Costner: Supporting"``, ``"OS: Windows 10\nProgram: Program Name"``): no mark closes it,
    whatever the sentences above do, and its last word may seldom end a sentence.
    """
    filled = [line for line in lines if line.strip()]
    fields = filled[-2:]
    return len(fields) == 2 and all(
        _FIELD_LINE.fullmatch(line) and not _is_closed(line.rstrip()[-1]) for line in fields
    )


def _open_block_header(lines: list[str]) -> str | None:
    """Evidence that Python code ends on a block header cut before its ``:`` (scorer v10).

    ``"for n in nums:\n    if n % 3 == 0"``: the text is Python (an earlier header ends with
    ``:`` and the line after it is indented) and its last line opens a block without ``:``.
    """
    last = lines[-1].rstrip()
    if not _BLOCK_HEADER.match(last) or last.endswith(":"):
        return None
    is_python = any(
        _BLOCK_HEADER.match(a) and a.rstrip().endswith(":") and b[:1] in (" ", "\t")
        for a, b in itertools.pairwise(lines)
    )
    return "a block header without its ':' ends the code" if is_python else None
