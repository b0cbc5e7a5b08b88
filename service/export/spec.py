"""What a dataset version selects and how it is written: the export spec and its hash."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

import orjson
from pydantic import ConfigDict, Field, ValidationError, field_validator

from service.errors import InvalidInput
from service.statuses import TaskStatus
from service.storable import StorableModel

Format = Literal["messages", "alpaca", "parquet"]
TASK_TYPES = ("classification", "generation")
ALL_FORMATS: list[Format] = ["messages", "alpaca", "parquet"]
# Each listed name or id becomes a bound parameter of the selection query, and both drivers
# cap those (SQLite at 32766, psycopg at 65535): a longer list was a 500 there, so it is a
# 422 here. None ("all") selects any number.
MAX_LISTED = 1000


class ExportSpec(StorableModel):
    """The selection and layout of one dataset version.

    Sources: `runs` limits machine tasks to those runs, `seed_sets` limits every task to those
    seed sets (by name); None means "all". `include_seeds` adds the human seed tasks of the
    selected seed sets (or of the selected runs' seed sets, or of all seed sets).
    `min_scores` maps a scorer name to the lowest value kept: a task-level score below it drops
    the task, an instance-level score below it drops the instance; a machine task with no
    score by that scorer is dropped (seed tasks are human-written and carry no scores).
    Every value obeys the ``storable`` rule (:mod:`service.storable`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    runs: list[int] | None = Field(
        None, max_length=MAX_LISTED, description="Run ids whose machine tasks are included."
    )
    seed_sets: list[str] | None = Field(
        None, max_length=MAX_LISTED, description="Seed set names to include."
    )
    include_seeds: bool = Field(True, description="Include the human seed tasks themselves.")
    statuses: list[TaskStatus] = Field(
        default_factory=lambda: [TaskStatus.ACCEPTED],
        min_length=1,
        max_length=MAX_LISTED,
        description="Task statuses kept.",
    )
    min_scores: dict[str, float] = Field(
        default_factory=dict, max_length=MAX_LISTED, description="Scorer name -> lowest score kept."
    )
    eval_sets: list[str] = Field(
        default_factory=list,
        max_length=MAX_LISTED,
        description="Eval set names to decontaminate against.",
    )
    decontamination_threshold: float = Field(
        0.7, gt=0, le=1, description="ROUGE-L similarity to an eval item that drops a task."
    )
    validation_ratio: float = Field(0.1, ge=0, lt=1, description="Share of tasks in validation.")
    split_seed: int = Field(0, description="Salt of the stable split hash.")
    max_per_type: dict[str, int] = Field(
        default_factory=dict,
        description="Cap on tasks per type (classification, generation); the oldest are kept.",
    )
    formats: list[Format] = Field(
        default_factory=lambda: list(ALL_FORMATS),
        description="messages and/or alpaca JSONL; parquet adds a Parquet copy of each.",
    )

    @field_validator("max_per_type")
    @classmethod
    def _known_types(cls, value: dict[str, int]) -> dict[str, int]:
        unknown = set(value) - set(TASK_TYPES)
        if unknown:
            raise ValueError(f"unknown task types {sorted(unknown)}; use {list(TASK_TYPES)}")
        if any(v < 0 for v in value.values()):
            raise ValueError("caps must be >= 0")
        return value

    @field_validator("formats")
    @classmethod
    def _some_text_format(cls, value: list[Format]) -> list[Format]:
        if not {"messages", "alpaca"} & set(value):
            raise ValueError("formats needs messages or alpaca (parquet is a copy of those)")
        return sorted(set(value), key=ALL_FORMATS.index)

    def canonical(self) -> dict[str, object]:
        """The spec as plain JSON data, lists of names sorted so order does not matter."""
        data = self.model_dump(mode="json")
        for key in ("runs", "seed_sets"):
            if data[key] is not None:
                data[key] = sorted(set(data[key]))
        data["statuses"] = sorted(set(data["statuses"]))
        data["eval_sets"] = sorted(set(data["eval_sets"]))
        return data

    def spec_hash(self) -> str:
        """sha256 of the canonical spec (sorted keys, compact JSON)."""
        return hashlib.sha256(
            orjson.dumps(self.canonical(), option=orjson.OPT_SORT_KEYS)
        ).hexdigest()

    @classmethod
    def from_file(cls, path: Path) -> ExportSpec:
        """Read a spec from a JSON file (the CLI's `--spec FILE`).

        Raises:
            InvalidInput: the file is missing, not JSON, or not a valid spec.
        """
        try:
            return cls.model_validate_json(Path(path).read_bytes())
        except OSError as exc:
            raise InvalidInput(f"cannot read spec file {path}: {exc.strerror}") from None
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'spec'}: {e['msg']}" for e in exc.errors()
            )
            raise InvalidInput(f"invalid spec in {path}: {problems}") from None

    def text_formats(self) -> list[str]:
        return [f for f in ("messages", "alpaca") if f in self.formats]

    @property
    def writes_parquet(self) -> bool:
        return "parquet" in self.formats
