"""Runs: creation, the lease-based claim, heartbeats, status changes, progress."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    Connection,
    Select,
    and_,
    case,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from service.errors import Conflict, LeaseLost, NotFound
from service.statuses import TERMINAL_RUN_STATUSES, RunStatus
from service.storage import leases
from service.storage.db import changed_rows
from service.storage.leases import expired_or_queued, lease_values
from service.storage.models import Generation, Run, RunEvent, utcnow
from service.storage.pages import Row, columns_of, dicts_of, id_in, paged, read_page, where_equal


def create_run(
    session: Session,
    *,
    seed_set_id: int,
    config: dict[str, Any],
    config_hash: str,
    policy_version: str,
    target_tasks: int,
    kind: str = "bootstrap",
    status: RunStatus = RunStatus.QUEUED,
) -> Run:
    run = Run(
        kind=kind,
        seed_set_id=seed_set_id,
        status=status,
        config=config,
        config_hash=config_hash,
        policy_version=policy_version,
        target_tasks=target_tasks,
    )
    session.add(run)
    session.flush()
    add_event(session, run.id, "created", f"{kind} run created", {"config_hash": config_hash})
    return run


def add_event(
    session: Session,
    run_id: int,
    kind: str,
    message: str,
    data: dict[str, Any] | None = None,
    iteration: int | None = None,
) -> None:
    session.add(
        RunEvent(run_id=run_id, kind=kind, message=message, data=data or {}, iteration=iteration)
    )


def _claimable(now: datetime) -> Any:
    # Bootstrap runs and the batch runs of /v1/generate; cancel/pause apply to the former only.
    return and_(
        Run.kind.in_(("bootstrap", "batch")), expired_or_queued(Run, now, RunStatus.RUNNING)
    )


def claim_run(
    session: Session, *, owner: str, lease_seconds: int, run_id: int | None = None
) -> int | None:
    """Claim one queued run, or a running one whose lease expired (its worker died).

    Batch runs go first (a `/v1/generate` caller is waiting on them), then by id. With run_id,
    only that run is considered (the foreground `instructforge run`). See `leases.claim` for
    how concurrent workers never take the same run.

    Returns:
        The run id, or None when nothing is claimable.
    """
    now = utcnow()
    values = {
        "status": RunStatus.RUNNING,
        **lease_values(owner, lease_seconds, now),
        "started_at": func.coalesce(Run.started_at, now),
    }
    claimable = _claimable(now)
    if run_id is not None:  # asked for by name: a run held back after an outage too
        claimable = and_(
            Run.id == run_id,
            or_(claimable, and_(Run.status == RunStatus.QUEUED, Run.lease_owner.is_(None))),
        )
    batch_first = case((Run.kind == "batch", 0), else_=1)
    return leases.claim(
        session, Run, claimable=claimable, order_by=[batch_first, Run.id], values=values
    )


def renew_lease(session: Session, *, run_id: int, owner: str, lease_seconds: int) -> bool:
    """Extend our lease on a run; False when it is no longer ours (see `leases.renew`)."""
    return leases.renew(session, Run, job_id=run_id, owner=owner, lease_seconds=lease_seconds)


def hand_back(session: Session, *, run_id: int, owner: str, retry_after_s: float, why: str) -> None:
    """Give our run back to the queue after an outage, held back for ``retry_after_s`` seconds
    (its lease time then, with no owner: `leases.expired_or_queued` skips it until that time,
    so the next claims take other runs), with the reason as a `queued` event."""
    session.execute(
        update(Run)
        .where(Run.id == run_id, Run.lease_owner == owner)
        .values(
            status=RunStatus.QUEUED,
            lease_owner=None,
            lease_expires_at=utcnow() + timedelta(seconds=retry_after_s),
        )
    )
    add_event(session, run_id, RunStatus.QUEUED, why)


def release_lease(
    session: Session,
    *,
    run_id: int,
    owner: str,
    status: RunStatus | None = None,
    error: str | None = None,
) -> None:
    """Give our lease on a run up, with its new status and error (nothing if not ours)."""
    values = leases.released(status, terminal=status in TERMINAL_RUN_STATUSES)
    if error is not None:
        values["error"] = error
    session.execute(update(Run).where(Run.id == run_id, Run.lease_owner == owner).values(**values))


def advance_iteration(
    session: Session,
    *,
    run_id: int,
    owner: str,
    expected_iteration: int,
    lease_seconds: int,
    counters: dict[str, float],
) -> None:
    """Bump the iteration and counters, guarded by our lease and the iteration number.

    This is the first statement of an iteration's transaction: if another worker took the run,
    nothing of this iteration is written, so no task is ever stored twice.

    Raises:
        LeaseLost: the run is not ours any more, or the iteration already committed.
    """
    now = utcnow()
    increments = {name: getattr(Run, name) + value for name, value in counters.items()}
    changed = changed_rows(
        session,
        update(Run)
        .where(
            Run.id == run_id,
            Run.lease_owner == owner,
            Run.iteration == expected_iteration,
        )
        .values(
            iteration=Run.iteration + 1,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
            heartbeat_at=now,
            **increments,
        ),
    )
    if changed != 1:
        raise LeaseLost(f"run {run_id}: lease lost before iteration {expected_iteration + 1}")


def get_run(session: Session, run_id: int) -> Run:
    """Raises NotFound when there is no run `run_id`."""
    run = session.get(Run, run_id)
    if run is None:
        raise NotFound(f"no run {run_id}")
    return run


def run_iteration(session: Session, run_id: int) -> int:
    """The run's last committed iteration (0 for none, or no such run)."""
    return session.scalar(select(Run.iteration).where(Run.id == run_id)) or 0


