"""Datasets, their versions and items, and eval sets: the repository functions."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from filters.decontamination import EvalItem as EvalRecord
from service.errors import Conflict, InvalidInput, NotFound
from service.statuses import VersionStatus
from service.storage.db import insert_or_ignore
from service.storage.models import (
    Dataset,
    DatasetItem,
    DatasetVersion,
    EvalItem,
    EvalSet,
    Task,
    utcnow,
)
from service.storage.names import check_dataset_name, check_set_name


def get_or_create_dataset(session: Session, name: str) -> Dataset:
    """The dataset row called `name`, created when missing (concurrent creators share one)."""
    check_dataset_name(name)
    insert_or_ignore(session, Dataset, {"name": name, "created_at": utcnow()}, ["name"])
    dataset = session.scalar(select(Dataset).where(Dataset.name == name))
    assert dataset is not None
    return dataset


def get_dataset(session: Session, name: str) -> Dataset:
    """Raises NotFound when there is no dataset `name`."""
    dataset = session.scalar(select(Dataset).where(Dataset.name == name))
    if dataset is None:
        raise NotFound(f"no dataset {name!r}")
    return dataset


def allocate_version(
    session: Session,
    *,
    dataset: Dataset,
    spec: dict[str, Any],
    spec_hash: str,
    lease: dict[str, Any] | None = None,
) -> DatasetVersion:
    """Add the next version row of a dataset, in the caller's transaction: `queued` for any
    worker to claim, or `building` under `lease` (`leases.lease_values`) when the caller
    builds it itself.

    Numbers are never reused: a failed version keeps its row and its number, so the next
    export gets the one after it. A no-op UPDATE of the dataset row serialises concurrent
    exports before the number is read: it locks the row on PostgreSQL and takes the write lock
    on SQLite, where `SELECT ... FOR UPDATE` does nothing.
    """
    session.execute(update(Dataset).where(Dataset.id == dataset.id).values(name=Dataset.name))
    last = session.scalar(
        select(func.max(DatasetVersion.version)).where(DatasetVersion.dataset_id == dataset.id)
    )
    version = DatasetVersion(
        dataset_id=dataset.id,
        version=(last or 0) + 1,
        status=VersionStatus.QUEUED if lease is None else VersionStatus.BUILDING,
        **(lease or {}),
        spec=spec,
        spec_hash=spec_hash,
        counts={},
    )
    session.add(version)
    session.flush()
    return version


def get_version(session: Session, *, dataset: str, version: int) -> DatasetVersion:
    """Raises NotFound when the dataset or that version does not exist."""
    row = session.scalar(
        select(DatasetVersion)
        .join(Dataset, Dataset.id == DatasetVersion.dataset_id)
        .where(Dataset.name == dataset, DatasetVersion.version == version)
    )
    if row is None:
        raise NotFound(f"no version {version} of dataset {dataset!r}")
    return row


def find_ready_version(session: Session, *, dataset: str, version: int | None) -> DatasetVersion:
    """A `ready` version of a dataset: number `version`, or the newest when None.

    Raises:
        NotFound: no such dataset, or no ready version (of that number).
    """
    stmt = (
        select(DatasetVersion)
        .join(Dataset, Dataset.id == DatasetVersion.dataset_id)
        .where(Dataset.name == dataset, DatasetVersion.status == VersionStatus.READY)
    )
    if version is not None:
        stmt = stmt.where(DatasetVersion.version == version)
    row = session.scalar(stmt.order_by(DatasetVersion.version.desc()).limit(1))
    if row is None or row.path is None:
        which = "latest" if version is None else str(version)
        raise NotFound(f"no ready dataset version {dataset}@{which}: export one first")
    return row


def get_version_by_id(session: Session, version_id: int) -> DatasetVersion:
    """Raises NotFound when there is no dataset version with this row id."""
    row = session.get(DatasetVersion, version_id)
    if row is None:
        raise NotFound(f"no dataset version id {version_id}")
    return row


def list_versions(session: Session, dataset: str) -> list[DatasetVersion]:
    """Every version of a dataset, oldest first. Raises NotFound for an unknown dataset."""
    ds = get_dataset(session, dataset)
    return list(
        session.scalars(
            select(DatasetVersion)
            .where(DatasetVersion.dataset_id == ds.id)
            .order_by(DatasetVersion.version)
        )
    )


@dataclass(frozen=True)
class DatasetSummary:
    """A dataset with its version count and newest ready version."""

    id: int
    name: str
    versions: int
    latest_ready: int | None
    created_at: Any


def list_datasets(session: Session) -> list[DatasetSummary]:
    """All datasets by name, with how many versions each has and its newest ready one."""
    ready = (
        select(func.max(DatasetVersion.version))
        .where(
            DatasetVersion.dataset_id == Dataset.id, DatasetVersion.status == VersionStatus.READY
        )
        .scalar_subquery()
    )
    total = (
        select(func.count())
        .select_from(DatasetVersion)
        .where(DatasetVersion.dataset_id == Dataset.id)
        .scalar_subquery()
    )
    rows = session.execute(
        select(Dataset.id, Dataset.name, total, ready, Dataset.created_at).order_by(Dataset.name)
    )
    return [DatasetSummary(*row) for row in rows]


class ItemWriter:
    """Records (task id, instance id, split) rows of a version as an export streams them.

    This is the hot write of an export, so it skips the ORM: on PostgreSQL one COPY stays open
    for the whole export, so the server checks foreign keys while the exporter keeps writing;
    elsewhere rows go in batched `executemany` calls.
    """

    BATCH = 5000

    def __init__(self, session: Session, version_id: int) -> None:
        self.version_id = version_id
        self.rows = 0
        self._connection = session.connection()
        self._pending: list[tuple[int, int, int | None, str]] = []
        self._copy: Any = None
        self._stack = contextlib.ExitStack()
        if self._connection.dialect.name == "postgresql":
            raw = self._connection.connection.driver_connection
            cursor = self._stack.enter_context(raw.cursor())  # type: ignore[union-attr]
            self._copy = self._stack.enter_context(
                cursor.copy(f"COPY dataset_items ({_COLUMNS}) FROM STDIN")
            )

    def add(self, task_id: int, instance_id: int | None, split: str) -> None:
        self.rows += 1
        if self._copy is not None:
            self._copy.write_row((self.version_id, task_id, instance_id, split))
            return
        self._pending.append((self.version_id, task_id, instance_id, split))
        if len(self._pending) >= self.BATCH:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            mark = "?" if self._connection.dialect.paramstyle == "qmark" else "%s"
            self._connection.exec_driver_sql(
                f"INSERT INTO dataset_items ({_COLUMNS}) VALUES ({', '.join([mark] * 4)})",
                self._pending,
            )
            self._pending = []

    def close(self) -> None:
        """Send what is pending and end the COPY; the rows commit with the caller's session."""
        self._flush()
        self._stack.close()

    def abort(self) -> None:
        """Drop pending rows; the caller rolls its transaction back."""
        self._pending = []
        with contextlib.suppress(Exception):
            self._stack.__exit__(RuntimeError, RuntimeError("export aborted"), None)


