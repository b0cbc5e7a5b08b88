"""The per-task rules of an export: score minimums and per-type caps, over TaskRow."""

from __future__ import annotations

from dataclasses import dataclass

from service.storage.candidates import InstanceRow, TaskRow


@dataclass(frozen=True, slots=True)
class ScoreDecision:
    """The instances a task keeps after the score minimums, or why it is dropped."""

    kept: list[InstanceRow]
    reason: str | None = None


def latest_scores(task: TaskRow) -> dict[tuple[int | None, str], tuple[str, float | None]]:
    """(instance id or None, scorer) -> (version, value) of the newest score of each key."""
    latest: dict[tuple[int | None, str], tuple[str, float | None]] = {}
    for instance_id, scorer, version, value in task.scores:  # oldest first: later ones win
        latest[(instance_id, scorer)] = (version, value)
    return latest


def _passes(value: float | None, minimum: float) -> bool:
    return value is not None and value >= minimum


def apply_min_scores(task: TaskRow, min_scores: dict[str, float]) -> ScoreDecision:
    """Keep the instances whose scores meet every minimum.

    A task-level score below a minimum drops the task. An instance-level score below it drops
    the instance; once a scorer scored any instance of a task, an unscored instance is dropped
    too. A machine task with no score at all by a required scorer is dropped; seed tasks are
    human-written and exempt from missing scores (not from low ones).

    Returns:
        The kept instances, or no instances and a reason such as `min_score:judge`.
    """
    if not task.instances:
        return ScoreDecision([], "no_accepted_instances")
    if not min_scores:
        return ScoreDecision(task.instances)
    latest = latest_scores(task)
    kept = task.instances
    for scorer, minimum in sorted(min_scores.items()):
        if (None, scorer) in latest:
            if not _passes(latest[(None, scorer)][1], minimum):
                return ScoreDecision([], f"min_score:{scorer}")
            continue
        if not any(key[1] == scorer for key in latest):
            if task.origin == "seed":
                continue
            return ScoreDecision([], f"missing_score:{scorer}")
        kept = [i for i in kept if _passes(latest.get((i.id, scorer), ("", None))[1], minimum)]
        if not kept:
            return ScoreDecision([], f"min_score:{scorer}")
    return ScoreDecision(kept)


class TypeCaps:
    """Per-task-type caps: the first tasks in id order (the oldest) are kept.

    Keeping the oldest means a later export over a grown database keeps the same tasks.
    """

    def __init__(self, caps: dict[str, int]) -> None:
        self.caps = dict(caps)
        self.taken: dict[str, int] = {}

    def admit(self, task_type: str) -> bool:
        """Count the task against its type's cap; False when the cap is already full."""
        cap = self.caps.get(task_type)
        taken = self.taken.get(task_type, 0)
        if cap is not None and taken >= cap:
            return False
        self.taken[task_type] = taken + 1
        return True
