"""Decontamination: flag generated tasks that near-duplicate a held-out evaluation item.

The machinery is the near-duplicate index (exact token-overlap candidates, ROUGE-L decision):
one index per field of the eval set (instructions, instance inputs, instance outputs and
instruction+input prompts), so a verdict says which field matched, which eval item and how
closely.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from dataformats.jsonl import JsonlError, read_jsonl
from filters.errors import EvalSetError
from filters.near_duplicates import NearDuplicateIndex
from filters.rouge import rouge_tokenize
from filters.types import Verdict

RULE_NAME = "decontamination"
# 1: rouge-score's [a-z0-9]+ tokens. 2: filters.rouge tokens version 2, the near-duplicate
# index's own (so eval items in any script are compared, not only their Latin letters).
# 3: tokens version 3 (Myanmar and Tai Tham vowel signs no longer dropped).
RULE_VERSION = "3"


@dataclass
class EvalItem:
    """One held-out evaluation item.

    Attributes:
        id: The item's id in its eval set.
        instruction: The instruction.
        inputs: Instance inputs (may be empty strings).
        outputs: Instance outputs.
    """

    id: str
    instruction: str
    inputs: list[str]
    outputs: list[str]


def _parse_item(obj: object, line: int) -> EvalItem:
    """Validate one decoded JSON line."""
    if not isinstance(obj, dict):
        raise EvalSetError("expected a JSON object", line=line)
    item_id, instruction = obj.get("id"), obj.get("instruction")
    if not isinstance(item_id, str | int) or isinstance(item_id, bool) or item_id == "":
        raise EvalSetError("missing or invalid 'id'", line=line)
    if not isinstance(instruction, str) or not instruction.strip():
        raise EvalSetError("missing or empty 'instruction'", line=line)
    instances = obj.get("instances", [])
    if not isinstance(instances, list):
        raise EvalSetError("'instances' must be a list", line=line)
    inputs, outputs = [], []
    for j, inst in enumerate(instances):
        if not isinstance(inst, dict):
            raise EvalSetError(f"instance {j} is not an object", line=line)
        inp, out = inst.get("input", ""), inst.get("output", "")
        if not isinstance(inp, str) or not isinstance(out, str):
            raise EvalSetError(f"instance {j}: input/output must be strings", line=line)
        inputs.append(inp)
        outputs.append(out)
    return EvalItem(str(item_id), instruction, inputs, outputs)


def parse_eval_items(rows: Iterable[tuple[int, object]]) -> list[EvalItem]:
    """Validate parsed eval records: ``id``, ``instruction`` and optional ``instances``.

    Args:
        rows: ``(line_number, record)`` pairs, e.g. from `dataformats.jsonl.iter_jsonl`.

    Returns:
        The items in order.

    Raises:
        EvalSetError: A missing or invalid field, or a repeated id; names the line.
    """
    items: list[EvalItem] = []
    seen: set[str] = set()
    for number, obj in rows:
        item = _parse_item(obj, number)
        if item.id in seen:
            raise EvalSetError(f"duplicate id {item.id!r}", line=number)
        seen.add(item.id)
        items.append(item)
    return items


def load_eval_jsonl(source: str | Path | bytes) -> list[EvalItem]:
    """Read an eval set from a JSONL file or its bytes (the project's one JSONL reader).

    Args:
        source: A file path, or the file's bytes (e.g. an upload).

    Returns:
        The items in file order; blank lines are skipped (and counted).

    Raises:
        EvalSetError: On a line that is not UTF-8, not a JSON object, lacks a field or repeats
            an id; names the line. Lines follow `dataformats.jsonl` (split on "\\n" only).
    """
    try:
        return parse_eval_items(read_jsonl(source))
    except JsonlError as exc:
        raise EvalSetError(exc.problem, line=exc.line) from None


def _prompt(instruction: str, inp: str) -> str:
    return f"{instruction}\n{inp}" if inp.strip() else instruction


class Decontaminator:
    """Flags tasks and instances that near-duplicate an item of one held-out eval set.

    Args:
        items: The eval set's items.
        threshold: ROUGE-L F-measure above which a field counts as contaminated.
        eval_set_name: Name used in reasons (e.g. ``"user_oriented@1"``).
        min_instance_tokens: Inputs/outputs shorter than this (in ROUGE tokens: words, or
            characters of Chinese, Japanese, Thai...) are not compared: short answers like
            "Positive" match by chance, not by leakage.
    """

    def __init__(
        self,
        items: list[EvalItem],
        *,
        threshold: float = 0.7,
        eval_set_name: str = "",
        min_instance_tokens: int = 5,
    ) -> None:
        """Index the eval set; see the class docstring."""
        self.eval_set_name = eval_set_name
        self.threshold = threshold
        self.min_instance_tokens = min_instance_tokens
        self._owner: dict[str, str] = {}
        self._indexes = {
            field: NearDuplicateIndex(threshold=threshold)
            for field in ("instruction", "input", "output", "prompt")
        }
        entries: dict[str, list[tuple[str, str, None]]] = {f: [] for f in self._indexes}
        for item in items:
            self._entry(entries["instruction"], item.id, "", item.instruction)
            for j, (inp, out) in enumerate(zip(item.inputs, item.outputs, strict=False)):
                if self._long_enough(inp):
                    self._entry(entries["input"], item.id, f"#{j}", inp)
                    self._entry(entries["prompt"], item.id, f"#{j}", _prompt(item.instruction, inp))
                if self._long_enough(out):
                    self._entry(entries["output"], item.id, f"#{j}", out)
        for field, index in self._indexes.items():
            index.add_many(entries[field])

    def _entry(
        self, out: list[tuple[str, str, None]], item_id: str, suffix: str, text: str
    ) -> None:
        key = f"{item_id}{suffix}"
        self._owner[key] = item_id
        out.append((key, text, None))

    def _long_enough(self, text: str) -> bool:
        return len(rouge_tokenize(text)) >= self.min_instance_tokens

    def _match(self, field: str, text: str) -> tuple[str | None, float]:
        key, sim = self._indexes[field].nearest(text)
        return (self._owner[key] if key is not None else None), sim

    def check_instance(self, instruction: str, inp: str, out: str) -> Verdict:
        """Check one instance (with its task's instruction) against the eval set.

        Args:
            instruction: The task's instruction (for the instruction+input prompt).
            inp: The instance input.
            out: The instance output.

        Returns:
            A rejection naming the field, eval item and similarity, or an acceptance.
        """
        probes = []
        if self._long_enough(inp):
            probes += [("input", inp), ("prompt", _prompt(instruction, inp))]
        if self._long_enough(out):
            probes.append(("output", out))
        return self._decide([(field, field, text) for field, text in probes])

    def check_task(self, instruction: str, instances: list[tuple[str, str]]) -> Verdict:
        """Check a task's instruction and every instance against the eval set.

        Args:
            instruction: The task's instruction.
            instances: Its ``(input, output)`` pairs.

        Returns:
            The strongest contamination found (rule "decontamination", ``nearest_id`` = eval
            item id, reason naming the eval set and field), or an acceptance carrying the
            closest similarity seen.
        """
        probes = [("instruction", "instruction", instruction)]
        for j, (inp, out) in enumerate(instances):
            if self._long_enough(inp):
                probes.append(("input", f"instance {j} input", inp))
                prompt = _prompt(instruction, inp)
                probes.append(("prompt", f"instance {j} instruction+input", prompt))
            if self._long_enough(out):
                probes.append(("output", f"instance {j} output", out))
        return self._decide(probes)

    def _decide(self, probes: list[tuple[str, str, str]]) -> Verdict:
        """Pick the probe with the highest similarity and turn it into a verdict."""
        best: tuple[float, str, str | None] = (0.0, "", None)
        for field, label, text in probes:
            item_id, sim = self._match(field, text)
            if item_id is not None and sim > best[0]:
                best = (sim, label, item_id)
        sim, label, item_id = best
        if item_id is not None and sim > self.threshold:
            name = self.eval_set_name or "eval set"
            return Verdict(
                accepted=False,
                rule=RULE_NAME,
                rule_version=RULE_VERSION,
                reason=f"{label} matches {name} item {item_id!r} (ROUGE-L {sim:.3f} > "
                f"{self.threshold})",
                nearest_id=item_id,
                similarity=sim,
            )
        return Verdict(
            True, RULE_NAME, RULE_VERSION, "", item_id, sim if item_id is not None else None
        )
