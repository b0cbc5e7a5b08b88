"""Completion parsers, one per template family; every rejected piece comes back with a reason.

Parsers never drop text silently: an instruction completion yields its instructions *and* a list
of :class:`ItemFailure` for the pieces it refused (junk, oversized items); a completion that cannot
be used at all raises :class:`~generators.errors.ParseError` with a stable ``reason``:

``backend_error``  the backend gave up on this prompt (its retry log is on the record)
``empty``          nothing but whitespace
``truncated``      cut by the token limit (the paper drops these: the last item may be half)
``not_yes_no``     the classification answer is neither yes nor no
``no_instances``   an instance completion held no usable example
``no_marker``      an input-first completion with neither an ``Example N`` nor an ``Output:`` line

Labels are anchored the way the paper's splitter anchors its list numbers (yizhongw/self-instruct
``bootstrap_instructions.py`` splits on a newline, digits, ``.`` and a space): only
at the start of a line, so a decimal such as ``37.5`` at a line start, ``Example 1`` inside prose or
``Output:`` mid-sentence is text, not structure. The instance parsers follow the authors'
``prepare_for_finetuning.py``; which of its checks live here and which in
``filters.heuristics.check_instances`` is listed in :func:`parse_instances_input_first`.

What a line and a label are, for text in any script: every line break ``str.splitlines`` knows
(``\r\n``, a lone ``\r``, NEL, U+2028...) is read as ``\n``; a label may be indented or spaced
with any space (no-break, ideographic) and end with ``:`` or the full-width ``：`` (the authors'
English-only patterns miss ``Output：``; deviation). Labels stay case-sensitive as the
authors' (a lower-case ``output:`` line is usually a YAML or code key), and a label in Markdown
(``**Output:**``) is not one (the authors' split would keep ``** 4`` as the answer).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from generators.errors import ParseError
from generators.types import Completion, Instance

# Any space within a line: tabs, no-break and ideographic spaces too (text is line-normalised
# first by `clean_text`, so "\n" is the only line break left).
_SP = r"[^\S\n]"
# A label's colon: ASCII or full-width (U+FF1A, what text in Chinese or Japanese writes).
_COLON = "[:\uff1a]"
# An item number at the start of the text or of a line, then a space or the line's end: "10. ",
# "11 . ", "12) ". The paper requires the space too, which is what keeps "37.5 C" one item.
_NUMBERED = re.compile(rf"(?:^|\n){_SP}*\d{{1,3}}{_SP}?[.)](?:{_SP}+|(?=\n|$))")
# Every other label counts only at the start of a line (after optional indentation). Labels are
# case-sensitive, as the authors' patterns: a lower-case "output:" line is a YAML or code key.
# Runs of spaces inside a label are possessive (``*+``), so "Output" followed by 100k spaces
# and no colon is one linear scan, not a quadratic backtrack.
_LINE_START = rf"(?:^|(?<=\n)){_SP}*"
_OUTPUT = re.compile(rf"{_LINE_START}Output{_SP}*+(?:\d+{_SP}*+)?{_COLON}")
_INPUT_PREFIX = re.compile(rf"^Input{_SP}*+(?:\d+{_SP}*+)?{_COLON}")
_INPUT = re.compile(rf"{_LINE_START}Input{_SP}*+(?:\d+{_SP}*+)?{_COLON}")
# "Example 2" alone on its line, or "Example 2." / "Example 2:" followed by the example itself;
# a bare "Example" (the paper's pattern allows no number) only alone on its line.
_EXAMPLE = re.compile(
    rf"{_LINE_START}Example(?:{_SP}?\d+{_SP}*+(?:[.]{_SP}*|{_COLON}{_SP}*|(?=\n|$))"
    rf"|{_SP}*+(?:(?:[.]|{_COLON}){_SP}*+)?(?=\n|$))"
)
_CLASS_LABEL = re.compile(rf"{_LINE_START}Class{_SP}*label{_SP}*{_COLON}", re.IGNORECASE)
# Every line break str.splitlines knows (CR LF, a lone CR, NEL, U+2028/2029, VT, FF, FS-RS).
_LINE_BREAK = re.compile("\r\n|[\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
EXCERPT_CHARS = 200


@dataclass(frozen=True)
class ItemFailure:
    """One refused piece of an otherwise parsed completion."""

    reason: str
    excerpt: str


@dataclass
class ParsedInstructions:
    """The instructions found in one completion, and the pieces refused."""

    instructions: list[str] = field(default_factory=list)
    failures: list[ItemFailure] = field(default_factory=list)


@dataclass
class ParsedInstances:
    """The instances found in one completion, and the pieces refused."""

    instances: list[Instance] = field(default_factory=list)
    failures: list[ItemFailure] = field(default_factory=list)


def excerpt(text: str) -> str:
    """Return the start of ``text``, short enough to store with a failure."""
    return text[:EXCERPT_CHARS]


def clean_text(text: str) -> str:
    """Make every line break ``\n``, then drop terminal escapes and control/unassigned characters.

    A lone ``\r`` (or NEL, U+2028...) ends a line as ``\n`` does (``str.splitlines``); dropped
    as a control character, it would glue a label line to the one before it.
    """
    return "".join(
        ch
        for ch in _ANSI_ESCAPE.sub("", _LINE_BREAK.sub("\n", text))
        if ch in "\n\t" or unicodedata.category(ch) not in {"Cc", "Cs", "Co", "Cn"}
    )


def _check_usable(completion: Completion, *, allow_truncated: bool = False) -> str:
    if completion.finish_reason == "error":
        raise ParseError("backend_error", "; ".join(completion.retry_log))
    text = clean_text(completion.text)
    if not text.strip():
        raise ParseError("empty", completion.text)
    if completion.finish_reason == "length" and not allow_truncated:
        raise ParseError("truncated", excerpt(text))
    return text


def parse_instructions(
    completion: Completion, *, max_item_chars: int = 1000, keep_truncated: bool = False
) -> ParsedInstructions:
    """Split an instruction-generation completion into new instructions.

    The completion continues a numbered list after ``N.``, so the text before the first number is
    the first new instruction. Each item has its whitespace collapsed and its first letter
    upper-cased (the paper's ``str.capitalize`` also lowercases the rest, which would mangle
    names and acronyms). An item number counts only at a line start and before a space or the
    line's end (as the paper's splitter, with ``)`` also accepted), so ``37.5`` opening a
    line stays text.

    Args:
        completion: the backend's answer to an instruction prompt.
        max_item_chars: items longer than this are refused as ``item_too_long``.
        keep_truncated: keep the complete items of a length-cut completion, refusing only its last
            (possibly half-written) item as ``truncated``, instead of refusing it whole.

    Returns:
        The instructions in order and the refused items.

    Raises:
        ParseError: ``backend_error``, ``empty``, ``truncated``, or ``no_instructions`` when no
            item survived.
    """
    text = _check_usable(completion, allow_truncated=keep_truncated)
    result = ParsedInstructions()
    items = _NUMBERED.split(text)
    if completion.finish_reason == "length":
        result.failures.append(ItemFailure("truncated", excerpt(items.pop())))
    for raw in items:
        item = re.sub(r"\s+", " ", raw).strip()
        if not item:
            continue
        if len(item) > max_item_chars:
            result.failures.append(ItemFailure("item_too_long", excerpt(item)))
        elif not any(ch.isalpha() for ch in item):
            result.failures.append(ItemFailure("no_text", excerpt(item)))
        else:
            result.instructions.append(item[0].upper() + item[1:])
    if not result.instructions:
        reasons = ",".join(sorted({f.reason for f in result.failures})) or "blank"
        raise ParseError("no_instructions", f"[{reasons}] {excerpt(text)}")
    return result


def parse_is_classification(completion: Completion) -> bool:
    """Read the yes/no answer of the classification-identification prompt.

    Args:
        completion: the backend's answer, e.g. ``" Yes"``.

    Returns:
        True for yes, False for no.

    Raises:
        ParseError: ``backend_error``, ``empty`` or ``not_yes_no``.
    """
    # A 3-token answer is often cut by the limit right after "Yes": that is still an answer.
    text = _check_usable(completion, allow_truncated=True)
    match = re.match(r"\W*(yes|no)\b", text.strip(), re.IGNORECASE)
    if match is None:
        raise ParseError("not_yes_no", excerpt(text))
    return match.group(1).lower() == "yes"


def _split_input_output(chunk: str) -> Instance:
    """The paper's rule: text before ``Output:`` is the input, after it the output."""
    if _OUTPUT.search(chunk):
        before, after = _OUTPUT.split(chunk, maxsplit=1)
    else:
        before, after = "", chunk
    # A second pair, or a second answer, run on: keep the first, as the authors' split()[1] does.
    after = _INPUT.split(after, maxsplit=1)[0]
    after = _OUTPUT.split(after, maxsplit=1)[0]
    return Instance(input=_INPUT_PREFIX.sub("", before.strip()).strip(), output=after.strip())


