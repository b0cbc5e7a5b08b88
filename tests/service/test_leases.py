"""Claiming runs: one worker per run at a time, expired leases reclaimed, stale commits refused."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import update

from service.storage.db import Database
from service.storage.models import Run, SeedSet, utcnow
from service.storage.runs import (
    LeaseLost,
    advance_iteration,
    change_status,
    claim_run,
    create_run,
    renew_lease,
)


def _runs(db: Database, n: int) -> list[int]:
    with db.transaction() as s:
        seed_set = SeedSet(name="s", content_hash="0" * 64, source_format="x", task_count=0)
        s.add(seed_set)
        s.flush()
        return [
            create_run(
                s,
                seed_set_id=seed_set.id,
                config={},
                config_hash="h",
                policy_version="v1",
                target_tasks=1,
            ).id
            for _ in range(n)
        ]


def _claim(db: Database, owner: str, lease: int = 60) -> int | None:
    with db.transaction() as s:
        return claim_run(s, owner=owner, lease_seconds=lease)


def test_each_run_claimed_once(database: Database) -> None:
    r1, r2 = _runs(database, 2)
    assert _claim(database, "a") == r1
    assert _claim(database, "b") == r2
    assert _claim(database, "c") is None


def test_expired_lease_is_reclaimed_and_old_owner_cannot_commit(database: Database) -> None:
    (r1,) = _runs(database, 1)
    assert _claim(database, "a") == r1
    with database.transaction() as s:
        s.execute(update(Run).values(lease_expires_at=utcnow() - timedelta(seconds=1)))
    assert _claim(database, "b") == r1
    with pytest.raises(LeaseLost), database.transaction() as s:
        advance_iteration(
            s,
            run_id=r1,
            owner="a",
            expected_iteration=0,
            lease_seconds=60,
            counters={"accepted_count": 1},
        )
    with database.transaction() as s:
        assert not renew_lease(s, run_id=r1, owner="a", lease_seconds=60)
        assert renew_lease(s, run_id=r1, owner="b", lease_seconds=60)
        advance_iteration(
            s,
            run_id=r1,
            owner="b",
            expected_iteration=0,
            lease_seconds=60,
            counters={"accepted_count": 1},
        )
    with pytest.raises(LeaseLost), database.transaction() as s:
        # The same iteration cannot be committed twice, even by its owner.
        advance_iteration(
            s,
            run_id=r1,
            owner="b",
            expected_iteration=0,
            lease_seconds=60,
            counters={"accepted_count": 1},
        )
    with database.sessions() as s:
        run = s.get(Run, r1)
        assert run is not None and run.iteration == 1 and run.accepted_count == 1


def test_paused_and_cancelled_runs_are_not_claimed(database: Database) -> None:
    r1, r2 = _runs(database, 2)
    with database.transaction() as s:
        change_status(s, r1, "pause")
        change_status(s, r2, "cancel")
    assert _claim(database, "a") is None
    with database.transaction() as s:
        change_status(s, r1, "resume")
    assert _claim(database, "a") == r1


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_concurrent_claims_on_postgres_never_share_a_run(database: Database) -> None:
    run_ids = _runs(database, 40)
    claimed: dict[str, list[int]] = {f"w{i}": [] for i in range(8)}
    barrier = threading.Barrier(8)

    def work(owner: str) -> None:
        barrier.wait()
        while (rid := _claim(database, owner)) is not None:
            claimed[owner].append(rid)

    threads = [threading.Thread(target=work, args=(o,)) for o in claimed]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    everything = [r for rs in claimed.values() for r in rs]
    assert sorted(everything) == sorted(run_ids)
    assert sum(1 for rs in claimed.values() if rs) >= 2
