"""Stored sentence embeddings of pool tasks (table ``task_embeddings``), keyed by model id.

Written by a run's claim and commit (the semantic rule's pool), read by the next claim and by
the run report's embedding diversity.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.storage.db import insert_or_ignore
from service.storage.models import Task, TaskEmbedding

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
    return {task_id: _vector(vector, dimension) for task_id, dimension, vector in rows}


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


def load_run_embeddings(session: Session, run_id: int) -> tuple[str | None, dict[int, np.ndarray]]:
    """The stored vectors of run ``run_id``'s accepted tasks, for its report.

    A task may have vectors of more than one model (the run's config changed between
    claims); the model holding the most of the run's tasks is read (ties: the first name).

    Returns:
        (model id or None when no accepted task has a vector, task id -> vector).
    """
    accepted = select(Task.id).where(Task.run_id == run_id, Task.status == "accepted")
    count = func.count()
    model = session.execute(
        select(TaskEmbedding.model, count)
        .where(TaskEmbedding.task_id.in_(accepted))
        .group_by(TaskEmbedding.model)
        .order_by(count.desc(), TaskEmbedding.model)
        .limit(1)
    ).first()
    if model is None:
        return None, {}
    rows = session.execute(
        select(TaskEmbedding.task_id, TaskEmbedding.dimension, TaskEmbedding.vector).where(
            TaskEmbedding.model == model[0], TaskEmbedding.task_id.in_(accepted)
        )
    )
    return model[0], {tid: _vector(data, dim) for tid, dim, data in rows}


def _vector(data: bytes, dimension: int) -> np.ndarray:
    return np.frombuffer(data, dtype=_DTYPE, count=dimension).astype(np.float32)
