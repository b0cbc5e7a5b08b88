"""Create a dataset version: allocate its number, write its files, record its items, publish it.

A version is built by whoever holds its lease (`storage.export_jobs`): a worker that claimed
it, or the API process for a small export. Files go to a temporary directory beside the final
one and are renamed into place only once every file, the manifest and the card are written and
the items are recorded, just before the transaction commits: a crash leaves no `vN` directory
of a version that is not ready, and the version row says `failed`; after a hard kill it stays
`building` until its lease expires, and the next claimer clears the leftovers and rebuilds it.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from service.errors import LeaseLost
from service.export.card import render_card
from service.export.decontam import EvalSetGuard
from service.export.examples import examples_of, split_of
from service.export.maintenance import clear_unpublished
from service.export.manifest import build_manifest, lineage
from service.export.rules import TypeCaps, apply_min_scores
from service.export.spec import ExportSpec
from service.export.tally import Tally
from service.export.writers import VersionWriter, content_hash, describe_file, write_bytes
from service.heartbeat import heartbeat, owner_id
from service.reports.dataset import version_reports
from service.statuses import VersionStatus
from service.storage.candidates import (
    InstanceRow,
    TaskRow,
    check_runs,
    resolve_seed_sets,
    stream_tasks,
)
from service.storage.datasets import (
    ItemWriter,
    allocate_version,
    get_eval_set,
    get_or_create_dataset,
    get_version_by_id,
)
from service.storage.db import Session
from service.storage.export_jobs import (
    export_job,
    fail_version,
    finish_version,
    holds_lease,
    renew_export_lease,
)
from service.storage.leases import lease_values
from service.storage.models import DatasetVersion, utcnow
from service.storage.names import check_dataset_name

LEASE_SECONDS = 60  # an export's lease when the caller names none (Settings.lease_seconds)


@dataclass(frozen=True)
class VersionInfo:
    """A dataset version as callers see it.

    `status` is `queued`, `building`, `ready` or `failed`; a version whose builder's lease
    expired shows as `queued` (the next claim rebuilds it), so `building` always comes with a
    live lease (`lease_owner`, `lease_expires_at`).
    """

    id: int
    dataset: str
    version: int
    status: VersionStatus
    spec: dict[str, Any]
    spec_hash: str
    content_hash: str | None
    path: Path | None
    counts: dict[str, Any]
    error: str | None
    created_at: datetime
    finished_at: datetime | None
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None


def version_info(row: DatasetVersion, dataset: str) -> VersionInfo:
    status, owner, expires = VersionStatus(row.status), row.lease_owner, row.lease_expires_at
    if status == VersionStatus.BUILDING and (expires is None or expires < utcnow()):
        # Its builder died: claimable again.
        status, owner, expires = VersionStatus.QUEUED, None, None
    return VersionInfo(
        id=row.id,
        dataset=dataset,
        version=row.version,
        status=status,
        spec=row.spec,
        spec_hash=row.spec_hash,
        content_hash=row.content_hash,
        path=Path(row.path) if row.path else None,
        counts=row.counts,
        error=row.error,
        created_at=row.created_at,
        finished_at=row.finished_at,
        lease_owner=owner,
        lease_expires_at=expires,
    )


def start_version(
    database: Any,
    *,
    dataset: str,
    spec: ExportSpec,
    owner: str | None = None,
    lease_seconds: int = LEASE_SECONDS,
) -> VersionInfo:
    """Check a spec and allocate the next version of a dataset.

    Args:
        database: The service's Database.
        dataset: Dataset name (created on first use).
        spec: What to export.
        owner: Build it yourself under this lease owner (status `building`); None queues
            it (status `queued`) for a worker.
        lease_seconds: The lease's length when `owner` is given.

    Returns:
        The new version; `build_version` fills it in.

    Raises:
        InvalidInput: a bad dataset name.
        NotFound: the spec names an unknown run, seed set or eval set.
    """
    with database.transaction() as session:
        return allocate_version_in(
            session, dataset=dataset, spec=spec, owner=owner, lease_seconds=lease_seconds
        )


def allocate_version_in(
    session: Session,
    *,
    dataset: str,
    spec: ExportSpec,
    owner: str | None = None,
    lease_seconds: int = LEASE_SECONDS,
) -> VersionInfo:
    """`start_version` in the caller's transaction (the one holding its Idempotency-Key).

    Raises:
        InvalidInput: a bad dataset name.
        NotFound: the spec names an unknown run, seed set or eval set.
    """
    check_dataset_name(dataset)
    check_runs(session, spec.runs)
    resolve_seed_sets(session, spec.seed_sets)
    for name in spec.eval_sets:
        get_eval_set(session, name)
    ds = get_or_create_dataset(session, dataset)
    lease = None if owner is None else lease_values(owner, lease_seconds, utcnow())
    row = allocate_version(
        session, dataset=ds, spec=spec.canonical(), spec_hash=spec.spec_hash(), lease=lease
    )
    return version_info(row, dataset)


def create_version(
    database: Any, *, dataset: str, spec: ExportSpec, datasets_dir: Path
) -> VersionInfo:
    """Export a new version synchronously, under a lease of this process: `start_version`,
    then `build_version`.

    Args:
        database: The service's Database.
        dataset: Dataset name.
        spec: What to export.
        datasets_dir: Root of the versions (`<datasets_dir>/<dataset>/v<N>/`).

    Returns:
        The ready version: id, version, status, content_hash, path, counts.

    Raises:
        InvalidInput, NotFound: see `start_version`; any error while building, after the
        version has been marked failed.
    """
    owner = owner_id("export")
    info = start_version(database, dataset=dataset, spec=spec, owner=owner)
    return build_version(database, version_id=info.id, datasets_dir=datasets_dir, owner=owner)


def build_version(
    database: Any,
    *,
    version_id: int,
    datasets_dir: Path,
    owner: str,
    lease_seconds: int = LEASE_SECONDS,
) -> VersionInfo:
    """Write the files of a version whose lease `owner` holds and publish it atomically.

    What an earlier builder of this version left on disk (a temporary directory, or a `vN`
    renamed just before a commit that never came) is removed first; the lease is renewed
    every third of `lease_seconds` while the files are written.

    Raises:
        NotFound: no such version.
        LeaseLost: `owner` does not hold the version's lease, or lost it before publishing
            (the version is then another builder's, and is left to it).
        Exception: whatever failed mid-build; the version is then marked `failed`, its
            items are removed and no directory is left behind.
    """
    with database.sessions() as session:
        get_version_by_id(session, version_id)
        if not holds_lease(session, version_id=version_id, owner=owner):
            raise LeaseLost(f"dataset version id {version_id} is not being built by {owner}")
        job = export_job(session, version_id)

    def renew() -> bool:
        with database.transaction() as session:
            return renew_export_lease(
                session, version_id=version_id, owner=owner, lease_seconds=lease_seconds
            )

    with heartbeat(renew, every_s=lease_seconds / 3, name=f"export-{version_id}"):
        return _build(database, job.dataset, job.version, version_id, Path(datasets_dir), owner)


def _build(
    database: Any, name: str, number: int, version_id: int, datasets_dir: Path, owner: str
) -> VersionInfo:
    # Absolute, so the recorded path means the same to the API, the CLI and the trainer.
    parent = datasets_dir.resolve() / name
    parent.mkdir(parents=True, exist_ok=True)
    clear_unpublished(parent, number)
    final = parent / f"v{number}"
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-v{number}-", dir=parent))
    published = False
    try:
        # Two sessions: one streams the tasks, the other records items and the version, so
        # on PostgreSQL the server's work on the items overlaps the exporter's own.
        with database.sessions() as session, session.begin(), database.sessions() as reader:
            row = get_version_by_id(session, version_id)
            manifest = _write_version(session, reader, row, name, tmp)
            reader.rollback()
            # Guarded by the lease and first: a builder that lost the version writes nothing,
            # and on PostgreSQL the row stays locked until the commit after the rename.
            row = finish_version(
                session,
                version_id=version_id,
                owner=owner,
                content_hash=manifest["content_hash"],
                counts=manifest["counts"],
                path=str(final),
            )
            _publish(tmp, final)
            published = True
            info = version_info(row, name)
        return info
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, LeaseLost):  # the version and its directory are another's now
            raise
        if published:  # the commit failed after the rename: take the directory back
            shutil.rmtree(final, ignore_errors=True)
        with database.transaction() as session:
            fail_version(
                session, version_id=version_id, owner=owner, error=f"{type(exc).__name__}: {exc}"
            )
        raise


def _publish(tmp: Path, final: Path) -> None:
    for path in tmp.iterdir():
        path.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)  # ready versions never change
    tmp.chmod(0o755)  # mkdtemp makes it private; a version is for every reader
    os.rename(tmp, final)
    fd = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(fd)  # make the rename itself durable
    finally:
        os.close(fd)


def _write_version(
    session: Session, reader: Session, row: DatasetVersion, name: str, tmp: Path
) -> dict[str, Any]:
    """Write data files, card and manifest into `tmp`; record the items; return the manifest."""
    spec = ExportSpec.model_validate(row.spec)
    guard = EvalSetGuard(reader, spec.eval_sets, threshold=spec.decontamination_threshold)
    tally, data_files = _write_data(session, reader, spec, row.id, tmp, guard)
    chash = content_hash(data_files)
    scorers = {s: sorted(v) for s, v in sorted(tally.scorer_versions.items())}
    lin = lineage(
        session,
        version_id=row.id,
        run_ids=tally.run_ids,
        seed_set_ids=tally.seed_set_ids,
        scorers=scorers,
        decontamination=guard.describe(tally.decontaminated_items),
    )
    counts = tally.counts()
    reports = version_reports(reader, tally.run_ids, tmp)
    card = render_card(
        dataset=name,
        version=row.version,
        content_hash=chash,
        spec_hash=row.spec_hash,
        counts=counts,
        lineage=lin,
        files=list(data_files),
    )
    write_bytes(tmp / "README.md", (card + reports.card_section()).encode())
    written = ["README.md", *reports.plots]
    files = dict(sorted({**data_files, **{f: describe_file(tmp / f) for f in written}}.items()))
    manifest = build_manifest(
        dataset=name,
        version=row.version,
        spec=row.spec,
        spec_hash=row.spec_hash,
        content_hash=chash,
        counts=counts,
        score_distributions=tally.score_distributions(),
        lineage=lin,
        files=files,
        created_at=row.created_at.isoformat(),
    )
    manifest["run_reports"] = reports.manifest_entry()
    options = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS
    write_bytes(tmp / "manifest.json", orjson.dumps(manifest, option=options) + b"\n")
    return manifest


def _write_data(
    session: Session,
    reader: Session,
    spec: ExportSpec,
    version_id: int,
    tmp: Path,
    guard: EvalSetGuard,
) -> tuple[Tally, dict[str, dict[str, Any]]]:
    """Stream candidates through the rules into the files and the items table.

    Returns:
        The tally and the data files (name -> sha256, bytes, rows).
    """
    tally = Tally()
    writer = VersionWriter(tmp, spec.text_formats(), parquet=spec.writes_parquet)
    items = ItemWriter(session, version_id)
    caps = TypeCaps(spec.max_per_type)
    try:
        with stream_tasks(reader, spec) as tasks:
            for task in tasks:
                tally.candidates += 1
                kept = _admit(task, spec, guard, caps, tally)
                if kept is None:
                    continue
                split = split_of(
                    task.instruction, seed=spec.split_seed, validation_ratio=spec.validation_ratio
                )
                examples = examples_of(task, kept)
                writer.write(split, examples)
                tally.accept(task, split, examples)
                for example in examples:
                    items.add(task.id, example.instance_id, split)
        items.close()
    except BaseException:
        items.abort()
        writer.abort()
        raise
    return tally, writer.close()


def _admit(
    task: TaskRow, spec: ExportSpec, guard: EvalSetGuard, caps: TypeCaps, tally: Tally
) -> list[InstanceRow] | None:
    """The instances a task exports, or None (counted in the tally) when a rule drops it."""
    decision = apply_min_scores(task, spec.min_scores)
    if decision.reason is not None:
        tally.reject(decision.reason)
        return None
    hit = guard.check(task, decision.kept)
    if hit is not None:
        tally.decontaminate(task, hit[0], hit[1].nearest_id, hit[1].similarity)
        return None
    if not caps.admit(task.task_type):
        tally.reject(f"cap:{task.task_type}")
        return None
    return decision.kept
