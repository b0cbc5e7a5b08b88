"""Training runs: which model was trained on which dataset version."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from service.storage.models import TrainingRun, utcnow


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
