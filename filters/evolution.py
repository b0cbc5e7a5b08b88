"""Evol-Instruct's elimination step: drop an evolved task that failed to evolve.

Xu et al. (2023), *WizardLM*, §3.3 name four failures; their released code skipped the step, so
it is written out here as rules with names and versions like every other filter:

- ``evol_no_new_information``: the evolved task adds (almost) no word the parent lacked. The
  paper asks ChatGPT whether the two are equal; a word-set difference is the model-free,
  reproducible version (an in-breadth task that reuses only the parent's words adds nothing
  either).
- ``evol_copies_prompt``: the evolved task copies the evolving prompt's own wording
  (``#Rewritten Prompt#``, "given prompt", ...), the paper's third case.
- ``evol_answer_refusal`` / ``evol_answer_too_short``: the model cannot answer it. The paper's
  rule is "the response contains *sorry* and is shorter than 80 words"; here the project's
  refusal detector (:mod:`filters.refusal`) decides refusals and a word floor the length.

The fourth case, a near-duplicate, is the run's own near-duplicate rule
(:mod:`filters.near_duplicates`), applied by the caller as for any task.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import ConfigDict, Field
from pydantic.dataclasses import dataclass as validated_dataclass

from filters.refusal import is_refusal
from filters.rouge import rouge_tokenize
from filters.types import Verdict

RULE_VERSION = "1"
NO_NEW_INFORMATION = "evol_no_new_information"
COPIES_PROMPT = "evol_copies_prompt"
ANSWER_REFUSAL = "evol_answer_refusal"
ANSWER_TOO_SHORT = "evol_answer_too_short"
RULES = (NO_NEW_INFORMATION, COPIES_PROMPT, ANSWER_REFUSAL, ANSWER_TOO_SHORT)

# The evolving prompts' own labels (generators/templates/evol_*.v1.txt), in any case or spacing.
_PROMPT_WORDING = re.compile(
    r"#\s*(?:the\s+)?(?:given|rewritten|created)\s+prompt\s*#"
    r"|\b(?:given|rewritten|created)\s+prompt\b"
    r"|\bprompt\s+(?:rewriter|creator)\b",
    re.IGNORECASE,
)


@validated_dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class EliminationConfig:
    """Thresholds of the elimination rules (one run setting each).

    Attributes:
        min_new_words: an evolved task must hold at least this many distinct words (ROUGE
            tokens, :func:`filters.rouge.rouge_tokenize`) that its parent does not.
        min_answer_words: an answer with fewer words than this cannot be a real answer.
    """

    min_new_words: Annotated[int, Field(ge=0, le=1000)] = 2
    min_answer_words: Annotated[int, Field(ge=0, le=10_000)] = 3


DEFAULT = EliminationConfig()


def _reject(rule: str, reason: str) -> Verdict:
    return Verdict(False, rule, RULE_VERSION, reason=reason)


def check_evolved(parent: str, evolved: str, config: EliminationConfig = DEFAULT) -> Verdict:
    """Judge an evolved task against its parent (before it is answered).

    Args:
        parent: the parent task as the evolving prompt showed it.
        evolved: the parsed evolved task.
        config: the thresholds.

    Returns:
        Accepted (rule ``"all"``) or the first failing rule: ``evol_copies_prompt``, then
        ``evol_no_new_information``.
    """
    copied = _PROMPT_WORDING.search(evolved)
    if copied:
        return _reject(COPIES_PROMPT, f"copies the evolving prompt's wording {copied.group(0)!r}")
    new = set(rouge_tokenize(evolved)) - set(rouge_tokenize(parent))
    if len(new) < config.min_new_words:
        return _reject(
            NO_NEW_INFORMATION,
            f"{len(new)} new words against the parent (at least {config.min_new_words})",
        )
    return Verdict(True, "all", RULE_VERSION)


def check_answer(answer: str, config: EliminationConfig = DEFAULT) -> Verdict:
    """Judge the model's answer to an evolved task: a refusal or a stub means it cannot answer.

    Returns:
        Accepted (rule ``"all"``), ``evol_answer_refusal`` or ``evol_answer_too_short``.
    """
    if is_refusal(answer):
        return _reject(ANSWER_REFUSAL, "the model refused the evolved task")
    words = len(rouge_tokenize(answer))
    if words < config.min_answer_words:
        return _reject(
            ANSWER_TOO_SHORT, f"answer of {words} words (at least {config.min_answer_words})"
        )
    return Verdict(True, "all", RULE_VERSION)