@lru_cache(maxsize=16)
def _runs_by_id(columns: tuple[str, ...], dialect: str) -> Select[Any]:
    return select(*columns_of(Run, columns)).where(id_in(Run.id, dialect))


def read_runs_by_id(
    conn: Connection, ids: list[int], *, columns: tuple[str, ...]
) -> dict[int, Row]:
    """The runs whose id is in `ids` (one statement for any number): id -> a row of `columns`
    (which must include `id`). Ids with no run are absent."""
    stmt = _runs_by_id(columns, conn.dialect.name)
    return {row["id"]: row for row in dicts_of(conn.execute(stmt, {"ids": ids}))}


@lru_cache(maxsize=64)
def _run_page(columns: tuple[str, ...], equal: tuple[str, ...], after: bool) -> Select[Any]:
    return paged(where_equal(select(*columns_of(Run, columns)), Run, equal), Run.id, after)


def read_runs(
    conn: Connection,
    *,
    columns: tuple[str, ...],
    equal: dict[str, Any],
    cursor: str | None,
    limit: int,
) -> tuple[list[Row], str | None]:
    """A page of runs in id order whose columns equal `equal`: rows of `columns` and the next
    page's cursor (None on the last).

    Raises:
        InvalidInput: a cursor this API did not hand out.
    """
    stmt = _run_page(columns, tuple(equal), cursor is not None)
    return read_page(conn, stmt, equal, cursor, limit)


_TRANSITIONS = {
    "cancel": ({RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.PAUSED}, RunStatus.CANCELLED),
    "pause": ({RunStatus.QUEUED, RunStatus.RUNNING}, RunStatus.PAUSED),
    "resume": ({RunStatus.PAUSED}, RunStatus.QUEUED),
}


def actions_for(kind: str, status: str) -> list[str]:
    """The actions (`cancel`, `pause`, `resume`) that `change_status` allows on such a run."""
    if kind != "bootstrap":
        return []
    return [action for action, (allowed, _) in _TRANSITIONS.items() if status in allowed]


def change_status(session: Session, run_id: int, action: str) -> Run:
    """Cancel, pause or resume a run, as one guarded UPDATE (compare-and-set on the status).

    The UPDATE only matches while the run still has the status this request read, so of two
    racing requests exactly one changes the run and records the real old and new status; the
    other is told the status it lost to. A running worker notices at its next batch boundary:
    the batch in flight is kept.

    Raises:
        NotFound: no such run.
        Conflict: the action does not apply to the run's kind or its current status (409).
    """
    allowed, new_status = _TRANSITIONS[action]
    run = get_run(session, run_id)
    if run.kind != "bootstrap":
        raise Conflict(f"run {run_id} is a {run.kind} run: nothing to {action}")
    old_status = run.status
    if old_status not in allowed:
        raise Conflict(f"cannot {action} run {run_id}: it is {old_status}")
    values: dict[str, Any] = {"status": new_status}
    if new_status == RunStatus.CANCELLED:
        values["finished_at"] = utcnow()
    changed = changed_rows(
        session,
        update(Run)
        .where(Run.id == run_id, Run.status == old_status)
        .values(**values)
        .execution_options(synchronize_session=False),
    )
    if changed != 1:
        session.expire(run)
        raise Conflict(f"cannot {action} run {run_id}: it is {get_run(session, run_id).status}")
    add_event(
        session,
        run_id,
        action,
        f"run {action}: {old_status} -> {new_status}",
        {"old_status": old_status, "new_status": new_status},
    )
    session.refresh(run)
    return run


