"""Training runs: the record linking a trained model to the dataset version it learnt from."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from service.errors import NotFound
from service.storage.models import Dataset, DatasetVersion, TrainingRun


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
