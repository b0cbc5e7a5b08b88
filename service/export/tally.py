"""Running counts and score distributions of an export, in memory bounded by distinct values."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from service.export.examples import SPLITS, Example
from service.export.rules import latest_scores
from service.storage.candidates import TaskRow

# Scores are bucketed to this many decimals: the distribution keeps exact counts per bucket, so
# memory grows with the number of distinct values, not with the number of tasks.
SCORE_DECIMALS = 4


class Tally:
    """Everything the manifest counts, updated task by task."""

    def __init__(self) -> None:
        self.candidates = 0
        self.rejected: Counter[str] = Counter()
        self.decontaminated: Counter[str] = Counter()
        self.decontaminated_items: list[dict[str, Any]] = []
        self.tasks: Counter[str] = Counter()
        self.examples: Counter[str] = Counter()
        self.by_origin: Counter[str] = Counter()
        self.by_type: Counter[str] = Counter()
        self.scores: dict[str, Counter[float]] = defaultdict(Counter)
        self.scorer_versions: dict[str, set[str]] = defaultdict(set)
        self.unscored: Counter[str] = Counter()
        # Distinct runs and seed sets of exported tasks: few, so kept as sets.
        self.run_ids: set[int | None] = set()
        self.seed_set_ids: set[int] = set()

    def reject(self, reason: str) -> None:
        self.rejected[reason] += 1

    def decontaminate(
        self, task: TaskRow, eval_set: str, nearest: str | None, sim: float | None
    ) -> None:
        """Count a task dropped for matching an eval set, and remember which item it matched."""
        self.decontaminated[eval_set] += 1
        self.decontaminated_items.append(
            {"task_id": task.id, "eval_set": eval_set, "nearest_id": nearest, "similarity": sim}
        )

    def accept(self, task: TaskRow, split: str, examples: list[Example]) -> None:
        """Count an exported task, its examples and the scores that came with them."""
        self.tasks[split] += 1
        self.examples[split] += len(examples)
        self.by_origin[task.origin] += 1
        self.by_type[task.task_type] += 1
        self.run_ids.add(task.run_id)
        self.seed_set_ids.add(task.seed_set_id)
        if not task.scores:
            return
        # One score per key is the common case: only then is the newest-wins pass skipped.
        latest = task.scores if len(task.scores) == 1 else _newest(task)
        exported = {e.instance_id for e in examples}
        for instance_id, scorer, version, value in latest:
            if instance_id is not None and instance_id not in exported:
                continue
            self.scorer_versions[scorer].add(version)
            if value is None:
                self.unscored[scorer] += 1
            else:
                self.scores[scorer][round(value, SCORE_DECIMALS)] += 1

    def counts(self) -> dict[str, Any]:
        """The `counts` block of the manifest."""
        return {
            "tasks": sum(self.tasks.values()),
            "examples": sum(self.examples.values()),
            "by_split": {s: {"tasks": self.tasks[s], "examples": self.examples[s]} for s in SPLITS},
            "by_origin": dict(sorted(self.by_origin.items())),
            "by_task_type": dict(sorted(self.by_type.items())),
            "candidates": self.candidates,
            "rejected": {
                "total": sum(self.rejected.values()),
                "by_reason": dict(sorted(self.rejected.items())),
            },
            "decontaminated": {
                "total": sum(self.decontaminated.values()),
                "by_eval_set": dict(sorted(self.decontaminated.items())),
            },
        }

    def score_distributions(self) -> dict[str, Any]:
        """Per scorer: count, min, max, mean, quantiles and a 10-bin histogram of the scores."""
        return {
            scorer: _distribution(
                self.scores.get(scorer, Counter()),
                self.unscored[scorer],
                sorted(self.scorer_versions[scorer]),
            )
            for scorer in sorted(self.scorer_versions)
        }


def _newest(task: TaskRow) -> list[tuple[int | None, str, str, float | None]]:
    return [(k[0], k[1], *v) for k, v in latest_scores(task).items()]


def _quantile(items: list[tuple[float, int]], total: int, q: float) -> float:
    rank = q * (total - 1)
    seen = 0
    for value, count in items:
        seen += count
        if seen > rank:
            return value
    return items[-1][0]


def _distribution(values: Counter[float], missing: int, versions: list[str]) -> dict[str, Any]:
    total = sum(values.values())
    out: dict[str, Any] = {"versions": versions, "count": total, "missing": missing}
    if not total:
        return out
    items = sorted(values.items())
    low, high = items[0][0], items[-1][0]
    width = (high - low) / 10 or 1.0
    bins = [0] * 10
    for value, count in items:
        bins[min(int((value - low) / width), 9)] += count
    out |= {
        "min": low,
        "max": high,
        "mean": round(sum(v * c for v, c in items) / total, 6),
        "p10": _quantile(items, total, 0.1),
        "p50": _quantile(items, total, 0.5),
        "p90": _quantile(items, total, 0.9),
        "histogram": {"edges": [round(low + i * width, 6) for i in range(11)], "counts": bins},
    }
    return out