def add_rejections(session: Session, run_id: int, by_rule: dict[str, int]) -> None:
    """Add an iteration's rejections by rule to the run's counters.

    Called after `advance_iteration` in the same transaction, so this writer holds the run's
    row and the read-modify-write cannot interleave with another writer's.
    """
    if not by_rule:
        return
    merged = dict(session.scalar(select(Run.rejected_by_rule).where(Run.id == run_id)) or {})
    for rule, n in by_rule.items():
        merged[rule] = merged.get(rule, 0) + n
    session.execute(update(Run).where(Run.id == run_id).values(rejected_by_rule=merged))


@dataclass
class RunTotals:
    """Counters summed over every run, from the runs' own rows (the worker keeps them in the
    transaction of each iteration): nothing scans tasks or generation calls."""

    runs_by_status: dict[str, int] = field(default_factory=dict)
    accepted: int = 0
    rejected_by_rule: dict[str, int] = field(default_factory=dict)
    parse_failures: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    inference_seconds: float = 0.0


def run_totals(session: Session) -> RunTotals:
    """Every run's counters, summed; one row per run is read."""
    totals = RunTotals()
    rows = session.execute(
        select(
            Run.status,
            Run.accepted_count,
            Run.rejected_by_rule,
            Run.parse_failure_count,
            Run.prompt_tokens,
            Run.completion_tokens,
            Run.inference_seconds,
        )
    )
    for status, accepted, by_rule, parse_failures, prompt, completion, seconds in rows:
        totals.runs_by_status[status] = totals.runs_by_status.get(status, 0) + 1
        totals.accepted += accepted
        for rule, n in (by_rule or {}).items():
            totals.rejected_by_rule[rule] = totals.rejected_by_rule.get(rule, 0) + n
        totals.parse_failures += parse_failures
        totals.prompt_tokens += prompt
        totals.completion_tokens += completion
        totals.inference_seconds += seconds or 0.0
    return totals


def recent_events(session: Session, run_id: int, limit: int = 20) -> list[RunEvent]:
    return list(
        session.scalars(
            select(RunEvent)
            .where(RunEvent.run_id == run_id)
            .order_by(RunEvent.id.desc())
            .limit(limit)
        )
    )


@dataclass(frozen=True)
class MeasuredRun:
    """What an earlier run spent and yielded, from its own counters."""

    id: int
    config: dict[str, Any]
    accepted: int
    iterations: int
    prompt_tokens: int
    completion_tokens: int
    wall_seconds: float
    template_sha256: frozenset[str]  # of its generation calls


def measured_runs(session: Session) -> list[MeasuredRun]:
    """Bootstrap runs that accepted at least one task, oldest first, with the templates their
    generation calls rendered (what :mod:`service.runs.estimate` matches on)."""
    runs = session.execute(
        select(
            Run.id,
            Run.config,
            Run.accepted_count,
            Run.iteration,
            Run.prompt_tokens,
            Run.completion_tokens,
            Run.wall_seconds,
        )
        .where(Run.kind == "bootstrap", Run.accepted_count > 0)
        .order_by(Run.id)
    ).all()
    templates: dict[int, set[str]] = {}
    if runs:
        for run_id, sha in session.execute(
            select(Generation.run_id, Generation.template_sha256)
            .where(Generation.run_id.in_([r[0] for r in runs]))
            .distinct()
        ):
            if run_id is not None:  # the WHERE already says so; the column is nullable
                templates.setdefault(run_id, set()).add(sha)
    return [
        MeasuredRun(
            id=r[0],
            config=dict(r[1] or {}),
            accepted=r[2],
            iterations=r[3],
            prompt_tokens=r[4],
            completion_tokens=r[5],
            wall_seconds=r[6] or 0.0,
            template_sha256=frozenset(templates.get(r[0], ())),
        )
        for r in runs
    ]