_COLUMNS = "dataset_version_id, task_id, instance_id, split"


@dataclass(frozen=True)
class VersionDiff:
    """Tasks added, removed and changed between two versions (ids ascending, lists capped at
    `limit`). A changed task is in both versions with other items (instances or split);
    `unchanged_total` counts the tasks in both with the same items. `by_type` counts each kind
    of change by task type: `classification`, `generation` (is_classification false) and
    `unclassified` (seeds' types unknown) -> {"added", "removed", "changed"} -> tasks."""

    added: list[int]
    removed: list[int]
    changed: list[int]
    added_total: int
    removed_total: int
    changed_total: int
    unchanged_total: int
    by_type: dict[str, dict[str, int]]


def _task_ids(version_id: int) -> Any:
    return select(DatasetItem.task_id).where(DatasetItem.dataset_version_id == version_id)


def _items(version_id: int) -> Any:
    return select(DatasetItem.task_id, DatasetItem.instance_id, DatasetItem.split).where(
        DatasetItem.dataset_version_id == version_id
    )


def _task_type(is_classification: bool | None) -> str:
    if is_classification is None:
        return "unclassified"
    return "classification" if is_classification else "generation"


def diff_versions(
    session: Session, *, dataset: str, old: int, new: int, limit: int = 1000
) -> VersionDiff:
    """Which tasks a newer version added, removed and changed relative to an older one.

    Raises:
        NotFound: the dataset or a version does not exist.
    """
    a = get_version(session, dataset=dataset, version=old).id
    b = get_version(session, dataset=dataset, version=new).id
    both = _task_ids(a).intersect(_task_ids(b)).subquery()
    # A task in both whose (instance, split) rows differ; EXCEPT compares NULLs as equal.
    differing = (
        select(_items(a).except_(_items(b)).subquery().c.task_id)
        .union(select(_items(b).except_(_items(a)).subquery().c.task_id))
        .subquery()
    )
    sets = {
        "added": _task_ids(b).except_(_task_ids(a)).subquery(),
        "removed": _task_ids(a).except_(_task_ids(b)).subquery(),
        "changed": select(both.c.task_id)
        .where(both.c.task_id.in_(select(differing.c.task_id)))
        .subquery(),
    }
    ids: dict[str, list[int]] = {}
    by_type: dict[str, dict[str, int]] = {}
    for change, subquery in sets.items():
        ids[change] = list(
            session.scalars(select(subquery.c.task_id).order_by(subquery.c.task_id).limit(limit))
        )
        counts = session.execute(
            select(Task.is_classification, func.count())
            .where(Task.id.in_(select(subquery.c.task_id)))
            .group_by(Task.is_classification)
        )
        for is_classification, count in counts:
            kinds = by_type.setdefault(_task_type(is_classification), {})
            kinds[change] = kinds.get(change, 0) + count
    totals = {change: sum(kinds.get(change, 0) for kinds in by_type.values()) for change in sets}
    for kinds in by_type.values():
        for change in sets:
            kinds.setdefault(change, 0)
    common = session.scalar(select(func.count()).select_from(both)) or 0
    return VersionDiff(
        added=ids["added"],
        removed=ids["removed"],
        changed=ids["changed"],
        added_total=totals["added"],
        removed_total=totals["removed"],
        changed_total=totals["changed"],
        unchanged_total=common - totals["changed"],
        by_type=dict(sorted(by_type.items())),
    )


