"""Reading a Self-Instruct seed-task file (JSONL) into pool tasks."""

from __future__ import annotations

from pathlib import Path

from dataformats.jsonl import JsonlError, iter_jsonl
from generators.errors import ConfigError
from generators.types import Instance, PoolTask


def read_seed_tasks(path: Path) -> list[PoolTask]:
    """Read the paper's ``seed_tasks.jsonl`` format.

    Each line holds ``id``, ``instruction``, ``is_classification`` and ``instances`` (a list of
    ``{"input", "output"}``).

    Args:
        path: the JSONL file.

    Returns:
        One seed task per non-blank line, in file order (lines as `dataformats.jsonl` reads
        them).

    Raises:
        ConfigError: a line is not a JSON object or lacks a field (its line number is named).
    """
    tasks = []
    try:
        for number, row in iter_jsonl(Path(path)):
            try:
                tasks.append(
                    PoolTask(
                        id=str(row["id"]),
                        instruction=row["instruction"],
                        is_classification=bool(row["is_classification"]),
                        origin="seed",
                        instances=[Instance(i["input"], i["output"]) for i in row["instances"]],
                    )
                )
            except (KeyError, TypeError) as exc:
                raise ConfigError(f"{path}:{number}: bad seed task: {exc!r}") from None
    except JsonlError as exc:
        raise ConfigError(f"{path}:{exc.line}: bad seed task: {exc.problem}") from None
    return tasks
