"""Where a dataset version's tasks came from: their runs, seed sets, models and templates.

Each function returns plain dicts in a fixed order; the export writes them into the manifest
as they are, so their keys and order are part of a version's bytes.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, union
from sqlalchemy.orm import Session

from service.storage.models import DatasetItem, Generation, Run, SeedSet, Task

_MODEL = ("backend", "model_name", "model_hash", "engine", "engine_version")
_TEMPLATE = ("template_name", "template_version", "template_sha256")


def generation_sources(
    session: Session, version_id: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Distinct models and templates of the generations behind a version's tasks, sorted.

    One pass: each of a task's three generation links joins generations by primary key, and
    only the distinct (model, template) combinations come back. The caller's session sees
    the items inserted in its own (uncommitted) transaction.
    """
    columns = [getattr(Generation, c) for c in (*_MODEL, *_TEMPLATE)]
    branches = [
        select(*columns)
        .select_from(DatasetItem)
        .join(Task, Task.id == DatasetItem.task_id)
        .join(Generation, Generation.id == link)
        .where(DatasetItem.dataset_version_id == version_id)
        for link in (
            Task.generation_id,
            Task.classification_generation_id,
            Task.instances_generation_id,
        )
    ]
    rows = session.execute(union(*branches)).all()
    models = sorted({tuple(r[: len(_MODEL)]) for r in rows})
    templates = sorted({tuple(r[len(_MODEL) :]) for r in rows})
    return (
        [dict(zip(_MODEL, m, strict=True)) for m in models],
        [dict(zip(_TEMPLATE, t, strict=True)) for t in templates],
    )


def runs_lineage(session: Session, run_ids: set[int | None]) -> list[dict[str, Any]]:
    """id, kind, seed set, config and its hash, policy version of each run (None ignored)."""
    ids = sorted(i for i in run_ids if i is not None)
    rows = session.scalars(select(Run).where(Run.id.in_(ids)).order_by(Run.id))
    return [
        {
            "id": run.id,
            "kind": run.kind,
            "seed_set_id": run.seed_set_id,
            "config_hash": run.config_hash,
            "policy_version": run.policy_version,
            "config": run.config,
        }
        for run in rows
    ]


def seed_sets_lineage(session: Session, seed_set_ids: set[int]) -> list[dict[str, Any]]:
    """id, name and content hash of each seed set, by id."""
    rows = session.execute(
        select(SeedSet.id, SeedSet.name, SeedSet.content_hash)
        .where(SeedSet.id.in_(sorted(seed_set_ids)))
        .order_by(SeedSet.id)
    )
    return [{"id": i, "name": n, "content_hash": h} for i, n, h in rows]
