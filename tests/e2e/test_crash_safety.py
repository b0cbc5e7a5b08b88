"""Kill -9 a real worker (real embedded model) at several points; the run still completes exactly.

No task is lost or duplicated, and the run's counters equal its rows.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from generators.config import BootstrapConfig
from generators.types import SamplingParams
from service.runs.config import RunConfig
from service.storage import migrate
from service.storage.db import Database
from service.storage.models import Generation, ParseFailure, Run, RunEvent, Task
from service.storage.runs import create_run
from tests.service.scripted_run import queued_run

pytestmark = [pytest.mark.model, pytest.mark.slow]


def small_config(model_dir: Path, target: int, **extra: object) -> RunConfig:
    """Short decodes so one iteration takes seconds on 2 CPU cores."""
    return RunConfig(
        seed_set="default",
        backend="transformers",
        model=str(model_dir),
        target_tasks=target,
        bootstrap=BootstrapConfig(
            prompts_per_iteration=2,
            max_instances_per_task=2,
            instruction_sampling=SamplingParams(
                temperature=0.7,
                top_p=0.5,
                presence_penalty=2.0,
                max_tokens=80,
                stop=("\n\n", "\n16", "16."),
            ),
            instance_sampling=SamplingParams(
                temperature=0.0, top_p=1.0, max_tokens=60, stop=("Task:",)
            ),
        ),
        **extra,  # type: ignore[arg-type]
    )


def prepare_run(db_url: str, config: RunConfig) -> int:
    migrate.upgrade(db_url)
    database = Database(db_url)
    try:
        return queued_run(database, config)
    finally:
        database.dispose()


def worker_env(db_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "INSTRUCTFORGE_DATABASE_URL": db_url,
        "INSTRUCTFORGE_LEASE_SECONDS": "5",
        "INSTRUCTFORGE_HEARTBEAT_SECONDS": "1",
        "INSTRUCTFORGE_POLL_SECONDS": "0.3",
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }


Started = list[subprocess.Popen[bytes]]


@pytest.fixture
def started() -> Iterator[Started]:
    """The worker processes a test starts; those still alive when it ends are killed.

    Only a failed test leaves one (a wait that timed out): left running, it would heartbeat
    against its dropped database in a loop, on a core the rest of the suite needs.
    """
    procs: Started = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def start_worker(db_url: str, log: Path, started: Started) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:  # the child keeps its own descriptor
        proc = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "worker"],
            env=worker_env(db_url),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    started.append(proc)
    return proc


def wait_terminal(database: Database, run_id: int, timeout: float) -> Run:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with database.sessions() as s:
            run = s.get(Run, run_id)
            assert run is not None
            if run.status in ("completed", "failed", "cancelled"):
                return run
        time.sleep(1)
    raise AssertionError(f"run {run_id} did not finish in {timeout} s")


def assert_consistent(database: Database, run_id: int) -> Run:
    with database.sessions() as s:
        run = s.get(Run, run_id)
        assert run is not None

        def count(stmt: object) -> int:
            return s.scalar(stmt) or 0  # type: ignore[arg-type]

        tasks = select(func.count()).select_from(Task).where(Task.run_id == run_id)
        assert run.generated_count == count(tasks)
        assert run.accepted_count == count(tasks.where(Task.status == "accepted"))
        assert run.rejected_count == count(tasks.where(Task.status == "rejected"))
        by_rule = s.execute(
            select(Task.reject_rule, func.count())
            .where(Task.run_id == run_id, Task.status == "rejected")
            .group_by(Task.reject_rule)
        )
        assert run.rejected_by_rule == dict(by_rule.all())
        assert run.parse_failure_count == count(
            select(func.count()).select_from(ParseFailure).where(ParseFailure.run_id == run_id)
        )
        iterations = list(
            s.scalars(
                select(RunEvent.iteration).where(
                    RunEvent.run_id == run_id, RunEvent.kind == "iteration"
                )
            )
        )
        assert sorted(iterations) == list(range(1, run.iteration + 1)), iterations
        task_iters = set(s.scalars(select(Task.iteration).where(Task.run_id == run_id)))
        assert task_iters <= set(iterations)
        # No task twice: each (generation, instruction) pair is stored once.
        pairs = s.execute(
            select(Task.generation_id, Task.instruction, func.count())
            .where(Task.run_id == run_id)
            .group_by(Task.generation_id, Task.instruction)
        ).all()
        assert all(n == 1 for _, _, n in pairs)
        tokens = s.execute(
            select(
                func.sum(Generation.prompt_tokens), func.sum(Generation.completion_tokens)
            ).where(Generation.run_id == run_id)
        ).one()
        assert (run.prompt_tokens, run.completion_tokens) == tuple(int(t or 0) for t in tokens)
        return run


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_kill_9_at_several_points_then_resume(
    db_url: str, embedded_model_dir: Path, tmp_path: Path, started: Started
) -> None:
    run_id = prepare_run(db_url, small_config(embedded_model_dir, target=4, max_iterations=15))
    log = tmp_path / "worker.log"
    database = Database(db_url)
    try:
        # Early (loading the model), mid-inference, and later (likely at or after a commit).
        for delay in (2.0, 9.0, 17.0):
            proc = start_worker(db_url, log, started)
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            assert_consistent(database, run_id)
        final = start_worker(db_url, log, started)
        try:
            run = wait_terminal(database, run_id, timeout=600)
        finally:
            final.send_signal(signal.SIGTERM)
            final.wait(timeout=120)
        assert run.status == "completed", f"{run.error}\n{log.read_text()[-2000:]}"
        run = assert_consistent(database, run_id)
        assert run.accepted_count >= 4 or run.iteration == 15
        with database.sessions() as s:
            claims = s.scalar(
                select(func.count())
                .select_from(RunEvent)
                .where(RunEvent.run_id == run_id, RunEvent.kind == "claimed")
            )
        assert claims is not None and claims >= 2, "the run was never resumed by a new worker"
    finally:
        database.dispose()


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_two_workers_share_the_queue_and_sigterm_finishes_the_batch(
    db_url: str, embedded_model_dir: Path, tmp_path: Path, started: Started
) -> None:
    first = prepare_run(db_url, small_config(embedded_model_dir, target=2, max_iterations=3))
    database = Database(db_url)
    try:
        config = small_config(embedded_model_dir, target=2, max_iterations=3)
        with database.transaction() as s:
            second = create_run(
                s,
                seed_set_id=1,
                config=config.model_dump(mode="json"),
                config_hash=config.config_hash(),
                policy_version="v1",
                target_tasks=2,
            ).id
        workers = [start_worker(db_url, tmp_path / f"w{i}.log", started) for i in range(2)]
        try:
            runs = [wait_terminal(database, rid, timeout=900) for rid in (first, second)]
        finally:
            for w in workers:
                w.send_signal(signal.SIGTERM)
            for w in workers:
                assert w.wait(timeout=300) == 0, "a worker did not stop cleanly on SIGTERM"
        assert [r.status for r in runs] == ["completed", "completed"]
        with database.sessions() as s:
            owners = {
                rid: set(
                    s.scalars(
                        select(RunEvent.message).where(
                            RunEvent.run_id == rid, RunEvent.kind == "claimed"
                        )
                    )
                )
                for rid in (first, second)
            }
        # Each run was claimed once (no worker died), and by different workers.
        assert all(len(o) == 1 for o in owners.values()), owners
        assert owners[first] != owners[second]
        for rid in (first, second):
            assert_consistent(database, rid)
    finally:
        database.dispose()


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_sigterm_mid_run_commits_the_batch_and_requeues(
    db_url: str, embedded_model_dir: Path, tmp_path: Path, started: Started
) -> None:
    run_id = prepare_run(db_url, small_config(embedded_model_dir, target=50, max_iterations=20))
    database = Database(db_url)
    try:
        worker = start_worker(db_url, tmp_path / "w.log", started)
        deadline = time.monotonic() + 600
        done_before = 0
        while time.monotonic() < deadline:  # wait for its first commit: it is now mid-batch
            with database.sessions() as s:
                run = s.get(Run, run_id)
                assert run is not None
                if run.iteration >= 1:
                    done_before = run.iteration
                    break
            time.sleep(0.2)
        assert done_before >= 1, "the worker never committed an iteration"
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=600) == 0
        run = assert_consistent(database, run_id)
        assert run.status == "queued" and run.lease_owner is None
        assert run.iteration > done_before, "the batch in flight was not finished and committed"
    finally:
        database.dispose()
