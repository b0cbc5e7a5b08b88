"""The Self-Instruct paper's heuristic rules for instructions and their instances.

Every rule is named, versioned and switchable through :class:`HeuristicConfig`. Checks run
on a normalised form of the text (invisible characters removed, NFKC, Latin look-alikes
folded for keyword matching), so zero-width characters or Cyrillic letters do not let a
blocked instruction through.
"""

from __future__ import annotations

import hashlib
import json
import re
import string
from dataclasses import asdict, dataclass, field
from typing import Literal

import regex

from filters.errors import ConfigError
from filters.normalization import normalize_text, skeleton
from filters.rouge import has_unspaced_script, rouge_tokenize
from filters.types import Verdict

RULES_VERSION = "2"
# Bump a rule's version whenever its behaviour changes, so stored verdicts stay explainable.
RULE_VERSIONS: dict[str, str] = {
    "empty_instruction": "1",
    "instruction_length": "2",
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
# Versions of the two rules whose definition follows a language setting of the config.
# instruction_length: "1" counts whitespace-separated words (the paper's ``len(split())``);
# "2" counts them too, except that a chunk holding a script written without spaces counts
# its ROUGE tokens (one per Chinese, Japanese, Thai... character), so a Chinese sentence is
# not one word. Both agree on text in scripts written with spaces.
WORD_COUNT_VERSIONS = {"whitespace": "1", "script_aware": "2"}
# starts_with_non_ascii: "1" rejects any non-ASCII first character (the paper); "2" also
# accepts a letter or digit of the scripts listed in ``HeuristicConfig.start_scripts``.
START_VERSIONS = {False: "1", True: "2"}
# Further media words a text-only model cannot act on; opt in through the config.
MEDIA_KEYWORDS = ("video", "videos", "audio", "music", "flowchart", "diagram", "diagrams")


@dataclass
class HeuristicConfig:
    """Thresholds and switches of the heuristic rules (defaults: the paper's).

    Attributes:
        enabled_rules: Names of the rules to apply (see ``INSTRUCTION_RULES`` and
            ``INSTANCE_RULES``).
        min_words: An instruction needs strictly more words than this.
        max_words: An instruction may have at most this many words.
        keywords: Words/phrases matched on word boundaries, case-insensitively.
        blocked_prefixes: Case-insensitive prefixes that reject an instruction.
        max_input_chars: Longest accepted instance input.
        max_output_chars: Longest accepted instance output.
        word_count: How ``instruction_length`` counts words: ``"script_aware"`` (default;
            a character of Chinese, Japanese, Thai... counts as a word) or ``"whitespace"``
            (the paper's split, which sees a Chinese sentence as one word). The rule's
            version says which (:data:`WORD_COUNT_VERSIONS`).
        start_scripts: Unicode scripts (``regex`` names, e.g. ``"Han"``, ``"Cyrillic"``)
            whose letters and digits may start an instruction besides ASCII, for data in
            other languages; empty keeps the paper's ASCII-only rule (version "1", else "2").
    """

    enabled_rules: frozenset[str] = frozenset(INSTRUCTION_RULES + INSTANCE_RULES)
    min_words: int = 3
    max_words: int = 150
    keywords: tuple[str, ...] = PAPER_KEYWORDS
    blocked_prefixes: tuple[str, ...] = ("Write a program",)
    max_input_chars: int = 5000
    max_output_chars: int = 10000
    word_count: Literal["script_aware", "whitespace"] = "script_aware"
    start_scripts: tuple[str, ...] = ()
    _keyword_re: re.Pattern[str] = field(init=False, repr=False, compare=False)
    _start_re: regex.Pattern[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Validate the settings and compile the keyword pattern once.

        Raises:
            ConfigError: On unknown rule names, inconsistent bounds, an unknown word count
                or an unknown script name.
        """
        unknown = set(self.enabled_rules) - set(RULE_VERSIONS)
        if unknown:
            raise ConfigError(f"unknown heuristic rules: {sorted(unknown)}")
        if self.min_words < 0 or self.max_words <= self.min_words:
            raise ConfigError(f"bad word bounds: ({self.min_words}, {self.max_words}]")
        words = "|".join(re.escape(skeleton(k)) for k in self.keywords) or r"(?!x)x"
        self._keyword_re = re.compile(rf"\b({words})\b")
        if self.word_count not in WORD_COUNT_VERSIONS:
            raise ConfigError(f"word_count must be one of {sorted(WORD_COUNT_VERSIONS)}")
        self._start_re = _start_pattern(self.start_scripts)

    def rule_version(self, rule: str) -> str:
        """The version of a rule as this config defines it.

        Args:
            rule: A rule name from ``RULE_VERSIONS``.

        Returns:
            The version string to store with a verdict of that rule.
        """
        if rule == "instruction_length":
            return WORD_COUNT_VERSIONS[self.word_count]
        if rule == "starts_with_non_ascii":
            return START_VERSIONS[bool(self.start_scripts)]
        return RULE_VERSIONS[rule]

    def fingerprint(self) -> str:
        """sha256 of the settings, to store next to verdicts made with them.

        Returns:
            Hex digest of the canonical JSON of the public fields.
        """
        data = {k: v for k, v in asdict(self).items() if not k.startswith("_")}
        data["enabled_rules"] = sorted(data["enabled_rules"])
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def _start_pattern(scripts: tuple[str, ...]) -> regex.Pattern[str] | None:
    """Letters and digits of ``scripts`` (Script_Extensions), or None for none.

    Raises:
        ConfigError: On a script name Unicode does not know.
    """
    if not scripts:
        return None
    try:
        props = "".join(rf"\p{{scx={s}}}" for s in scripts)
        return regex.compile(rf"(?V1)[[{props}]&&[\p{{L}}\p{{N}}]]")
    except regex.error as exc:
        raise ConfigError(f"unknown script in start_scripts {list(scripts)}: {exc}") from exc


DEFAULT = HeuristicConfig()


def _reject(rule: str, reason: str, config: HeuristicConfig = DEFAULT) -> Verdict:
    version = config.rule_version(rule)
    return Verdict(accepted=False, rule=rule, rule_version=version, reason=reason)


def _word_count(norm: str, config: HeuristicConfig) -> int:
    """Words of a normalised instruction, counted as ``config.word_count`` says."""
    chunks = norm.split()
    if config.word_count == "whitespace":
        return len(chunks)
    return sum(max(1, len(rouge_tokenize(c))) if has_unspaced_script(c) else 1 for c in chunks)


def _instruction_failures(text: str, config: HeuristicConfig) -> list[tuple[str, str]]:
    """All (rule, reason) failures of an instruction, in rule order (lazy would save little)."""
    norm = normalize_text(text)
    key = skeleton(text)
    failures = []
    if not norm:
        failures.append(("empty_instruction", "instruction is empty or only invisible/space"))
        return failures
    n_words = _word_count(norm, config)
    if not config.min_words < n_words <= config.max_words:
        failures.append(
            (
                "instruction_length",
                f"{n_words} words; needs more than {config.min_words} "
                f"and at most {config.max_words}",
            )
        )
    match = config._keyword_re.search(key)
    if match:
        failures.append(("unsuitable_keyword", f"mentions {match.group(1)!r}"))
    for prefix in config.blocked_prefixes:
        if key.startswith(skeleton(prefix)):
            failures.append(("blocked_prefix", f"starts with {prefix!r}"))
            break
    if norm[0] in string.punctuation:
        failures.append(("starts_with_punctuation", f"starts with {norm[0]!r}"))
    allowed = config._start_re is not None and config._start_re.match(norm) is not None
    if not norm[0].isascii() and not allowed:
        also = f" (allowed: ASCII, {', '.join(config.start_scripts)})" * bool(config.start_scripts)
        failures.append(("starts_with_non_ascii", f"starts with non-ASCII {norm[0]!r}{also}"))
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
            return _reject(rule, reason, config)
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
