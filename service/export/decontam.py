"""Decontamination of an export against registered eval sets (filters/ does the matching)."""

from __future__ import annotations

from typing import Any

from filters.decontamination import RULE_NAME, RULE_VERSION, Decontaminator
from filters.types import Verdict
from service.storage.candidates import InstanceRow, TaskRow
from service.storage.datasets import get_eval_set, load_eval_items
from service.storage.db import Session


class EvalSetGuard:
    """Every eval set a spec names, indexed once, checked task by task."""

    def __init__(self, session: Session, names: list[str], *, threshold: float) -> None:
        """Load and index the eval sets.

        Raises:
            NotFound: an eval set does not exist.
        """
        self.threshold = threshold
        self.checkers: list[tuple[str, Decontaminator]] = []
        self.sets: list[dict[str, Any]] = []
        for name in sorted(set(names)):
            eval_set = get_eval_set(session, name)
            items = load_eval_items(session, eval_set.id)
            self.checkers.append(
                (name, Decontaminator(items, threshold=threshold, eval_set_name=name))
            )
            self.sets.append(
                {"name": name, "content_hash": eval_set.content_hash, "items": len(items)}
            )

    def check(self, task: TaskRow, instances: list[InstanceRow]) -> tuple[str, Verdict] | None:
        """The first eval set the task matches and the verdict, or None when it is clean.

        A multi-turn task is checked on its instances and on each user/assistant exchange.
        """
        if not self.checkers:
            return None
        pairs = [(i.input, i.output) for i in instances]
        turns = task.turns or []
        pairs += [
            (str(turns[k]["content"]), str(turns[k + 1]["content"]))
            for k in range(len(turns) - 1)
            if turns[k]["role"] == "user" and turns[k + 1]["role"] == "assistant"
        ]
        for name, checker in self.checkers:
            verdict = checker.check_task(task.instruction, pairs)
            if not verdict.accepted:
                return name, verdict
        return None

    def describe(self, dropped: list[dict[str, Any]]) -> dict[str, Any]:
        """The decontamination block of the lineage."""
        return {
            "rule": RULE_NAME,
            "rule_version": RULE_VERSION,
            "threshold": self.threshold,
            "eval_sets": self.sets,
            "dropped": dropped,
        }