def parse_instances_input_first(
    completion: Completion, *, max_instances: int, max_chars: int = 5000
) -> ParsedInstances:
    """Parse an input-first completion (``Example k`` blocks of input then ``Output:``).

    The authors' ``prepare_for_finetuning.py`` (yizhongw/self-instruct) checks, and where each
    lives here:

    - no ``Example`` and no ``Output:`` marker gives no instance: ``no_marker`` (here);
    - text before ``Output:`` is the input, after it the output, cut at a run-on ``Input:`` or a
      second ``Output:`` (the authors keep ``split(...)[1]``), the
      ``Input:`` prefix removed (``parse_input_output``; here, labels anchored at line starts);
    - ``finish_reason == "length"`` drops the last instance, even when it is the only one
      (here: ``truncated``; a completion left with nothing raises ``truncated``);
    - output identical to input, empty output, input or output ending with ``:``
      (``filter_invalid_instances``): ``filters.heuristics.check_instances``;
    - same input with different outputs drops the task, exact copies are removed
      (``filter_duplicate_instances``): ``filters.heuristics.check_instances``;
    - at most 5 instances (here: ``max_instances``; the rest are refused as ``over_limit``, in
      order, where the authors sample at random);
    - the prompt/completion re-encoding and its de-duplication prepare GPT-3 fine-tuning files and
      do not apply to parsing (the export writes chat messages).

    Text before the first ``Example`` marker counts as an example only if it has an ``Output:``
    line; otherwise it is chatter, refused as ``preamble``.

    Args:
        completion: the backend's answer to an input-first instance prompt.
        max_instances: keep at most this many instances.
        max_chars: drop instances whose input plus output is longer than this.

    Returns:
        Up to ``max_instances`` instances with non-empty output, in order; refused pieces
        (``preamble``, ``empty_output``, ``instance_too_long``, ``over_limit``, a ``truncated``
        last example) as failures.

    Raises:
        ParseError: ``backend_error``, ``empty``, ``no_marker``, ``truncated`` (the only example
            was cut), or ``no_instances`` (its excerpt starts with the items' reasons).
    """
    # The stop sequence often cuts a long instance list: complete examples before it still count.
    text = _check_usable(completion, allow_truncated=True)
    parts = _EXAMPLE.split(text)
    if len(parts) == 1 and not _OUTPUT.search(text):
        raise ParseError("no_marker", excerpt(text))
    failures = []
    if len(parts) > 1 and not _OUTPUT.search(parts[0]):
        preamble = parts.pop(0)
        if preamble.strip():
            failures.append(ItemFailure("preamble", excerpt(preamble.strip())))
    chunks = [c for c in parts if c.strip()]
    failures += _pop_truncated(chunks, completion)
    instances = [_split_input_output(c) for c in chunks]
    return _bounded(instances, failures, text, max_instances, max_chars)


