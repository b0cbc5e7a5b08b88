"""Leases on jobs (runs and dataset versions): the claim query, renewal, release.

A job row carries `status`, `lease_owner`, `lease_expires_at` and `heartbeat_at`. A worker
claims one with a single statement that also takes back jobs whose lease expired (their worker
died), as procrastinate's claim query does; it renews the lease from a heartbeat and every
write it makes to the job is guarded by `lease_owner`, so a worker that lost its lease can
change nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.orm import Session

from service.statuses import RunStatus
from service.storage.db import changed_rows
from service.storage.models import utcnow


def expired_or_queued(model: Any, now: datetime, running: str) -> ColumnElement[bool]:
    """Jobs of `model` to claim at `now`: queued ones, and `running` ones whose lease ran out.

    Runs and dataset versions both wait as `queued` (`RunStatus.QUEUED`, `VersionStatus.QUEUED`).
    A queued job with a lease time and no owner is held back until then (a run handed back for
    an outage: see `service.storage.runs.hand_back`).
    """
    return or_(
        and_(
            model.status == RunStatus.QUEUED,
            or_(model.lease_expires_at.is_(None), model.lease_expires_at < now),
        ),
        and_(
            model.status == running,
            or_(model.lease_expires_at.is_(None), model.lease_expires_at < now),
        ),
    )


def lease_values(owner: str, lease_seconds: int, now: datetime) -> dict[str, Any]:
    """The columns a claim or a renewal writes."""
    return {
        "lease_owner": owner,
        "lease_expires_at": now + timedelta(seconds=lease_seconds),
        "heartbeat_at": now,
    }


def claim(
    session: Session,
    model: Any,
    *,
    claimable: ColumnElement[bool],
    order_by: list[Any],
    values: dict[str, Any],
) -> int | None:
    """Take the first row of `model` matching `claimable` and write `values` to it.

    On PostgreSQL the candidate is locked with `FOR UPDATE SKIP LOCKED`, so concurrent
    workers never wait on or take the same job; on SQLite the guarded UPDATE is atomic
    because SQLite serialises writers.

    Returns:
        The claimed row's id, or None when nothing is claimable.
    """
    candidate = select(model.id).where(claimable).order_by(*order_by).limit(1)
    if session.get_bind().dialect.name == "postgresql":
        stmt = (
            update(model)
            .where(model.id == candidate.with_for_update(skip_locked=True).scalar_subquery())
            .values(**values)
            .returning(model.id)
        )
        return session.execute(stmt).scalar_one_or_none()
    found = session.scalar(candidate)
    if found is None:
        return None
    claim_found = update(model).where(model.id == found, claimable).values(**values)
    return found if changed_rows(session, claim_found) == 1 else None


def renew(session: Session, model: Any, *, job_id: int, owner: str, lease_seconds: int) -> bool:
    """Extend our lease on a job; False when it is no longer ours.

    An expired lease that nobody has claimed yet is still ours: ownership only changes
    through `claim`, which rewrites `lease_owner` atomically.
    """
    renewal = (
        update(model)
        .where(model.id == job_id, model.lease_owner == owner)
        .values(**lease_values(owner, lease_seconds, utcnow()))
    )
    return changed_rows(session, renewal) == 1


def released(status: str | None, *, terminal: bool) -> dict[str, Any]:
    """The columns that give a job's lease up, with its new status (and end time if final)."""
    values: dict[str, Any] = {"lease_owner": None, "lease_expires_at": None}
    if status is not None:
        values["status"] = status
        if terminal:
            values["finished_at"] = utcnow()
    return values
