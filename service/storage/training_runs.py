"""Training runs: which model was trained on which dataset version."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from service.errors import NotFound
from service.storage.models import Dataset, DatasetVersion, TrainingRun, utcnow


def add_training_run(
    session: Session,
    *,
    dataset_version_id: int,
    output_dir: str,
    base_model: str,
    base_model_hash: str | None,
    config: dict[str, Any],
    config_hash: str,
    metrics: dict[str, Any],
    manifest_sha256: str | None,
) -> int:
    """Record a finished (`completed`) training run; returns its id."""
    row = TrainingRun(
        dataset_version_id=dataset_version_id,
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
    """A training run and the dataset version (`dataset`@`dataset_version`) it used."""

    run: TrainingRun
    dataset: str
    dataset_version: int


def _with_version() -> Select[TrainingRun, str, int]:
    return (
        select(TrainingRun, Dataset.name, DatasetVersion.version)
        .join(DatasetVersion, DatasetVersion.id == TrainingRun.dataset_version_id)
        .join(Dataset, Dataset.id == DatasetVersion.dataset_id)
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
