"""Training runs: which model was trained on which dataset version (sft) or on which
preference run's pairs (dpo)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from service.errors import NotFound
from service.storage.models import Dataset, DatasetVersion, Run, TrainingRun, utcnow


def add_training_run(
    session: Session,
    *,
    dataset_version_id: int | None,
    output_dir: str,
    base_model: str,
    base_model_hash: str | None,
    config: dict[str, Any],
    config_hash: str,
    metrics: dict[str, Any],
    manifest_sha256: str | None,
    method: str = "sft",
    preference_run_id: int | None = None,
) -> int:
    """Record a finished (`completed`) training run; returns its id.

    An sft run names its ``dataset_version_id``; a dpo run its ``preference_run_id`` (the run
    whose exported pairs it trained on) and no dataset version. A preference run that is not
    in this database (pairs exported elsewhere) is stored as None.
    """
    if preference_run_id is not None and session.get(Run, preference_run_id) is None:
        preference_run_id = None
    row = TrainingRun(
        dataset_version_id=dataset_version_id,
        method=method,
        preference_run_id=preference_run_id,
        output_dir=output_dir,
        base_model=base_model,
        base_model_hash=base_model_hash,
        config=config,
        config_hash=config_hash,
        status="completed",
        metrics=metrics,
        manifest_sha256=manifest_sha256,
        finished_at=utcnow(),
    )
    session.add(row)
    session.flush()
    return row.id


@dataclass(frozen=True)
class TrainingRunRow:
    """A training run and the dataset version (`dataset`@`dataset_version`) it used; both
    None for a dpo run (its pairs come from ``run.preference_run_id``)."""

    run: TrainingRun
    dataset: str | None
    dataset_version: int | None


def _with_version() -> Select[TrainingRun, str, int]:
    # Outer joins: a dpo run has no dataset version, so name and version may be None.
    return (
        select(TrainingRun, Dataset.name, DatasetVersion.version)
        .outerjoin(DatasetVersion, DatasetVersion.id == TrainingRun.dataset_version_id)
        .outerjoin(Dataset, Dataset.id == DatasetVersion.dataset_id)
    )


def list_training_runs(session: Session, *, limit: int = 200) -> list[TrainingRunRow]:
    """The newest `limit` training runs, newest first."""
    rows = session.execute(_with_version().order_by(TrainingRun.id.desc()).limit(limit))
    return [TrainingRunRow(run, name, version) for run, name, version in rows]


def get_training_run(session: Session, run_id: int) -> TrainingRunRow:
    """Raises NotFound when there is no training run `run_id`."""
    row = session.execute(_with_version().where(TrainingRun.id == run_id)).first()
    if row is None:
        raise NotFound(f"no training run {run_id}")
    run, name, version = row
    return TrainingRunRow(run, name, version)
