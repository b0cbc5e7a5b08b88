"""A version's manifest: its spec, counts, score distributions, lineage and file hashes."""

from __future__ import annotations

from importlib import metadata
from typing import Any

import pyarrow as pa
from sqlalchemy import select, union
from sqlalchemy.orm import Session

from service.storage.models import DatasetItem, EvalSet, Generation, Run, SeedSet, Task

# Bumped whenever the bytes written for the same rows change (layout, JSON shape, Parquet options).
EXPORT_FORMAT_VERSION = "1"


def package_version() -> str:
    try:
        return metadata.version("instructforge")
    except metadata.PackageNotFoundError:  # running from a checkout that is not installed
        return "0+unknown"


_MODEL = ("backend", "model_name", "model_hash", "engine", "engine_version")
_TEMPLATE = ("template_name", "template_version", "template_sha256")


def _generations(
    session: Session, version_id: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Distinct models and templates of the generations behind the version's tasks.

    One pass: each of a task's three generation links joins generations by primary key, and
    only the distinct (model, template) combinations come back.
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


def _runs(session: Session, run_ids: set[int | None]) -> list[dict[str, Any]]:
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


def _seed_sets(session: Session, seed_set_ids: set[int]) -> list[dict[str, Any]]:
    rows = session.execute(
        select(SeedSet.id, SeedSet.name, SeedSet.content_hash)
        .where(SeedSet.id.in_(sorted(seed_set_ids)))
        .order_by(SeedSet.id)
    )
    return [{"id": i, "name": n, "content_hash": h} for i, n, h in rows]


def lineage(
    session: Session,
    *,
    version_id: int,
    run_ids: set[int | None],
    seed_set_ids: set[int],
    scorers: dict[str, Any],
    decontamination: dict[str, Any],
) -> dict[str, Any]:
    """Where the version's tasks came from.

    Args:
        session: The export's session; it sees the items inserted in its own transaction.
        version_id: The dataset version (models and templates are read back from its items).
        run_ids: Runs of the exported tasks (None for seeds).
        seed_set_ids: Seed sets of the exported tasks.
        scorers: scorer -> versions seen on exported items.
        decontamination: the eval sets checked, threshold, rule and version.
    """
    models, templates = _generations(session, version_id)
    return {
        "runs": _runs(session, run_ids),
        "seed_sets": _seed_sets(session, seed_set_ids),
        "models": models,
        "templates": templates,
        "scorers": scorers,
        "decontamination": decontamination,
        "exporter": {
            "instructforge": package_version(),
            "export_format": EXPORT_FORMAT_VERSION,
            "pyarrow": pa.__version__,
        },
    }


def eval_set_lineage(session: Session, names: list[str]) -> list[dict[str, Any]]:
    rows = session.execute(
        select(EvalSet.name, EvalSet.content_hash, EvalSet.item_count)
        .where(EvalSet.name.in_(names))
        .order_by(EvalSet.name)
    )
    return [{"name": n, "content_hash": h, "items": c} for n, h, c in rows]


def build_manifest(
    *,
    dataset: str,
    version: int,
    spec: dict[str, Any],
    spec_hash: str,
    content_hash: str,
    counts: dict[str, Any],
    score_distributions: dict[str, Any],
    lineage: dict[str, Any],
    files: dict[str, dict[str, Any]],
    created_at: str,
) -> dict[str, Any]:
    """Assemble manifest.json (the only file that may carry wall-clock time)."""
    return {
        "dataset": dataset,
        "version": version,
        "content_hash": content_hash,
        "spec": spec,
        "spec_hash": spec_hash,
        "counts": counts,
        "score_distributions": score_distributions,
        "lineage": lineage,
        "created_by": f"instructforge {package_version()}",
        "created_at": created_at,
        "files": files,
    }
