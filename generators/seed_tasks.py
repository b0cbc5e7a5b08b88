"""Reading a Self-Instruct seed-task file (JSONL) into pool tasks."""

from __future__ import annotations

import json
from pathlib import Path

from generators.errors import ConfigError
from generators.types import Instance, PoolTask


def read_seed_tasks(path: Path) -> list[PoolTask]:
    """Read the paper's ``seed_tasks.jsonl`` format.

    Each line holds ``id``, ``instruction``, ``is_classification`` and ``instances`` (a list of
    ``{"input", "output"}``).

    Args:
        path: the JSONL file.

    Returns:
        One seed task per non-blank line, in file order.

    Raises:
        ConfigError: a line is not valid JSON or lacks a field (its line number is named).
    """
    tasks = []
    with Path(path).open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                tasks.append(
                    PoolTask(
                        id=str(row["id"]),
                        instruction=row["instruction"],
                        is_classification=bool(row["is_classification"]),
                        origin="seed",
                        instances=[Instance(i["input"], i["output"]) for i in row["instances"]],
                    )
                )
            except (ValueError, KeyError, TypeError) as exc:
                raise ConfigError(f"{path}:{number}: bad seed task: {exc}") from exc
    return tasks
