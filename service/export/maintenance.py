"""Clean-up after a hard kill: versions left `building` and their temporary directories."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from sqlalchemy import select

from service.storage.datasets import mark_failed
from service.storage.models import Dataset, DatasetVersion


def fail_interrupted_versions(database: Any, *, datasets_dir: Path) -> list[int]:
    """Mark every `building` version failed and delete leftover `.tmp-*` directories.

    Call it at start-up of the only process that builds versions (a version still building in
    another live process would be failed too).

    Returns:
        The ids of the versions marked failed.
    """
    with database.transaction() as session:
        rows = session.execute(
            select(DatasetVersion.id, Dataset.name)
            .join(Dataset, Dataset.id == DatasetVersion.dataset_id)
            .where(DatasetVersion.status == "building")
        ).all()
        for version_id, _ in rows:
            mark_failed(session, version_id, "interrupted: the process building it stopped")
    for name in {name for _, name in rows}:
        for tmp in (Path(datasets_dir) / name).glob(".tmp-v*"):
            shutil.rmtree(tmp, ignore_errors=True)
    return [version_id for version_id, _ in rows]
