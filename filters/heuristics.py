"""The Self-Instruct paper's heuristic rules for instructions and their instances.

Every rule is named, versioned and switchable through :class:`HeuristicConfig`. Checks run
on a normalised form of the text (invisible characters removed, NFKC, Latin look-alikes
folded for keyword matching), so zero-width characters or Cyrillic letters do not let a
blocked instruction through.
"""

from __future__ import annotations

import functools
import re
import string
from typing import Annotated

from pydantic import ConfigDict, Field, PlainSerializer
from pydantic.dataclasses import dataclass as validated_dataclass

from filters.errors import ConfigError
from filters.normalization import normalize_text, skeleton
from filters.types import Verdict

RULES_VERSION = "1"
# Bump a rule's version whenever its behaviour changes, so stored verdicts stay explainable.
RULE_VERSIONS: dict[str, str] = {
    "empty_instruction": "1",
    "instruction_length": "1",
    "unsuitable_keyword": "1",
    "blocked_prefix": "1",
    "starts_with_punctuation": "1",
    "starts_with_non_ascii": "1",
    "empty_output": "1",
    "instance_too_long": "1",
    "output_equals_input": "1",
    "duplicate_instance": "1",
    "label_not_in_labels": "1",
}
INSTRUCTION_RULES = (
    "empty_instruction",
    "instruction_length",
    "unsuitable_keyword",
    "blocked_prefix",
    "starts_with_punctuation",
    "starts_with_non_ascii",
)
INSTANCE_RULES = (
    "empty_output",
    "instance_too_long",
    "output_equals_input",
    "duplicate_instance",
    "label_not_in_labels",
)
# The paper's list (self_instruct/bootstrap_instructions.py).
PAPER_KEYWORDS = (
    "image", "images", "graph", "graphs", "picture", "pictures", "file", "files",
    "map", "maps", "draw", "plot", "go to",
)  # fmt: skip
# Further media words a text-only model cannot act on; opt in through the config.
MEDIA_KEYWORDS = ("video", "videos", "audio", "music", "flowchart", "diagram", "diagrams")


@validated_dataclass(config=ConfigDict(extra="forbid"))
class HeuristicConfig:
    """Thresholds and switches of the heuristic rules (defaults: the paper's).

    The single home of these settings: a run's configuration embeds this type as it is, so
    every field here is a per-run setting. pydantic validates every construction; a bad value
    raises ``pydantic.ValidationError`` (a ``ValueError``).

    Attributes:
        enabled_rules: Names of the rules to apply (see ``INSTRUCTION_RULES`` and
            ``INSTANCE_RULES``).
        min_words: An instruction needs strictly more words than this.
        max_words: An instruction may have at most this many words.
        keywords: Words/phrases matched on word boundaries, case-insensitively.
        blocked_prefixes: Case-insensitive prefixes that reject an instruction.
        max_input_chars: Longest accepted instance input.
        max_output_chars: Longest accepted instance output.
    """

    # Sorted when written as JSON, so a run config's hash does not depend on set order.
    enabled_rules: Annotated[
        frozenset[str], PlainSerializer(sorted, return_type=list[str], when_used="json")
    ] = frozenset(INSTRUCTION_RULES + INSTANCE_RULES)
    min_words: Annotated[int, Field(ge=0)] = 3
    max_words: Annotated[int, Field(ge=1)] = 150
    # Non-empty: an empty keyword or prefix would match, and reject, every instruction.
    keywords: tuple[Annotated[str, Field(min_length=1)], ...] = PAPER_KEYWORDS
    blocked_prefixes: tuple[Annotated[str, Field(min_length=1)], ...] = ("Write a program",)
    max_input_chars: Annotated[int, Field(ge=1)] = 5000
    max_output_chars: Annotated[int, Field(ge=1)] = 10000

    def __post_init__(self) -> None:
        """Check what pydantic cannot check field by field.

        Raises:
            ConfigError: On unknown rule names or inconsistent bounds (surfaced by pydantic as
                a ``ValidationError``).
        """
        unknown = set(self.enabled_rules) - set(RULE_VERSIONS)
        if unknown:
            raise ConfigError(
                f"unknown heuristic rules: {sorted(unknown)}; known: {sorted(RULE_VERSIONS)}"
            )
        if self.max_words <= self.min_words:
            raise ConfigError(f"bad word bounds: ({self.min_words}, {self.max_words}]")


