"""Stored sentence embeddings of pool tasks (table ``task_embeddings``), keyed by model id."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.storage.db import insert_or_ignore
from service.storage.models import TaskEmbedding

_DTYPE = np.dtype("<f4")  # little-endian float32, whatever the host's byte order


def load_task_embeddings(
    session: Session, model: str, task_ids: Sequence[int]
) -> dict[int, np.ndarray]:
    """The stored vectors of ``task_ids`` under ``model``; tasks without one are left out.

    Returns:
        task id -> float32 vector of shape ``(dimension,)``.
    """
    if not task_ids:
        return {}
    rows = session.execute(
        select(TaskEmbedding.task_id, TaskEmbedding.dimension, TaskEmbedding.vector).where(
            TaskEmbedding.model == model, TaskEmbedding.task_id.in_(task_ids)
        )
    )
    return {
        task_id: np.frombuffer(vector, dtype=_DTYPE, count=dimension).astype(np.float32)
        for task_id, dimension, vector in rows
    }


def store_task_embeddings(
    session: Session, model: str, vectors: Iterable[tuple[int, np.ndarray]]
) -> int:
    """Store each task's vector under ``model``; a (task, model) already stored is kept.

    Two workers claiming runs of one seed set may embed its seeds at once: the second insert
    of a pair is ignored, not an error (the vectors are the same model's).

    Returns:
        How many rows this call inserted.
    """
    inserted = 0
    for task_id, vector in vectors:
        flat = np.ascontiguousarray(vector, dtype=_DTYPE).reshape(-1)
        inserted += insert_or_ignore(
            session,
            TaskEmbedding,
            {"task_id": task_id, "model": model, "dimension": flat.size, "vector": flat.tobytes()},
            unique=["task_id", "model"],
        )
    return inserted
