"""Which examples an epoch sees, in which rows and order: task-type mixing, packing, shuffling.

An epoch's plan is a pure function of (seed, epoch), which is what lets a checkpoint resume
mid-epoch by position alone.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from trainer.packing import pack_rows
from trainer.tokenization import TokenizedExample


@dataclass(frozen=True)
class EpochPlan:
    """The rows of one epoch, as indices into the split's examples, in training order."""

    rows: list[list[int]]
    sampled: list[int]

    def micro_batches(self, batch_size: int) -> list[list[list[int]]]:
        """The rows cut into micro-batches of `batch_size` rows (the last may be short)."""
        return [self.rows[i : i + batch_size] for i in range(0, len(self.rows), batch_size)]


def sample_examples(
    examples: Sequence[TokenizedExample], weights: dict[str, float] | None, rng: random.Random
) -> list[int]:
    """Draw an epoch's examples: all of them shuffled, or by task-type weight with replacement.

    With weights, each task type's expected share of the epoch is its weight over the sum of
    weights of the types present (types not named weigh 1.0); the epoch keeps the split's size.
    """
    indices = list(range(len(examples)))
    if not weights:
        rng.shuffle(indices)
        return indices
    counts = Counter(e.task_type for e in examples)
    type_weight = {t: weights.get(t, 1.0) for t in counts}
    per_example = [type_weight[e.task_type] / counts[e.task_type] for e in examples]
    if sum(per_example) <= 0:
        raise ValueError("every task type present has weight 0")
    return rng.choices(indices, weights=per_example, k=len(examples))


def plan_epoch(
    examples: Sequence[TokenizedExample],
    *,
    seed: int,
    epoch: int,
    max_length: int,
    packing: bool,
    weights: dict[str, float] | None,
) -> EpochPlan:
    """Build one epoch's rows: sample, pack (or one example per row), shuffle rows."""
    rng = random.Random(f"instructforge-trainer:{seed}:{epoch}")
    sampled = sample_examples(examples, weights, rng)
    if packing:
        chosen = [examples[i] for i in sampled]
        rows = [[sampled[j] for j in row] for row in pack_rows(chosen, max_length)]
    else:
        rows = [[i] for i in sampled]
    rng.shuffle(rows)
    return EpochPlan(rows=rows, sampled=sampled)


def mixing_report(examples: Sequence[TokenizedExample], plan: EpochPlan) -> dict[str, Any]:
    """Sampled share and supervised tokens per task type, for the metrics log."""
    counts = Counter(examples[i].task_type for i in plan.sampled)
    supervised: Counter[str] = Counter()
    for i in plan.sampled:
        supervised[examples[i].task_type] += examples[i].n_supervised
    total = sum(counts.values()) or 1
    return {
        task_type: {
            "examples": counts[task_type],
            "share": counts[task_type] / total,
            "supervised_tokens": supervised[task_type],
        }
        for task_type in sorted(counts)
    }