@functools.lru_cache(maxsize=64)
def _keyword_pattern(keywords: tuple[str, ...]) -> re.Pattern[str]:
    """The compiled keyword rule for a keyword list (cached: configs are rebuilt per run)."""
    words = "|".join(re.escape(skeleton(k)) for k in keywords) or r"(?!x)x"
    return re.compile(rf"\b({words})\b")


DEFAULT = HeuristicConfig()


def _reject(rule: str, reason: str) -> Verdict:
    return Verdict(accepted=False, rule=rule, rule_version=RULE_VERSIONS[rule], reason=reason)


def _instruction_failures(text: str, config: HeuristicConfig) -> list[tuple[str, str]]:
    """All (rule, reason) failures of an instruction, in rule order (lazy would save little)."""
    norm = normalize_text(text)
    key = skeleton(text)
    failures = []
    if not norm:
        failures.append(("empty_instruction", "instruction is empty or only invisible/space"))
        return failures
    n_words = len(norm.split())
    if not config.min_words < n_words <= config.max_words:
        failures.append(
            (
                "instruction_length",
                f"{n_words} words; needs more than {config.min_words} "
                f"and at most {config.max_words}",
            )
        )
    match = _keyword_pattern(config.keywords).search(key)
    if match:
        failures.append(("unsuitable_keyword", f"mentions {match.group(1)!r}"))
    for prefix in config.blocked_prefixes:
        if key.startswith(skeleton(prefix)):
            failures.append(("blocked_prefix", f"starts with {prefix!r}"))
            break
    if norm[0] in string.punctuation:
        failures.append(("starts_with_punctuation", f"starts with {norm[0]!r}"))
    if not norm[0].isascii():
        failures.append(("starts_with_non_ascii", f"starts with non-ASCII {norm[0]!r}"))
    return failures


def check_instruction(text: str, config: HeuristicConfig = DEFAULT) -> Verdict:
    """Apply the enabled instruction rules; the first failing one decides.

    Args:
        text: The instruction.
        config: Rule settings.

    Returns:
        A rejection naming the first failing rule, or an accepted verdict with rule "all".
    """
    for rule, reason in _instruction_failures(text, config):
        if rule in config.enabled_rules:
            return _reject(rule, reason)
    return Verdict(accepted=True, rule="all", rule_version=RULES_VERSION)


def _canonical(text: str) -> str:
    """Comparison key for instance texts: normalised and casefolded."""
    return normalize_text(text).casefold()


def _instance_failure(
    inp: str,
    out: str,
    seen: set[tuple[str, str]],
    labels: set[str] | None,
    config: HeuristicConfig,
) -> tuple[str, str] | None:
    """The first enabled rule an instance fails, or None."""
    key = (_canonical(inp), _canonical(out))
    seen_before = key in seen
    seen.add(key)
    checks = (
        ("empty_output", not key[1], "output is empty"),
        (
            "instance_too_long",
            len(inp) > config.max_input_chars or len(out) > config.max_output_chars,
            f"input {len(inp)} chars (max {config.max_input_chars}), "
            f"output {len(out)} chars (max {config.max_output_chars})",
        ),
        ("output_equals_input", bool(key[0]) and key[0] == key[1], "output repeats the input"),
        ("duplicate_instance", seen_before, "same (input, output) as an earlier instance"),
        (
            "label_not_in_labels",
            labels is not None and key[1] not in labels,
            f"output {out.strip()[:80]!r} is not one of the task's labels",
        ),
    )
    for rule, failed, reason in checks:
        if failed and rule in config.enabled_rules:
            return rule, reason
    return None


def check_instances(
    instances: list[tuple[str, str]],
    *,
    is_classification: bool,
    labels: list[str] | None = None,
    config: HeuristicConfig = DEFAULT,
) -> list[Verdict]:
    """Apply the enabled instance rules to a task's (input, output) pairs.

    Args:
        instances: ``(input, output)`` pairs in order.
        is_classification: Whether the task is a classification task.
        labels: The allowed outputs of a classification task (compared normalised and
            casefolded); the label rule applies only when given for a classification task.
        config: Rule settings.

    Returns:
        One verdict per instance, in order; a later copy of an instance is the duplicate.
    """
    allowed = {_canonical(x) for x in labels} if is_classification and labels else None
    seen: set[tuple[str, str]] = set()
    verdicts = []
    for inp, out in instances:
        failure = _instance_failure(inp, out, seen, allowed, config)
        if failure:
            verdicts.append(_reject(*failure))
        else:
            verdicts.append(Verdict(accepted=True, rule="all", rule_version=RULES_VERSION))
    return verdicts
