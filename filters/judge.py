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
import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

import numpy as np
from scipy.stats import spearmanr

from filters.errors import InvalidInputError, JudgeError, ReplyParseError, RubricError
from filters.pairwise_replies import parse_pairwise_verdict
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
    return _load_rubric_file("judge", version, RUBRIC_SLOTS)


def _load_rubric_file(name: str, version: str, wanted: frozenset[str]) -> str:
    if not _VERSION_RE.match(version):
        raise RubricError(f"rubric version must look like 'v1', got {version!r}")
    path = resources.files("filters") / "rubrics" / f"{name}.{version}.txt"
    if not path.is_file():
        raise RubricError(f"no rubric file {name}.{version}.txt")
    text = path.read_text(encoding="utf-8")
    try:
        slots = slot_names(text)
    except SlotError as exc:
        raise RubricError(f"rubric {name}.{version}.txt: {exc}") from exc
    if slots != wanted:
        raise RubricError(
            f"rubric {name}.{version}.txt has slots {sorted(slots)}, wants {sorted(wanted)}"
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


# --- Pairwise preference judging (preference pairs for DPO) -------------------------------------

PAIRWISE_SLOTS = frozenset({"instruction", "input", "response_a", "response_b"})
DEFAULT_PAIRWISE_VERSION = "v1"
JudgeMode = Literal["text", "logprob"]
# The logprob judge's fixed start of the answer, put after the (chat-wrapped) prompt: the next
# token is the label. It ends before the space so " A" / " B" are whole tokens in BPE
# vocabularies (SmolLM2, Llama, GPT-2 style).
LOGPROB_ANSWER_PREFIX = "The better response is Response"
LABELS = ("A", "B")
# Why a logprob reading gave no value (stored like a text reply's parse failure reason).
NO_LOGPROBS = "no_logprobs"  # the backend returned no log-probabilities
NO_LABEL = "no_label"  # neither label is among the top tokens
LOW_LABEL_MASS = "low_label_mass"  # the labels hold less than min_label_mass together
LabelLogprobs = Callable[[list[str], str], list[dict[str, float] | None]]

PairItem = tuple[str, str, str, str]  # instruction, input, response 1, response 2
ORDERS = ("forward", "backward", "controlled_forward", "controlled_backward")


def cut_to_words(text: str, words: int) -> str:
    """The first ``words`` whitespace-separated words of ``text`` (the length control's cut)."""
    return " ".join(text.split()[:words])


@dataclass(frozen=True)
class JudgeReply:
    """One judge reply of a comparison, as read.

    Attributes:
        order: which of :data:`ORDERS` it answers (response 1 shown first or second, at full
            or at equal length).
        text: the reply as generated.
        value: the signed preference for the response shown as A (-3..3); None when unparsed.
        form: the kind of statement it was read from (``filters.pairwise_replies.FORMS``, or
            ``logprob`` for a label-probability reading).
        failure: why it was not read (``filters.pairwise_replies.FAILURE_REASONS``, or
            :data:`NO_LOGPROBS`, :data:`NO_LABEL`, :data:`LOW_LABEL_MASS`).
        detail: the parse error's message, for people.
        label_logprobs: a logprob reading's log-probability of each label (``A``, ``B``;
            every top token that is the label apart from spaces, combined); None for text.
    """

    order: str
    text: str
    value: float | None
    form: str | None = None
    failure: str | None = None
    detail: str | None = None
    label_logprobs: dict[str, float] | None = None


def read_reply(order: str, text: str) -> JudgeReply:
    """Parse one reply; a parse failure is kept with its reason, never guessed."""
    try:
        verdict = parse_pairwise_verdict(text)
    except ReplyParseError as exc:
        return JudgeReply(order, text, None, failure=exc.reason, detail=str(exc))
    return JudgeReply(order, text, verdict.value, form=verdict.form)


def read_label_logprobs(
    order: str,
    top: dict[str, float] | None,
    *,
    tie_threshold: float,
    min_label_mass: float,
) -> JudgeReply:
    """Read a preference from the next token's top log-probabilities after the answer prefix.

    The probability of each label is the sum over the top tokens equal to it apart from
    whitespace (``A`` and `` A``; case-sensitive: ``a`` is the English article). With
    ``share = (p(A) - p(B)) / (p(A) + p(B))`` the signed preference for A is ``3 * share``
    (the text rubric's strength scale: 3 = certain, 0 = even), and 0 (a tie) when
    ``|share| < tie_threshold``. Never guessed: no log-probabilities, no label among the top
    tokens, or labels holding less than ``min_label_mass`` of the probability together (the
    model was about to write something else) leave the value None with the reason.

    Args:
        order: which of :data:`ORDERS` it answers.
        top: decoded token -> natural-log probability at the label's position, or None.
        tie_threshold: in [0, 1), the share below which it is a tie.
        min_label_mass: in [0, 1], the least p(A) + p(B) read as an answer.

    Returns:
        The reading; ``text`` is the likeliest top token, ``label_logprobs`` both labels'.

    Raises:
        InvalidInputError: a threshold is out of range.
    """
    if not 0 <= tie_threshold < 1 or not 0 <= min_label_mass <= 1:
        raise InvalidInputError(
            f"tie_threshold {tie_threshold} must be in [0, 1), min_label_mass "
            f"{min_label_mass} in [0, 1]"
        )
    if not top:
        return JudgeReply(order, "", None, failure=NO_LOGPROBS, detail="no log-probabilities")
    text = max(top, key=lambda t: top[t])
    probs = {
        label: sum(math.exp(lp) for t, lp in top.items() if t.strip() == label) for label in LABELS
    }
    logs = {k: math.log(v) for k, v in probs.items() if v > 0}
    mass = probs["A"] + probs["B"]
    if mass == 0:
        return JudgeReply(order, text, None, failure=NO_LABEL, detail="no label in top tokens")
    if mass < min_label_mass:
        detail = f"labels hold {mass:.3f} < {min_label_mass} of the probability"
        return JudgeReply(
            order, text, None, failure=LOW_LABEL_MASS, detail=detail, label_logprobs=logs
        )
    share = (probs["A"] - probs["B"]) / mass
    value = 0.0 if abs(share) < tie_threshold else 3 * share
    return JudgeReply(order, text, value, form="logprob", label_logprobs=logs)


@dataclass(frozen=True)
class PairJudgement:
    """Both orders of one comparison, as signed preferences for response 1 (None: unparsed).

    Attributes:
        forward: response 1 shown as A.
        backward: response 1 shown as B (already sign-flipped to favour response 1).
        length_controlled: the mean of both orders with the longer response cut to the
            shorter's word count; None when the length control was off or did not parse.
        replies: every reply behind it, in :data:`ORDERS` order (empty when built by hand).
    """

    forward: float | None
    backward: float | None
    length_controlled: float | None = None
    replies: tuple[JudgeReply, ...] = ()

    @property
    def parsed(self) -> bool:
        """Both orders parsed."""
        return self.forward is not None and self.backward is not None

    @property
    def consistent(self) -> bool:
        """Both orders agree: the same winner, or a tie both times (position-swap check)."""
        return self.parsed and _sign(self.forward) == _sign(self.backward)

    @property
    def preference(self) -> float | None:
        """The mean signed preference for response 1 over both orders (the margin's sign)."""
        if self.forward is None or self.backward is None:
            return None
        return (self.forward + self.backward) / 2

    @property
    def tie(self) -> bool:
        """Both orders say tie (ties are kept as ties, never turned into a pair)."""
        return self.consistent and self.forward == 0

    @property
    def length_only(self) -> bool:
        """The winner no longer wins once both responses have the same length."""
        pref, controlled = self.preference, self.length_controlled
        if pref is None or pref == 0 or controlled is None:
            return False
        return _sign(controlled) != _sign(pref)


def _sign(value: float | None) -> int:
    return 0 if not value else (1 if value > 0 else -1)


class PairwiseJudge:
    """Compares two responses to one prompt in both orders, with a length-controlled re-run.

    Position swap: each pair is judged with response 1 first and again second; a pair counts
    only when both orders agree (Zheng et al. 2023, *Judging LLM-as-a-Judge*, §3.4 "swap
    positions"). Length control: the longer response is cut to the shorter's word count and
    the pair judged again in both orders; a winner that stops winning wins only by length
    (the length bias measured by Dubois et al. 2024, *Length-Controlled AlpacaEval*).

    Two modes. ``text``: the judge writes its verdict and :func:`read_reply` reads it.
    ``logprob``: the prompt (rubric ``pairwise_logprob.<v>``) is followed by the fixed
    :data:`LOGPROB_ANSWER_PREFIX` and the judge's next-token probabilities of ``A`` and ``B``
    are the verdict (:func:`read_label_logprobs`), as AlpacaEval's ``weighted_alpaca_eval``
    annotators read the preference from the first token's top log-probabilities. A weak
    model that writes no readable verdict still gives these probabilities; both orders must
    still agree, so a judge that only prefers a position keeps nothing.

    Args:
        complete: text mode: function from prompts to the same number of replies.
        rubric_version: Which packaged rubric version to use.
        length_control: Run the length-controlled comparison (two more calls per pair).
        label_logprobs: logprob mode: function from (prompts, answer prefix) to, per prompt,
            the top next-token log-probabilities after the prefix (None: none returned).
        tie_threshold: logprob mode: the label-share below which a reading is a tie.
        min_label_mass: logprob mode: the least p(A) + p(B) read as an answer.

    Attributes:
        mode: ``text`` or ``logprob``.
        rubric_sha256: the hash of what is sent: the rubric, and in logprob mode a NUL and
            the answer prefix after it.

    Raises:
        RubricError: If the rubric cannot be loaded.
        InvalidInputError: neither or both of ``complete`` and ``label_logprobs`` given, or a
            threshold out of range.
    """

    def __init__(
        self,
        complete: Callable[[list[str]], list[str]] | None = None,
        rubric_version: str = DEFAULT_PAIRWISE_VERSION,
        *,
        length_control: bool = True,
        label_logprobs: LabelLogprobs | None = None,
        tie_threshold: float = 0.1,
        min_label_mass: float = 0.5,
    ) -> None:
        """Load the rubric; see the class docstring."""
        if (complete is None) == (label_logprobs is None):
            raise InvalidInputError("give exactly one of complete (text) and label_logprobs")
        if not 0 <= tie_threshold < 1 or not 0 <= min_label_mass <= 1:
            raise InvalidInputError(
                f"tie_threshold {tie_threshold} must be in [0, 1), min_label_mass "
                f"{min_label_mass} in [0, 1]"
            )
        self._complete = complete
        self._label_logprobs = label_logprobs
        self.mode: JudgeMode = "text" if complete is not None else "logprob"
        self.tie_threshold = tie_threshold
        self.min_label_mass = min_label_mass
        self.rubric_version = rubric_version
        name = "pairwise" if self.mode == "text" else "pairwise_logprob"
        self.rubric = _load_rubric_file(name, rubric_version, PAIRWISE_SLOTS)
        sent = self.rubric if self.mode == "text" else f"{self.rubric}\0{LOGPROB_ANSWER_PREFIX}"
        self.rubric_sha256 = hashlib.sha256(sent.encode("utf-8")).hexdigest()
        self.length_control = length_control

    def build_prompt(self, instruction: str, input_text: str, a: str, b: str) -> str:
        """Render the rubric for one order; each text verbatim once, a blank input as (none)."""
        values = {
            "instruction": instruction,
            "input": input_text if input_text.strip() else "(none)",
            "response_a": a,
            "response_b": b,
        }
        return fill_slots(self.rubric, values)

    def compare(self, items: Sequence[PairItem]) -> list[PairJudgement]:
        """Judge each (instruction, input, response 1, response 2) in one call to ``complete``.

        Returns:
            One judgement per item, in order (unparsed replies leave that order None).

        Raises:
            JudgeError: If ``complete`` returns a different number of replies.
        """
        if not items:
            return []
        prompts: list[str] = []
        for ins, inp, r1, r2 in items:
            prompts += [self.build_prompt(ins, inp, r1, r2), self.build_prompt(ins, inp, r2, r1)]
            if self.length_control:
                n = min(len(r1.split()), len(r2.split()))
                c1, c2 = cut_to_words(r1, n), cut_to_words(r2, n)
                prompts += [
                    self.build_prompt(ins, inp, c1, c2),
                    self.build_prompt(ins, inp, c2, c1),
                ]
        reads = self._read(prompts)
        per = 4 if self.length_control else 2
        out = []
        for i in range(len(items)):
            read = tuple(reads[i * per : (i + 1) * per])
            got = [r.value for r in read]
            forward, backward = got[0], None if got[1] is None else -got[1]
            controlled = None
            if self.length_control and got[2] is not None and got[3] is not None:
                controlled = (got[2] - got[3]) / 2
            out.append(PairJudgement(forward, backward, controlled, read))
        return out

    def _read(self, prompts: list[str]) -> list[JudgeReply]:
        """One reading per prompt; prompts come in :data:`ORDERS` groups."""
        per = 4 if self.length_control else 2
        orders = [ORDERS[i % per] for i in range(len(prompts))]
        if self._complete is not None:
            replies = self._complete(prompts)
            if len(replies) != len(prompts):
                raise JudgeError(
                    f"complete returned {len(replies)} replies for {len(prompts)} prompts"
                )
            return [read_reply(o, r) for o, r in zip(orders, replies, strict=True)]
        assert self._label_logprobs is not None
        tops = self._label_logprobs(prompts, LOGPROB_ANSWER_PREFIX)
        if len(tops) != len(prompts):
            raise JudgeError(f"label_logprobs returned {len(tops)} for {len(prompts)} prompts")
        return [
            read_label_logprobs(
                o, top, tie_threshold=self.tie_threshold, min_label_mass=self.min_label_mass
            )
            for o, top in zip(orders, tops, strict=True)
        ]


@dataclass(frozen=True)
class PreferencePair:
    """A kept pair: indexes into the compared item's responses, the margin and the flag."""

    item: int
    chosen: int  # 0: response 1, 1: response 2
    margin: float
    length_only: bool


# A prompt none of whose compared response pairs was kept: its rejection (rule, version).
NO_PAIR_RULE = ("no_preference_pair", "1")
# What became of one comparison (stored with it; only KEPT is a preference pair).
KEPT, TIE, INCONSISTENT, UNPARSED, BELOW_MARGIN = (
    "kept",
    "tie",
    "inconsistent",
    "unparsed",
    "below_margin",
)


def _check_margin(min_margin: float) -> None:
    if not 0 <= min_margin <= 3:
        raise InvalidInputError(f"min_margin {min_margin} is not in [0, 3]")


def comparison_outcome(judgement: PairJudgement, *, min_margin: float) -> str:
    """KEPT when both orders agree on a winner by at least ``min_margin``; else why not.

    Raises:
        InvalidInputError: ``min_margin`` is not in [0, 3].
    """
    _check_margin(min_margin)
    pref = judgement.preference
    if pref is None:
        return UNPARSED
    if not judgement.consistent:
        return INCONSISTENT
    if judgement.tie:
        return TIE
    return KEPT if abs(pref) >= min_margin else BELOW_MARGIN


def select_pairs(judgements: Sequence[PairJudgement], *, min_margin: float) -> list[PreferencePair]:
    """Keep the pairs whose two orders agree on a winner by at least ``min_margin``.

    Ties, inconsistent and unparsed pairs are dropped; length-only wins are kept and flagged.

    Raises:
        InvalidInputError: ``min_margin`` is not in [0, 3].
    """
    _check_margin(min_margin)
    kept = []
    for i, j in enumerate(judgements):
        if comparison_outcome(j, min_margin=min_margin) == KEPT:
            pref = j.preference or 0.0
            kept.append(PreferencePair(i, 0 if pref > 0 else 1, abs(pref), j.length_only))
    return kept


def preference_bias(
    items: Sequence[PairItem],
    judgements: Sequence[PairJudgement],
    pairs: Sequence[PreferencePair],
    *,
    generators: Sequence[tuple[str, str]] | None = None,
    judge_model: str | None = None,
) -> dict[str, Any]:
    """The bias figures a preference run reports.

    Args:
        items: The compared items.
        judgements: Their judgements, aligned.
        pairs: The kept pairs (:func:`select_pairs`).
        generators: Per item, the model that wrote response 1 and response 2.
        judge_model: The judge's model, to measure self-preference against ``generators``.

    Returns:
        ``position_swap_consistency`` (agreeing share of parsed comparisons),
        ``spearman_preference_vs_length`` (preference for response 1 against its word-count
        lead), ``length_ratio`` (chosen/rejected word-count ratio: p10, p50, p90, mean),
        ``self_preference`` (share of decided pairs between the judge's own response and
        another model's that the judge's own wins; None when no such pair), counts, and the
        replies read by form and the unread ones by failure reason.
        None stands for a figure with too little data.

    Raises:
        InvalidInputError: ``items`` and ``judgements`` differ in length.
    """
    if len(items) != len(judgements):
        raise InvalidInputError(f"{len(items)} items but {len(judgements)} judgements")
    parsed = [(it, j) for it, j in zip(items, judgements, strict=True) if j.parsed]
    consistent = sum(j.consistent for _, j in parsed)
    prefs = [float(j.preference or 0.0) for _, j in parsed]
    leads = [len(it[2].split()) - len(it[3].split()) for it, _ in parsed]
    rho = None
    if len(parsed) >= 3 and len(set(prefs)) > 1 and len(set(leads)) > 1:
        rho = float(spearmanr(prefs, leads).statistic)
    ratios = []
    for p in pairs:
        responses = items[p.item][2:]
        chosen, rejected = responses[p.chosen], responses[1 - p.chosen]
        ratios.append(max(len(chosen.split()), 1) / max(len(rejected.split()), 1))
    self_pref = None
    if generators is not None and judge_model is not None:
        own_wins = mixed = 0
        for p in pairs:
            models = generators[p.item]
            if (models[0] == judge_model) != (models[1] == judge_model):
                mixed += 1
                own_wins += models[p.chosen] == judge_model
        self_pref = own_wins / mixed if mixed else None
    return {
        "comparisons": len(items),
        "parsed": len(parsed),
        "ties": sum(j.tie for _, j in parsed),
        "kept_pairs": len(pairs),
        "length_only_pairs": sum(p.length_only for p in pairs),
        "position_swap_consistency": consistent / len(parsed) if parsed else None,
        "spearman_preference_vs_length": rho,
        "length_ratio": _quantiles(ratios),
        "self_preference": self_pref,
        "replies_by_form": dict(Counter(r.form for j in judgements for r in j.replies if r.form)),
        "reply_failures": dict(
            Counter(r.failure for j in judgements for r in j.replies if r.failure)
        ),
    }


def _quantiles(values: Sequence[float]) -> dict[str, float] | None:
    if not values:
        return None
    ordered = np.sort(np.asarray(values, dtype=float))
    q = np.quantile(ordered, [0.1, 0.5, 0.9])
    return {
        "p10": float(q[0]),
        "p50": float(q[1]),
        "p90": float(q[2]),
        "mean": float(ordered.mean()),
    }
