"""A preference run's kept pairs as files TRL's ``DPOTrainer`` (and ``trainer --method dpo``) read.

Layout of the output directory::

    standard/train.jsonl            {"prompt", "chosen", "rejected", + ids, margin, length_only}
    standard/validation.jsonl
    conversational/train.jsonl      the same pairs as message lists (system message if set)
    conversational/validation.jsonl
    manifest.json                   run, judge, counts, and the sha256 of every file

Each file loads with ``datasets.load_dataset("json", data_files=...)`` and trains as it is.
The split is the dataset exports' stable hash of the prompt (:func:`split_of`), so every pair
of one prompt lands in the same split (no prompt is both trained and validated on).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from dataformats.jsonl import write_jsonl
from dataformats.preference import preference_record
from service.errors import InvalidInput
from service.export.examples import SPLITS, split_of
from service.export.writers import describe_file
from service.storage.db import Session
from service.storage.preference import ComparisonRow, read_comparisons
from service.storage.runs import get_run

FORMS = ("standard", "conversational")
PREFERENCE_MANIFEST = "manifest.json"


def prompt_of(row: ComparisonRow) -> str:
    """The user's prompt: the instruction, and its input after a blank line when there is one."""
    return f"{row.instruction}\n\n{row.input}" if row.input.strip() else row.instruction


def export_preference_pairs(
    session: Session,
    run_id: int,
    directory: Path,
    *,
    validation_ratio: float = 0.1,
    split_seed: int = 0,
    system: str | None = None,
    include_length_only: bool = True,
) -> dict[str, Any]:
    """Write the run's kept pairs in both forms and splits, and the manifest.

    Args:
        session: an open session (read only).
        run_id: a run of method ``preference``.
        directory: created if missing; files in it are replaced.
        validation_ratio: share of prompts in the validation split, in [0, 1).
        split_seed: salt of the split hash.
        system: a system message for the conversational form.
        include_length_only: keep pairs whose winner wins only by length (flagged either way).

    Returns:
        The manifest (also written as ``manifest.json``).

    Raises:
        NotFound: no such run.
        InvalidInput: the run is not a preference run, or ``validation_ratio`` is out of range.
    """
    run = get_run(session, run_id)
    if (run.config or {}).get("method") != "preference":
        raise InvalidInput(f"run {run_id} is not a preference run")
    if not 0 <= validation_ratio < 1:
        raise InvalidInput(f"validation_ratio {validation_ratio} is not in [0, 1)")
    kept = [
        r
        for r in read_comparisons(session, run_id, outcome="kept", accepted_only=True)
        if include_length_only or not r.length_only
    ]
    by_split: dict[str, list[ComparisonRow]] = {s: [] for s in SPLITS}
    for row in kept:
        split = split_of(prompt_of(row), seed=split_seed, validation_ratio=validation_ratio)
        by_split[split].append(row)
    files: dict[str, dict[str, Any]] = {}
    for form in FORMS:
        (directory / form).mkdir(parents=True, exist_ok=True)
        for split, rows in by_split.items():
            path = directory / form / f"{split}.jsonl"
            count = write_jsonl(path, (_record(r, form, system) for r in rows))
            files[f"{form}/{split}.jsonl"] = describe_file(path, rows=count)
    manifest = {
        "run_id": run_id,
        "judge_models": sorted({r.judge_model for r in kept}),
        "pairs": {s: len(rows) for s, rows in by_split.items()},
        "length_only_pairs": sum(r.length_only for r in kept),
        "include_length_only": include_length_only,
        "validation_ratio": validation_ratio,
        "split_seed": split_seed,
        "system": system,
        "files": files,
    }
    (directory / PREFERENCE_MANIFEST).write_bytes(
        orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    )
    return manifest


def _record(row: ComparisonRow, form: str, system: str | None) -> dict[str, Any]:
    chosen, rejected = (
        (row.response_1, row.response_2) if row.chosen == 1 else (row.response_2, row.response_1)
    )
    conversational = form == "conversational"
    return preference_record(
        prompt_of(row),
        chosen,
        rejected,
        conversational=conversational,
        system=system if conversational else None,
        comparison_id=row.id,
        task_id=row.task_id,
        margin=row.margin,
        length_only=row.length_only,
    )