def parse_instances_output_first(
    completion: Completion, *, max_instances: int, max_chars: int = 5000
) -> ParsedInstances:
    """Parse an output-first completion (``Class label: L`` then the input for that label).

    Follows the authors' ``parse_instances_for_classification_task``: the first line after a
    label is the label, the rest the input; a length-cut completion loses its last instance;
    the remaining checks are those of :func:`parse_instances_input_first`. Unlike the authors',
    the input ends at a line-start ``Output:`` or ``Example N`` (the input-first format's
    labels, which this prompt never writes): SmolLM2-135M-Instruct ran on with ``Output: (a)
    Yes`` lines after a classification input, which the authors' parse keeps as input.

    Args:
        completion: the backend's answer to an output-first instance prompt.
        max_instances: keep at most this many instances.
        max_chars: drop instances whose input plus output is longer than this.

    Returns:
        Up to ``max_instances`` instances (output = the label) in order, and refused pieces
        (text before the first label as ``preamble``).

    Raises:
        ParseError: ``backend_error``, ``empty``, ``truncated`` (the only instance was cut), or
            ``no_instances``.
    """
    text = _check_usable(completion, allow_truncated=True)
    preamble, *chunks = _CLASS_LABEL.split(text)
    failures = [ItemFailure("preamble", excerpt(preamble.strip()))] if preamble.strip() else []
    failures += _pop_truncated(chunks, completion)
    instances = []
    for chunk in chunks:
        label, _, rest = chunk.strip().partition("\n")
        # The input-first format's labels never belong to an output-first input: a model that
        # drifts into it ("Output: (a) Yes" lines after the input) has run on; keep what came
        # before, as a run-on pair is cut in input-first examples.
        rest = _EXAMPLE.split(_OUTPUT.split(rest, maxsplit=1)[0], maxsplit=1)[0]
        instances.append(Instance(input=rest.strip(), output=label.strip()))
    return _bounded(instances, failures, text, max_instances, max_chars)


def _pop_truncated(chunks: list[str], completion: Completion) -> list[ItemFailure]:
    """Refuse the last example of a length-cut completion: it is half-written, even if alone."""
    if completion.finish_reason == "length" and chunks:
        return [ItemFailure("truncated", excerpt(chunks.pop().strip()))]
    return []


def _bounded(
    instances: list[Instance], failures: list[ItemFailure], text: str, limit: int, max_chars: int
) -> ParsedInstances:
    result = ParsedInstances(failures=failures)
    for instance in instances:
        if not instance.output:
            result.failures.append(ItemFailure("empty_output", excerpt(instance.input)))
        elif len(instance.input) + len(instance.output) > max_chars:
            result.failures.append(ItemFailure("instance_too_long", excerpt(instance.output)))
        elif len(result.instances) < limit:
            result.instances.append(instance)
        else:
            result.failures.append(ItemFailure("over_limit", excerpt(instance.output)))
    if not result.instances:
        reasons = sorted({f.reason for f in result.failures})
        if reasons == ["truncated"]:
            raise ParseError("truncated", result.failures[0].excerpt)
        raise ParseError("no_instances", f"[{','.join(reasons) or 'blank'}] {excerpt(text)}")
    return result
