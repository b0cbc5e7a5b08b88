"""Export jobs: a dataset version is built by whoever holds its lease.

A version is `queued` (no lease), `building` (a live lease: a worker, or the API for a small
export, is writing its files), `ready` or `failed`. Every write of a builder is guarded by its
lease, so a builder that stalled past its lease and was replaced can neither publish nor fail
the version; the claim takes back versions whose lease expired (the builder died).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from service.errors import LeaseLost
from service.statuses import VersionStatus
from service.storage import leases
from service.storage.db import changed_rows
from service.storage.models import Dataset, DatasetItem, DatasetVersion, utcnow


@dataclass(frozen=True)
class ExportJob:
    """A claimed version: what its builder needs to find its files."""

    version_id: int
    dataset: str
    version: int


def claim_export(session: Session, *, owner: str, lease_seconds: int) -> ExportJob | None:
    """Claim the oldest queued version, or a building one whose lease expired.

    Returns:
        The claimed job, or None when nothing is claimable.
    """
    now = utcnow()
    version_id = leases.claim(
        session,
        DatasetVersion,
        claimable=leases.expired_or_queued(DatasetVersion, now, VersionStatus.BUILDING),
        order_by=[DatasetVersion.id],
        values={"status": VersionStatus.BUILDING, **leases.lease_values(owner, lease_seconds, now)},
    )
    return None if version_id is None else export_job(session, version_id)


def export_job(session: Session, version_id: int) -> ExportJob:
    row = session.execute(
        select(Dataset.name, DatasetVersion.version)
        .join(Dataset, Dataset.id == DatasetVersion.dataset_id)
        .where(DatasetVersion.id == version_id)
    ).one()
    return ExportJob(version_id, row[0], row[1])


def renew_export_lease(
    session: Session, *, version_id: int, owner: str, lease_seconds: int
) -> bool:
    """Extend our lease on a version; False when it is no longer ours."""
    return leases.renew(
        session, DatasetVersion, job_id=version_id, owner=owner, lease_seconds=lease_seconds
    )


def holds_lease(session: Session, *, version_id: int, owner: str) -> bool:
    """Whether `owner` holds the version's lease (and it is still being built)."""
    found = session.scalar(
        select(DatasetVersion.id).where(
            DatasetVersion.id == version_id,
            DatasetVersion.lease_owner == owner,
            DatasetVersion.status == VersionStatus.BUILDING,
        )
    )
    return found is not None


def finish_version(
    session: Session,
    *,
    version_id: int,
    owner: str,
    content_hash: str,
    counts: dict[str, Any],
    path: str,
) -> DatasetVersion:
    """Mark our version ready and give its lease up, in the transaction holding its items.

    Returns:
        The version's row as it now stands.

    Raises:
        LeaseLost: another builder holds the version now; the caller rolls back.
    """
    values = {"content_hash": content_hash, "counts": counts, "path": path}
    published = (
        update(DatasetVersion)
        .where(DatasetVersion.id == version_id, DatasetVersion.lease_owner == owner)
        .values(**leases.released(VersionStatus.READY, terminal=True), **values)
        .execution_options(synchronize_session=False)
    )
    if changed_rows(session, published) != 1:
        raise LeaseLost(f"dataset version id {version_id}: lease lost before publishing")
    row = session.get(DatasetVersion, version_id, populate_existing=True)
    assert row is not None  # the UPDATE above just changed it
    return row


def fail_version(session: Session, *, version_id: int, owner: str, error: str) -> bool:
    """Mark our version failed and drop any items it recorded; its number stays taken.

    Returns:
        False (and nothing changed) when the version is no longer ours.
    """
    failed = (
        update(DatasetVersion)
        .where(DatasetVersion.id == version_id, DatasetVersion.lease_owner == owner)
        .values(**leases.released(VersionStatus.FAILED, terminal=True), error=error[:2000])
        .execution_options(synchronize_session=False)
    )
    if changed_rows(session, failed) != 1:
        return False
    session.execute(delete(DatasetItem).where(DatasetItem.dataset_version_id == version_id))
    return True
