"""Worker faults on real PostgreSQL with real worker processes (tests/e2e/fault_worker.py).

kill -9 the worker while it commits an iteration, while it holds a batch run, while it
exports (before and after the rename); terminate its database connection from PostgreSQL
mid-commit. Each time the next worker finishes the job: nothing lost or duplicated, counters
equal to rows, no directory left behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from bench.databases import PG_ADMIN_DSN
from service.export import ExportSpec, create_version, start_version
from service.runs.config import RunConfig
from service.storage.db import Database
from service.storage.models import DatasetItem, DatasetVersion, Run, RunEvent
from tests.e2e.test_crash_safety import assert_consistent, wait_terminal, worker_env
from tests.service.scripted_run import queued_run

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("db_url", ["postgres"], indirect=True)]
REPO_ROOT = Path(__file__).resolve().parents[2]


class Workers:
    """Starts fault workers on one database and kills what it started."""

    def __init__(self, db_url: str, tmp_path: Path) -> None:
        self.db_url, self.tmp_path = db_url, tmp_path
        self.marker = tmp_path / "fault.marker"
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, point: str = "", pause_s: float = 60) -> subprocess.Popen[bytes]:
        env = {
            **worker_env(self.db_url),
            "INSTRUCTFORGE_DATASETS_DIR": str(self.tmp_path / "datasets"),
            "FAULT_POINT": point,
            "FAULT_MARKER": str(self.marker),
            "FAULT_PAUSE_S": str(pause_s),
        }
        with (self.tmp_path / "workers.log").open("ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "tests.e2e.fault_worker"],
                cwd=REPO_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.procs.append(proc)
        return proc

    def wait_for_fault(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not self.marker.exists():
            assert time.monotonic() < deadline, self.log()
            time.sleep(0.05)

    def kill_9(self, proc: subprocess.Popen[bytes]) -> None:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)

    def log(self) -> str:
        return (self.tmp_path / "workers.log").read_text(errors="replace")[-3000:]

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture
def workers(db_url: str, tmp_path: Path) -> Iterator[Workers]:
    w = Workers(db_url, tmp_path)
    try:
        yield w
    finally:
        w.stop_all()


def one_batch_config() -> RunConfig:
    # The scripted completion gives two acceptable tasks: one iteration reaches the target.
    return RunConfig(
        seed_set="default",
        backend="transformers",
        model="scripted",
        target_tasks=2,
        max_iterations=3,
    )


def finished_run(database: Database, run_id: int, workers: Workers) -> Run:
    run = wait_terminal(database, run_id, timeout=120)
    assert run.status == "completed", f"{run.error}\n{workers.log()}"
    run = assert_consistent(database, run_id)
    assert run.accepted_count == 2 and run.iteration == 1, "an iteration was lost or doubled"
    return run


def claims(database: Database, run_id: int) -> int:
    with database.sessions() as s:
        stmt = select(func.count()).select_from(RunEvent)
        return s.scalar(stmt.where(RunEvent.run_id == run_id, RunEvent.kind == "claimed")) or 0


@pytest.mark.parametrize("point", ["commit", "batch"])
def test_kill_9_mid_commit_or_holding_a_run_then_the_next_worker_finishes(
    database: Database, workers: Workers, point: str
) -> None:
    run_id = queued_run(database, one_batch_config())
    if point == "batch":
        with database.transaction() as s:  # a /v1/generate batch run, as the route queues it
            s.get(Run, run_id).kind = "batch"  # type: ignore[union-attr]
    first = workers.start(point)
    workers.wait_for_fault()
    workers.kill_9(first)
    assert_consistent(database, run_id)  # nothing of the killed iteration is visible
    workers.start()
    finished_run(database, run_id, workers)
    assert claims(database, run_id) == 2


def test_connection_terminated_mid_commit_then_the_job_is_finished(
    database: Database, workers: Workers, db_url: str
) -> None:
    run_id = queued_run(database, one_batch_config())
    workers.start("commit", pause_s=3)
    workers.wait_for_fault()
    dbname = make_url(db_url).database
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
        killed = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND state = 'idle in transaction'",
            (dbname,),
        ).fetchall()
    assert killed, "the worker's commit transaction was not found"
    run = finished_run(database, run_id, workers)
    assert run.error is None  # a lost connection is no fault of the run
    with database.sessions() as s:
        kinds = list(s.scalars(select(RunEvent.kind).where(RunEvent.run_id == run_id)))
    assert "queued" in kinds and "failed" not in kinds, kinds


@pytest.mark.parametrize("point", ["export", "published"])
def test_kill_9_mid_export_then_the_next_worker_rebuilds_it(
    database: Database, workers: Workers, tmp_path: Path, point: str
) -> None:
    queued_run(database, one_batch_config())  # imports the seed set the export reads
    spec = ExportSpec(validation_ratio=0.2)
    info = start_version(database, dataset="e", spec=spec)
    assert info.status == "queued"
    first = workers.start(point)
    workers.wait_for_fault()
    workers.kill_9(first)
    parent = tmp_path / "datasets" / "e"
    assert any(p.name.startswith((".tmp-v1-", "v1")) for p in parent.iterdir())
    workers.start()
    deadline = time.monotonic() + 120
    while True:
        with database.sessions() as s:
            row = s.get(DatasetVersion, info.id)
            assert row is not None
            if row.status in ("ready", "failed"):
                break
        assert time.monotonic() < deadline, workers.log()
        time.sleep(0.2)
    assert (row.status, row.lease_owner, row.error) == ("ready", None, None), workers.log()
    assert sorted(p.name for p in parent.iterdir()) == ["v1"]  # no temporary directory left
    with database.sessions() as s:
        items = s.scalar(
            select(func.count())
            .select_from(DatasetItem)
            .where(DatasetItem.dataset_version_id == info.id)
        )
    assert items == row.counts["examples"]  # recorded once, not once per attempt
    reference = create_version(database, dataset="ref", spec=spec, datasets_dir=tmp_path / "ref")
    assert row.content_hash == reference.content_hash  # the same bytes as an undisturbed build
    assert os.listdir(parent / "v1") == os.listdir(Path(reference.path or ""))
