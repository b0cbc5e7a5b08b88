"""Seed sets and eval sets: writing validated files, listing, loading the task pool."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.errors import Conflict, NotFound
from service.seed_files import SeedFile
from service.statuses import TaskStatus
from service.storage.models import Instance, SeedSet, Task
from service.storage.names import check_set_name


@dataclass(frozen=True)
class ImportOutcome:
    seed_set: SeedSet
    created: bool


def import_seed_set(session: Session, *, name: str, seed_file: SeedFile) -> ImportOutcome:
    """Store a validated seed file as a seed set, in the caller's transaction.

    Re-importing the same bytes under the same name is a no-op (created=False).

    Raises:
        InvalidInput: a bad name (`service.storage.names.SET_NAME_PATTERN`).
        Conflict: the name exists with other content.
    """
    check_set_name(name, "seed set")
    existing = session.scalar(select(SeedSet).where(SeedSet.name == name))
    if existing is not None:
        if existing.content_hash == seed_file.content_hash:
            return ImportOutcome(existing, created=False)
        raise Conflict(
            f"seed set {name!r} already exists with different content "
            f"(sha256 {existing.content_hash[:12]}…); import under another name"
        )
    seed_set = SeedSet(
        name=name,
        content_hash=seed_file.content_hash,
        source_format=seed_file.format,
        task_count=len(seed_file.records),
    )
    session.add(seed_set)
    session.flush()
    for rec in seed_file.records:
        task = Task(
            origin="seed",
            seed_set_id=seed_set.id,
            name=rec.name,
            external_id=rec.external_id,
            instruction=rec.instruction,
            is_classification=rec.is_classification,
            turns=rec.turns,
            expected_refusal=rec.expected_refusal,
            status=TaskStatus.ACCEPTED,
        )
        session.add(task)
        session.flush()
        session.add_all(
            Instance(task_id=task.id, idx=i, input=inp, output=out, status=TaskStatus.ACCEPTED)
            for i, (inp, out) in enumerate(rec.instances)
        )
    return ImportOutcome(seed_set, created=True)


def list_seed_sets(session: Session) -> list[SeedSet]:
    return list(session.scalars(select(SeedSet).order_by(SeedSet.id)))


def get_seed_set(session: Session, *, name: str | None = None, id: int | None = None) -> SeedSet:
    """Find a seed set by name or id.

    Raises:
        NotFound: no such seed set.
    """
    stmt = select(SeedSet)
    stmt = stmt.where(SeedSet.name == name) if name is not None else stmt.where(SeedSet.id == id)
    seed_set = session.scalar(stmt)
    if seed_set is None:
        raise NotFound(f"no seed set {name if name is not None else id!r}")
    return seed_set
