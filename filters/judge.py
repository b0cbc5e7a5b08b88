"""LLM-as-judge: a versioned rubric, prompts built from it, replies parsed into scores.

Prompts are filled by the project's one single-pass renderer (:mod:`templating`), so an
instruction, input or response that itself holds ``${output}``, ``{input}`` or a backslash
reaches the judge verbatim and each text appears exactly once.

The judge never calls a model itself: it takes ``complete(prompts) -> replies`` so the
service can back it with any inference backend, and tests with a plain function. A reply
that cannot be parsed becomes a Score with value None and the reason, never a dropped item.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from importlib import resources

from scipy.stats import spearmanr

from filters.errors import InvalidInputError, JudgeError, ReplyParseError, RubricError
from filters.types import Score
from templating import SlotError, fill_slots, slot_names

SCORER_NAME = "llm_judge"
_SCORE_RE = re.compile(r"^\s*\**\s*score\s*\**\s*[:=]\s*\**\s*([0-9]+(?:\.[0-9]+)?)", re.I | re.M)
_RATIONALE_RE = re.compile(r"^\s*\**\s*rationale\s*\**\s*[:=]\s*\**\s*(.+)$", re.I | re.M)
_VERSION_RE = re.compile(r"^v[0-9]+$")
_MAX_RATIONALE = 500
RUBRIC_SLOTS = frozenset({"instruction", "input", "output"})
DEFAULT_RUBRIC_VERSION = "v2"  # v1 used str.replace chains that re-read substituted text


def load_rubric(version: str) -> str:
    """Read the packaged rubric ``filters/rubrics/judge.<version>.txt``.

    Args:
        version: Rubric version, e.g. ``"v2"``.

    Returns:
        The rubric text, whose slots are exactly ``${instruction}``, ``${input}``, ``${output}``.

    Raises:
        RubricError: If the version is malformed or missing, or its slots are not those three.
    """
    if not _VERSION_RE.match(version):
        raise RubricError(f"rubric version must look like 'v1', got {version!r}")
    path = resources.files("filters") / "rubrics" / f"judge.{version}.txt"
    if not path.is_file():
        raise RubricError(f"no rubric file judge.{version}.txt")
    text = path.read_text(encoding="utf-8")
    try:
        slots = slot_names(text)
    except SlotError as exc:
        raise RubricError(f"rubric judge.{version}.txt: {exc}") from exc
    if slots != RUBRIC_SLOTS:
        raise RubricError(
            f"rubric judge.{version}.txt has slots {sorted(slots)}, wants {sorted(RUBRIC_SLOTS)}"
        )
    return text


def parse_reply(reply: str) -> tuple[int, str]:
    """Parse a judge reply into (score, rationale).

    Accepts the rubric's "Score: N / Rationale: ..." lines (markdown bold tolerated) or a
    JSON object with "score" and "rationale".

    Args:
        reply: The model's reply.

    Returns:
        The integer score in 1..5 and the rationale (possibly empty).

    Raises:
        ReplyParseError: With the reason when the reply holds no valid score.
    """
    text = reply.strip()
    if text.startswith("{"):
        try:
            obj = json.loads(text)
        except json.JSONDecodeError:
            obj = None
        if isinstance(obj, dict) and "score" in obj:
            return _valid(str(obj["score"])), str(obj.get("rationale", ""))[:_MAX_RATIONALE]
    match = _SCORE_RE.search(text)
    if not match:
        raise ReplyParseError("no 'Score: N' line in reply")
    rationale = _RATIONALE_RE.search(text)
    return _valid(match.group(1)), (rationale.group(1).strip() if rationale else "")[
        :_MAX_RATIONALE
    ]


def _valid(raw: str) -> int:
    try:
        value = float(raw)
    except ValueError as exc:
        raise ReplyParseError(f"score {raw!r} is not a number") from exc
    if value != int(value) or not 1 <= value <= 5:
        raise ReplyParseError(f"score {raw} is not an integer from 1 to 5")
    return int(value)


class LLMJudge:
    """Scores (instruction, input, output) examples 1-5 with a model and a versioned rubric.

    Args:
        complete: Function from a list of prompts to the same number of replies.
        rubric_version: Which packaged rubric to use.

    Raises:
        RubricError: If the rubric cannot be loaded.
    """

    def __init__(
        self,
        complete: Callable[[list[str]], list[str]],
        rubric_version: str = DEFAULT_RUBRIC_VERSION,
    ) -> None:
        """Load the rubric; see the class docstring."""
        self._complete = complete
        self.rubric_version = rubric_version
        self.rubric = load_rubric(rubric_version)
        self.rubric_sha256 = hashlib.sha256(self.rubric.encode("utf-8")).hexdigest()

    def build_prompts(self, items: Sequence[tuple[str, str, str]]) -> list[str]:
        """Render the rubric for each (instruction, input, output), each text verbatim once.

        Args:
            items: The examples; an empty or blank input is shown as ``(none)``.

        Returns:
            One prompt per example.
        """
        return [
            fill_slots(
                self.rubric,
                {"instruction": ins, "input": inp if inp.strip() else "(none)", "output": out},
            )
            for ins, inp, out in items
        ]

    def score(self, items: Sequence[tuple[str, str, str]]) -> list[Score]:
        """Score examples in one call to ``complete``.

        Args:
            items: The examples.

        Returns:
            One Score per example, in order; unparseable replies have value None and
            ``details["error"]`` (with the raw reply).

        Raises:
            JudgeError: If ``complete`` returns a different number of replies.
        """
        if not items:
            return []
        replies = self._complete(self.build_prompts(items))
        if len(replies) != len(items):
            raise JudgeError(f"complete returned {len(replies)} replies for {len(items)} prompts")
        return [self._to_score(reply) for reply in replies]

    def _to_score(self, reply: str) -> Score:
        base = {"rubric_version": self.rubric_version, "rubric_sha256": self.rubric_sha256}
        try:
            value, rationale = parse_reply(reply)
        except ReplyParseError as exc:
            details = {**base, "error": str(exc), "raw_reply": reply[:2000]}
            return Score(SCORER_NAME, self.rubric_version, None, details)
        return Score(
            SCORER_NAME, self.rubric_version, float(value), {**base, "rationale": rationale}
        )


def length_bias(scores: Sequence[float | None], lengths: Sequence[int]) -> float | None:
    """Spearman correlation between judge scores and output lengths over a run.

    A strong positive value means the judge rewards length rather than quality.

    Args:
        scores: Judge scores (None entries, i.e. parse failures, are left out with their length).
        lengths: Output lengths (characters or tokens), aligned with ``scores``.

    Returns:
        Spearman's rho, or None when fewer than 3 scored pairs or either side is constant.

    Raises:
        InvalidInputError: If the two sequences differ in length.
    """
    if len(scores) != len(lengths):
        raise InvalidInputError(f"{len(scores)} scores but {len(lengths)} lengths")
    pairs = [(float(s), float(n)) for s, n in zip(scores, lengths, strict=True) if s is not None]
    if len(pairs) < 3 or len({s for s, _ in pairs}) < 2 or len({n for _, n in pairs}) < 2:
        return None
    rho = spearmanr([s for s, _ in pairs], [n for _, n in pairs]).statistic
    return float(rho)
