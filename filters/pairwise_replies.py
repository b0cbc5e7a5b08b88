"""Reading a pairwise judge's reply: which response it prefers, by the kind of sentence it wrote.

The rubric asks for ``Preferred: A|B|tie`` and ``Strength: 0-3``, but a small judge writes what
it likes: "Response A is better", "I prefer B", "**B**", a bare "A", "Both are equal". Each
reasonable form is one kind of statement with its own pattern:

* ``labelled``: a labelled verdict line, ``Preferred: B`` (also ``Winner``, ``Verdict``,
  ``Answer``, ``Choice``, ``Better response`` as the label), or JSON ``{"preferred": "B"}``;
* ``bare``: the reply is nothing but a side, ``A`` / ``**B**`` / ``(A).`` / ``Response B``;
* ``comparative``: a side with a comparative, ``A is better``, ``Response B wins``,
  ``B is the better answer``, ``A is worse`` (for the other side);
* ``choice``: a verb of choosing before a side, ``I prefer B``, ``I would choose A``;
* ``tie``: ``tie``, ``both are equal``, ``equally good``, ``no preference``, ``neither is
  better``.

Nothing is guessed. A reply whose statements name different verdicts, that negates a preference
("A is not better than B" does not say whether B wins or they tie), names a side that does not
exist, or holds no verdict at all raises :class:`~filters.errors.ReplyParseError` with a stable
``reason`` (one of :data:`FAILURE_REASONS`) the caller stores as the parse failure.

A lone side letter must be a capital unless it ends the sentence: "a" is also the English
article ("I prefer a shorter answer" names no side).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from filters.errors import ReplyParseError

# Stable failure reasons, stored with the failure and counted in reports.
EMPTY_REPLY = "empty_reply"
NO_VERDICT = "no_verdict"
CONFLICTING_VERDICTS = "conflicting_verdicts"
NEGATED_VERDICT = "negated_verdict"
UNKNOWN_SIDE = "unknown_side"
ZERO_STRENGTH = "zero_strength"
INVALID_STRENGTH = "invalid_strength"
FAILURE_REASONS = (
    EMPTY_REPLY,
    NO_VERDICT,
    CONFLICTING_VERDICTS,
    NEGATED_VERDICT,
    UNKNOWN_SIDE,
    ZERO_STRENGTH,
    INVALID_STRENGTH,
)
_TIE_WORDS = frozenset({"tie", "equal", "neither", "both", "none"})
FORMS = ("labelled", "bare", "comparative", "choice", "tie")

# A side: "A", "B" (any case after a noun: "response b"), or a capital/sentence-final letter.
_NOUN = r"(?:response|answer|output|option|candidate|assistant)"
# Space runs next to an optional part are possessive (``\s*+``): "answer" then 20k spaces and no
# side letter is one linear scan, not a quadratic backtrack.
_SIDE = (
    rf"(?:{_NOUN}\s*+[\"'(\[]?\s*+(?P<{{g}}>[ab])\b[\"')\]]?"
    r"|(?-i:(?P<{g}_cap>\b[AB]\b))"
    r"|(?P<{g}_end>\b[ab])(?=\s*(?:[.!?,;:)\]]|$)))"
)
_BETTER = (
    r"(?:better|best|superior|preferred|preferable|stronger|more\s+(?:helpful|accurate|correct"
    r"|complete|relevant|useful))"
)
_WORSE = r"(?:worse|worst|inferior|weaker|less\s+(?:helpful|accurate|correct|complete|relevant))"
_INTENSITY = r"(?P<intensity>slightly|somewhat|marginally|clearly|much|far|significantly|vastly)"
_NEG = r"(?:not|n't|never|no\s+longer)"


def _side(group: str) -> str:
    return _SIDE.replace("{g}", group)


_FLAGS = re.I | re.M
_LABELLED = re.compile(
    r"^[ \t>#*_-]*(?:final\s+)?(?P<label>preferred(?:\s+response)?|preference|winner|verdict|choice"
    r"|answer|better\s+response|best\s+response)[ \t*_]*[:=][ \t*_\"'(]*"
    rf"(?:{_NOUN}\s+)?(?P<value>[a-z]+)\b",
    _FLAGS,
)
_STRENGTH = re.compile(r"^[ \t>#*_-]*strength[ \t*_]*[:=][ \t*_]*(?P<value>[0-9]+)\b", _FLAGS)
_BARE = re.compile(rf"^[\s*_`\"'(\[]*(?:{_NOUN}\s+)?(?P<side>[ab])[\s*_`\"')\].!]*$", re.I)
_COMPARATIVE = re.compile(
    rf"{_side('side')}\s*(?:(?:is|was|seems|appears|looks|'s)\s+(?:to\s+be\s+)?(?:the\s+|a\s+)?"
    rf"(?:{_INTENSITY}\s+)?(?P<kind>{_BETTER}|{_WORSE})|(?P<wins>wins|won)\b)",
    _FLAGS,
)
_BETTER_IS = re.compile(
    rf"(?:the\s+)?(?:{_INTENSITY}\s+)?(?:better|best|preferred|winning|stronger)\s++"
    rf"(?:{_NOUN}|one|choice)?\s*+(?:is|would\s+be|:)\s*{_side('side')}",
    _FLAGS,
)
_CHOICE = re.compile(
    rf"\b(?:i|we)\s+(?:would\s+|'d\s+|strongly\s+|slightly\s+)?(?:prefer|choose|pick|select"
    rf"|go\s+with|favou?r|recommend)\s+{_side('side')}",
    _FLAGS,
)
_NEGATED = re.compile(
    rf"{_side('side')}\s*+(?:is|was|does|do|seems)?\s*+{_NEG}\s+(?:\w+\s+)?"
    rf"(?:{_BETTER}|{_WORSE}|win|wins|preferred)"
    rf"|\b(?:i|we)\s+(?:do|would|can)\s*{_NEG}\s+(?:prefer|choose|pick|favou?r)\s+{_side('side2')}",
    _FLAGS,
)
_TIE = re.compile(
    r"\btie\b|\btied\b|\bdraw\b|\bboth\s+(?:responses\s+|answers\s+)?(?:are|were|seem)\s+"
    r"(?:equally|equal|the\s+same|identical|equivalent|similar)|\bequally\s+(?:good|bad|"
    r"helpful|valid|correct|strong|weak)|\bno\s+(?:clear\s+)?(?:preference|winner|difference)\b"
    r"|\bneither\s+(?:response\s+|answer\s+|one\s+)?is\s+better\b|\bare\s+(?:equal|equivalent)\b",
    _FLAGS,
)
_STRENGTH_WORDS = {
    "slightly": 1,
    "somewhat": 1,
    "marginally": 1,
    "clearly": 2,
    "much": 3,
    "far": 3,
    "significantly": 3,
    "vastly": 3,
}
_MARKUP = re.compile(r"[*_`]+")


@dataclass(frozen=True)
class PairwiseVerdict:
    """What one reply says about the pair as shown.

    Attributes:
        value: +strength when A is preferred, -strength when B is, 0 for a tie
            (strength 1..3; 1 when the reply gives none).
        form: which kind of statement it was read from (one of :data:`FORMS`).
    """

    value: int
    form: str


def parse_pairwise_verdict(reply: str) -> PairwiseVerdict:
    """Read a pairwise judge reply into a signed preference for the response shown as A.

    A labelled ``Preferred:`` line wins over the free text around it (the rubric's own form).
    Otherwise every statement of the kinds above is read, and they must agree.

    Args:
        reply: The judge model's reply, as generated.

    Returns:
        The verdict and the form it was read from.

    Raises:
        ReplyParseError: ``reason`` is one of :data:`FAILURE_REASONS`; the message says more.
    """
    text = reply.strip()
    if not text:
        raise ReplyParseError("the reply is empty", reason=EMPTY_REPLY)
    labelled = _labelled(text)
    if labelled is not None:
        return labelled
    plain = _MARKUP.sub("", text)
    bare = _BARE.match(plain)
    if bare:
        return PairwiseVerdict(_signed(bare.group("side"), 1), "bare")
    negated = _NEGATED.search(plain)
    if negated:
        raise ReplyParseError(
            f"a negated preference ({negated.group(0)!r}) names no winner", reason=NEGATED_VERDICT
        )
    found: dict[int, str] = {}
    for m in _COMPARATIVE.finditer(plain):
        value = _signed(_matched_side(m, "side"), _intensity(m))
        worse = bool(re.fullmatch(_WORSE, m.group("kind") or "", re.I))
        found.setdefault(-value if worse else value, "comparative")
    for m in _BETTER_IS.finditer(plain):
        found.setdefault(_signed(_matched_side(m, "side"), _intensity(m)), "comparative")
    for m in _CHOICE.finditer(plain):
        found.setdefault(_signed(_matched_side(m, "side"), 1), "choice")
    if _TIE.search(plain):
        found.setdefault(0, "tie")
    if not found:
        raise ReplyParseError("no verdict: neither a side nor a tie is named", reason=NO_VERDICT)
    signs = {(v > 0) - (v < 0) for v in found}
    if len(signs) > 1:
        raise ReplyParseError(
            f"the reply names {len(signs)} different verdicts", reason=CONFLICTING_VERDICTS
        )
    value = max(found, key=abs)  # "A is better ... A is much better": the strongest statement
    return PairwiseVerdict(value, found[value])


def parse_pairwise_reply(reply: str) -> int:
    """The signed preference for A of :func:`parse_pairwise_verdict` (the value alone).

    Raises:
        ReplyParseError: as :func:`parse_pairwise_verdict`.
    """
    return parse_pairwise_verdict(reply).value


def _labelled(text: str) -> PairwiseVerdict | None:
    """The verdict of a labelled line or JSON object; None when there is none to read.

    A loose label ("Answer:", "Choice:") followed by something other than a side or a tie is
    not a verdict line, and the free text is read instead; the rubric's own ``Preferred:``
    followed by anything else is an unknown side.
    """
    if text.startswith("{"):
        try:
            obj = json.loads(text)
        except json.JSONDecodeError:
            obj = None
        if isinstance(obj, dict) and "preferred" in obj:
            return _labelled_value(str(obj["preferred"]), obj.get("strength"))
    for match in _LABELLED.finditer(text):
        value = match.group("value").lower()
        if (
            value in ("a", "b")
            or value in _TIE_WORDS
            or match.group("label").lower() == "preferred"
        ):
            strength = _STRENGTH.search(text)
            return _labelled_value(value, strength.group("value") if strength else None)
    return None


def _labelled_value(raw: str, strength: object) -> PairwiseVerdict:
    side = raw.strip().lower()
    if side in _TIE_WORDS:
        return PairwiseVerdict(0, "labelled")
    if side not in ("a", "b"):
        raise ReplyParseError(f"the verdict names {raw!r}, not A, B or tie", reason=UNKNOWN_SIDE)
    try:
        value = 1 if strength is None else int(str(strength))
    except ValueError:
        value = -1
    if value == 0:
        raise ReplyParseError(f"'Preferred: {side.upper()}' with strength 0", reason=ZERO_STRENGTH)
    if not 1 <= value <= 3:
        raise ReplyParseError(f"strength {strength!r} is not 1, 2 or 3", reason=INVALID_STRENGTH)
    return PairwiseVerdict(_signed(side, value), "labelled")


def _matched_side(match: re.Match[str], group: str) -> str:
    for name in (group, f"{group}_cap", f"{group}_end"):
        value = match.groupdict().get(name)
        if value:
            return value
    raise AssertionError("a side pattern matched without a side")  # the patterns require one


def _intensity(match: re.Match[str]) -> int:
    word = (match.groupdict().get("intensity") or "").lower()
    return _STRENGTH_WORDS.get(word, 1)


def _signed(side: str, strength: int) -> int:
    return strength if side.lower() == "a" else -strength
