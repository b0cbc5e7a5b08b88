"""The rules each turn of a grown conversation must pass (multi-turn demonstrations).

A conversation grows by a model-written user turn (a clarification, a constraint, a correction)
and the assistant's answer; a turn pair is kept only when:

- ``turn_refusal``: the answer is not a refusal (:func:`filters.refusal.is_refusal`);
- ``turn_echo``: the answer does not merely repeat the user turn or the previous answer
  (:func:`filters.echo.repeated_part`), and the user turn does not repeat the previous one;
- ``turn_length``: the user turn and the answer are within word bounds (ROUGE tokens);
- ``turn_near_duplicate``: the user turn is not a near-duplicate of the previous user turn,
  nor the answer of the previous answer (ROUGE-L F above the threshold: the Self-Instruct
  rule, :data:`filters.near_duplicates.PAPER_THRESHOLD`, applied within the conversation).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict, Field
from pydantic.dataclasses import dataclass as validated_dataclass

from filters.echo import repeated_part
from filters.near_duplicates import PAPER_THRESHOLD
from filters.refusal import is_refusal
from filters.rouge import rouge_l_text, rouge_tokenize
from filters.types import Verdict

RULE_VERSION = "1"
REFUSAL, ECHO, LENGTH, NEAR_DUPLICATE = (
    "turn_refusal",
    "turn_echo",
    "turn_length",
    "turn_near_duplicate",
)
RULES = (REFUSAL, ECHO, LENGTH, NEAR_DUPLICATE)


@validated_dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class TurnRules:
    """Bounds of the turn rules.

    Attributes:
        min_user_words / max_user_words: bounds of a follow-up user turn.
        min_answer_words / max_answer_words: bounds of an assistant answer.
        near_duplicate_threshold: reject a turn whose ROUGE-L F against the previous one of the
            same role is strictly above this.
    """

    min_user_words: Annotated[int, Field(ge=1)] = 3
    max_user_words: Annotated[int, Field(ge=1)] = 150
    min_answer_words: Annotated[int, Field(ge=1)] = 3
    max_answer_words: Annotated[int, Field(ge=1)] = 1000
    near_duplicate_threshold: Annotated[float, Field(ge=0.0, le=1.0)] = PAPER_THRESHOLD


DEFAULT_RULES = TurnRules()
_PART_NAMES = {"instruction": "user turn", "input": "previous answer"}


def _reject(rule: str, reason: str) -> Verdict:
    return Verdict(False, rule, RULE_VERSION, reason=reason)


def check_turn(
    previous_user: str,
    previous_answer: str,
    user: str,
    answer: str,
    rules: TurnRules = DEFAULT_RULES,
) -> Verdict:
    """Judge one new (user, answer) turn pair against the turn pair before it.

    Returns:
        Accepted (rule ``"all"``) or the first failing rule in the order of :data:`RULES`.
    """
    if is_refusal(answer):
        return _reject(REFUSAL, "the assistant refused the follow-up")
    echoed = repeated_part(answer, instruction=user, input_text=previous_answer)
    if echoed is not None:
        names = " and ".join(_PART_NAMES[p] for p in echoed.split(" and "))
        return _reject(ECHO, f"the answer repeats the {names}")
    if repeated_part(user, instruction=previous_user, input_text="") is not None:
        return _reject(ECHO, "the user turn repeats the previous one")
    user_words, answer_words = len(rouge_tokenize(user)), len(rouge_tokenize(answer))
    if not rules.min_user_words <= user_words <= rules.max_user_words:
        return _reject(LENGTH, f"user turn of {user_words} words")
    if not rules.min_answer_words <= answer_words <= rules.max_answer_words:
        return _reject(LENGTH, f"answer of {answer_words} words")
    for role, new, old in (("user turn", user, previous_user), ("answer", answer, previous_answer)):
        similarity = rouge_l_text(new, old)
        if similarity > rules.near_duplicate_threshold:
            return Verdict(
                False,
                NEAR_DUPLICATE,
                RULE_VERSION,
                reason=f"{role} has ROUGE-L {similarity:.3f} against the previous one",
                similarity=similarity,
            )
    return Verdict(True, "all", RULE_VERSION)