def eval_items_hash(items: Iterable[EvalRecord]) -> str:
    """sha256 of an eval set's items as canonical JSON lines, in their order."""
    digest = hashlib.sha256()
    for item in items:
        record = [item.id, item.instruction, list(item.inputs), list(item.outputs)]
        digest.update(orjson.dumps(record) + b"\n")
    return digest.hexdigest()


def import_eval_set(session: Session, *, name: str, items: list[EvalRecord]) -> EvalSet:
    """Store a held-out eval set, in the caller's transaction.

    Re-importing the same items under the same name returns the existing set unchanged.

    Args:
        session: The session (caller commits).
        name: The set's unique name (`service.storage.names.SET_NAME_PATTERN`).
        items: Parsed items (`filters.decontamination.load_eval_jsonl`).

    Raises:
        InvalidInput: a bad name, or no items.
        Conflict: the name exists with other content.
    """
    check_set_name(name, "eval set")
    if not items:
        raise InvalidInput(f"eval set {name!r} has no items")
    content_hash = eval_items_hash(items)
    existing = session.scalar(select(EvalSet).where(EvalSet.name == name))
    if existing is not None:
        if existing.content_hash == content_hash:
            return existing
        raise Conflict(
            f"eval set {name!r} already exists with different content "
            f"(sha256 {existing.content_hash[:12]}…); import under another name"
        )
    eval_set = EvalSet(name=name, content_hash=content_hash, item_count=len(items))
    session.add(eval_set)
    session.flush()
    session.execute(
        insert(EvalItem.__table__),  # type: ignore[arg-type]
        [
            {
                "eval_set_id": eval_set.id,
                "external_id": item.id,
                "instruction": item.instruction,
                "inputs": list(item.inputs),
                "outputs": list(item.outputs),
            }
            for item in items
        ],
    )
    return eval_set


def list_eval_sets(session: Session) -> list[EvalSet]:
    return list(session.scalars(select(EvalSet).order_by(EvalSet.name)))


def get_eval_set(session: Session, name: str) -> EvalSet:
    """Raises NotFound when there is no eval set `name`."""
    eval_set = session.scalar(select(EvalSet).where(EvalSet.name == name))
    if eval_set is None:
        raise NotFound(f"no eval set {name!r}")
    return eval_set


def load_eval_items(session: Session, eval_set_id: int) -> list[EvalRecord]:
    """An eval set's items, in import order, as the decontamination library's type."""
    rows = session.execute(
        select(EvalItem.external_id, EvalItem.instruction, EvalItem.inputs, EvalItem.outputs)
        .where(EvalItem.eval_set_id == eval_set_id)
        .order_by(EvalItem.id)
    )
    return [EvalRecord(eid, instr, list(inp), list(out)) for eid, instr, inp, out in rows]
