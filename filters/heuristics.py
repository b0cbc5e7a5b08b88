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
from typing import Annotated, Literal

import regex
from pydantic import ConfigDict, Field, PlainSerializer
from pydantic.dataclasses import dataclass as validated_dataclass

from filters.echo import near_copy_of_instruction, repeated_part
from filters.errors import ConfigError
from filters.list_numbers import leading_list_number
from filters.normalization import normalize_text, skeleton
from filters.rouge import has_unspaced_script, rouge_tokenize
from filters.types import Verdict

RULES_VERSION = "5"  # v2: per-script word count and start rules; v3: list-number, echo, colon
# and conflicting-output rules added; v4: list numbers of any form, near-copy echoes; v5: colon
# rule sees full-width colons, list-number rule v3
# Bump a rule's version whenever its behaviour changes, so stored verdicts stay explainable.
RULE_VERSIONS: dict[str, str] = {
    "empty_instruction": "1",
    "instruction_length": "2",
    "unsuitable_keyword": "1",
    "blocked_prefix": "1",
    "starts_with_punctuation": "1",
    "starts_with_non_ascii": "1",
    # v2: any numbered label in any script ("Sentence 2:", "Q2:", "问题2："), Roman numerals,
    # dashes and colons (v1: a few English labels and "2." "(2)" "#2" forms).
    # v3: Chinese numeral items ("二、"), bracketed letters/Roman numerals ("(b)"), circled
    # numbers ("②", which NFKC makes a bare "2").
    "starts_with_list_number": "3",
    "empty_output": "1",
    "instance_too_long": "1",
    # v2: also case/punctuation/label-insensitive (v1: normalised and casefolded only).
    "output_equals_input": "2",
    # v2: also the instruction said over again ("Name a fruit. Name a fruit."; v1: once).
    "output_repeats_instruction": "2",
    "output_near_copies_instruction": "1",
    # v2: any colon NFKC folds to ":" (full-width "："), in any script (v1: ASCII ":" only).
    "ends_with_colon": "2",
    "duplicate_instance": "1",
    "label_not_in_labels": "1",
    "conflicting_outputs": "1",
}
INSTRUCTION_RULES = (
    "empty_instruction",
    "instruction_length",
    "unsuitable_keyword",
    "blocked_prefix",
    "starts_with_punctuation",
    "starts_with_non_ascii",
    "starts_with_list_number",
)
INSTANCE_RULES = (
    "empty_output",
    "instance_too_long",
    "output_equals_input",
    "output_repeats_instruction",
    "output_near_copies_instruction",
    "ends_with_colon",
    "duplicate_instance",
    "label_not_in_labels",
    "conflicting_outputs",
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
# An input that is nothing but a field label, e.g. "Sentence:" (see _is_incomplete).
_BARE_LABEL = re.compile(r"\w[\w \t'-]{0,40}:")


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
        word_count: How ``instruction_length`` counts words: ``"script_aware"`` (default;
            a character of Chinese, Japanese, Thai... counts as a word) or ``"whitespace"``
            (the paper's split, which sees a Chinese sentence as one word). The rule's
            version says which (:data:`WORD_COUNT_VERSIONS`).
        start_scripts: Unicode scripts (``regex`` names, e.g. ``"Han"``, ``"Cyrillic"``)
            whose letters and digits may start an instruction besides ASCII, for data in
            other languages; empty keeps the paper's ASCII-only rule (version "1", else "2").
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
    word_count: Literal["script_aware", "whitespace"] = "script_aware"
    start_scripts: tuple[Annotated[str, Field(min_length=1)], ...] = ()

    def __post_init__(self) -> None:
        """Check what pydantic cannot check field by field.

        Raises:
            ConfigError: On unknown rule names, inconsistent bounds or an unknown script
                name (surfaced by pydantic as a ``ValidationError``).
        """
        unknown = set(self.enabled_rules) - set(RULE_VERSIONS)
        if unknown:
            raise ConfigError(
                f"unknown heuristic rules: {sorted(unknown)}; known: {sorted(RULE_VERSIONS)}"
            )
        if self.max_words <= self.min_words:
            raise ConfigError(f"bad word bounds: ({self.min_words}, {self.max_words}]")
        _start_pattern(self.start_scripts)  # raises on an unknown script name

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


@functools.lru_cache(maxsize=64)
def _keyword_pattern(keywords: tuple[str, ...]) -> re.Pattern[str]:
    """The compiled keyword rule for a keyword list (cached: configs are rebuilt per run)."""
    words = "|".join(re.escape(skeleton(k)) for k in keywords) or r"(?!x)x"
    return re.compile(rf"\b({words})\b")


@functools.lru_cache(maxsize=64)
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
    match = _keyword_pattern(config.keywords).search(key)
    if match:
        failures.append(("unsuitable_keyword", f"mentions {match.group(1)!r}"))
    for prefix in config.blocked_prefixes:
        if key.startswith(skeleton(prefix)):
            failures.append(("blocked_prefix", f"starts with {prefix!r}"))
            break
    list_number = leading_list_number(text)  # it normalises itself, seeing circled numbers first
    if list_number:
        failures.append(("starts_with_list_number", f"starts with list number {list_number!r}"))
    if norm[0] in string.punctuation:
        failures.append(("starts_with_punctuation", f"starts with {norm[0]!r}"))
    start = _start_pattern(config.start_scripts)
    allowed = start is not None and start.match(norm) is not None
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


def _is_incomplete(inp: str, out: str) -> bool:
    """The paper's colon rule: a text ending with ``:`` is usually a cut-off generation.

    Applied to the output as the paper does; to the input only when it is nothing but a field
    label (``"Sentence:"``), because human-written seed inputs legitimately end with a colon
    (seed_task_15, an analogy ``"... Change :"``; seed_task_36, a fill-in list of labels).
    Any colon NFKC folds to ``:`` counts (v2; v1: only the ASCII ``:``).
    """
    # NFKC first: the full-width "：" of Chinese or Japanese text (and "﹕") is a colon too.
    return (
        normalize_text(out).endswith(":") or _BARE_LABEL.fullmatch(normalize_text(inp)) is not None
    )


def _instance_failure(
    inp: str,
    out: str,
    *,
    instruction: str | None,
    seen: set[tuple[str, str]],
    labels: set[str] | None,
    config: HeuristicConfig,
) -> tuple[str, str] | None:
    """The first enabled rule an instance fails, or None."""
    key = (_canonical(inp), _canonical(out))
    seen_before = key in seen
    seen.add(key)
    repeated = repeated_part(out, instruction=instruction, input_text=inp)
    near = None
    if instruction and repeated is None:
        near = near_copy_of_instruction(out, instruction=instruction)
    checks = (
        ("empty_output", not key[1], "output is empty"),
        (
            "instance_too_long",
            len(inp) > config.max_input_chars or len(out) > config.max_output_chars,
            f"input {len(inp)} chars (max {config.max_input_chars}), "
            f"output {len(out)} chars (max {config.max_output_chars})",
        ),
        ("output_equals_input", repeated == "input", "output repeats the input"),
        (
            "output_repeats_instruction",
            repeated is not None and repeated != "input",
            f"output merely repeats the {repeated}",
        ),
        (
            "output_near_copies_instruction",
            near is not None,
            (
                f"output is a near-copy of the instruction (shares {near.output_share:.2f} of "
                f"its tokens and {near.instruction_share:.2f} of the instruction's, from its start)"
            )
            if near
            else "",
        ),
        ("ends_with_colon", _is_incomplete(inp, out), "ends with ':' (cut-off generation)"),
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


def _conflicting_input(instances: list[tuple[str, str]], passed: list[bool]) -> str | None:
    """A non-empty input (canonical) that valid instances answer differently, or None.

    The paper's ``filter_duplicate_instances`` then drops the whole task.
    """
    outputs: dict[str, str] = {}
    for (inp, out), ok in zip(instances, passed, strict=True):
        key = _canonical(inp)
        if not ok or not key:
            continue
        if outputs.setdefault(key, _canonical(out)) != _canonical(out):
            return key
    return None


def check_instances(
    instances: list[tuple[str, str]],
    *,
    is_classification: bool,
    labels: list[str] | None = None,
    instruction: str | None = None,
    config: HeuristicConfig = DEFAULT,
) -> list[Verdict]:
    """Apply the enabled instance rules to a task's (input, output) pairs.

    The rules of the paper's ``prepare_for_finetuning.py`` (``filter_invalid_instances``: output
    equal to input, empty output, ending with ``:``; ``filter_duplicate_instances``: a task
    whose instances give different outputs for the same input is dropped whole, copies are
    removed), the length bounds, and the echo rules of :mod:`filters.echo`. Its truncation rule
    needs the finish reason and lives in ``generators.parsing``.

    Args:
        instances: ``(input, output)`` pairs in order.
        is_classification: Whether the task is a classification task.
        labels: The allowed outputs of a classification task (compared normalised and
            casefolded); the label rule applies only when given for a classification task.
        instruction: The task's instruction; without it ``output_repeats_instruction`` cannot
            fire.
        config: Rule settings.

    Returns:
        One verdict per instance, in order; a later copy of an instance is the duplicate. When
        ``conflicting_outputs`` fires, every instance that passed the other rules is rejected by
        it.
    """
    allowed = {_canonical(x) for x in labels} if is_classification and labels else None
    seen: set[tuple[str, str]] = set()
    failures = [
        _instance_failure(
            inp, out, instruction=instruction, seen=seen, labels=allowed, config=config
        )
        for inp, out in instances
    ]
    conflict = None
    if "conflicting_outputs" in config.enabled_rules:
        conflict = _conflicting_input(instances, [f is None for f in failures])
    verdicts = []
    for failure in failures:
        if failure is None and conflict is not None:
            failure = ("conflicting_outputs", f"input {conflict[:80]!r} has different outputs")
        if failure:
            verdicts.append(_reject(*failure))
        else:
            verdicts.append(Verdict(accepted=True, rule="all", rule_version=RULES_VERSION))
    return verdicts
