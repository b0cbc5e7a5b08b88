"""The background worker: claims jobs with a lease (runs, the batch runs of `/v1/generate`,
dataset exports) and works them; each iteration of a run is committed whole.

Killed at any point, it loses at most the batch in flight: an iteration's rows are written in
one transaction guarded by the lease, and the next worker resumes from what was committed; an
export is rebuilt from scratch by the next worker once the lease expires. A lost database
connection is no fault of the job: it goes back to the queue, never to `failed`; so does a run
whose shared near-duplicate index (Redis) cannot answer (unreachable, or its copy rebuilt under
the batch: ``filters.errors.IndexUnavailable``) or whose batch got no answer from inference at
all (every request refused, timed out or 5xx after the backend's retries:
``InferenceUnavailable``; that batch is not committed, so an outage leaves no iteration of
errors and no `idle` failure). The worker then waits a poll before claiming again, so an outage
neither fails runs nor spins.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from filters.errors import FilterError, IndexUnavailable
from generators.backends.base import Backend
from generators.backends.openai import failed_unreachable
from generators.errors import BackendError, GeneratorError
from service.errors import InferenceUnavailable, LeaseLost, ServiceError
from service.export.build import build_version
from service.heartbeat import heartbeat, owner_id
from service.reports.collapse import check_stop_rules
from service.runs.budgets import Usage, exhausted
from service.runs.config import RunConfig
from service.runs.pipeline import IterationOutcome, RunPipeline, make_run_backend, open_pipeline
from service.settings import Settings
from service.statuses import RunStatus
from service.storage.db import Database, DBAPIError, is_connection_lost
from service.storage.export_jobs import ExportJob, claim_export
from service.storage.iterations import commit_iteration
from service.storage.models import Run
from service.storage.runs import (
    add_event,
    claim_run,
    get_run,
    hand_back,
    release_lease,
    renew_lease,
)

log = logging.getLogger(__name__)
MAX_IDLE_ITERATIONS = 25  # a run that accepts nothing this many times in a row is stuck
BackendFactory = Callable[[RunConfig, Settings], Backend]
ProgressHook = Callable[[Run, IterationOutcome], None]


def worker_id() -> str:
    return owner_id("worker")


@dataclass
class Worker:
    settings: Settings
    database: Database
    owner: str = field(default_factory=worker_id)
    backend_factory: BackendFactory = make_run_backend
    on_iteration: ProgressHook | None = None
    stop_requested: threading.Event = field(default_factory=threading.Event)
    _backend: Backend | None = None
    _backend_key: str | None = None

    @property
    def backend(self) -> Backend | None:
        """The backend in use now, if any (read by the worker's metrics)."""
        return self._backend

    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT: finish and commit the batch in flight, then stop."""

        def handler(signum: int, _frame: object) -> None:
            log.info("signal %s: stopping after the current batch", signum)
            self.stop_requested.set()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def run_forever(self, *, once: bool = False) -> None:
        """Claim and work jobs until stopped (or, with once, until nothing is claimable).

        Runs are claimed first (batch runs before bootstrap runs), then exports.
        """
        log.info("worker %s started", self.owner)
        try:
            while not self.stop_requested.is_set():
                try:
                    worked = self.work_one()
                except DBAPIError as exc:  # the database is away: wait, then claim again
                    log.warning("database error between jobs: %s", exc)
                    worked = False
                if worked:
                    continue
                if once:
                    return
                self.stop_requested.wait(self.settings.poll_seconds)
        finally:
            self.close()

    def work_one(self) -> bool:
        """Claim one job and work it; False when nothing was claimable."""
        run_id = self.claim()
        if run_id is not None:
            return self.work(run_id)
        with self.database.transaction() as session:
            job = claim_export(session, owner=self.owner, lease_seconds=self.settings.lease_seconds)
        if job is None:
            return False
        self.export(job)
        return True

    def export(self, job: ExportJob) -> None:
        """Build a claimed dataset version (from scratch: a dead builder's files are cleared)."""
        log.info("building %s v%s (version id %s)", job.dataset, job.version, job.version_id)
        try:
            build_version(
                self.database,
                version_id=job.version_id,
                datasets_dir=self.settings.datasets_dir,
                owner=self.owner,
                lease_seconds=self.settings.lease_seconds,
            )
        except LeaseLost as exc:
            log.warning("%s", exc)
        except DBAPIError as exc:
            if not is_connection_lost(exc):
                raise
            # Not marked failed: the lease expires and the next claim rebuilds it.
            log.warning("export %s: database connection lost: %s", job.version_id, exc)
        except Exception:  # recorded on the version as `failed` by build_version
            log.exception("export of version id %s failed", job.version_id)

    def claim(self) -> int | None:
        with self.database.transaction() as session:
            run_id = claim_run(session, owner=self.owner, lease_seconds=self.settings.lease_seconds)
            if run_id is not None:
                add_event(session, run_id, "claimed", f"claimed by {self.owner}")
        return run_id

    def work(self, run_id: int) -> bool:
        """Work one claimed run until it completes, is paused or cancelled, or we stop.

        Returns:
            False when the run went back to the queue because the shared index could not
            answer (the caller waits before claiming again), else True.
        """
        try:
            with self._heartbeat(run_id):
                pipeline = self._pipeline(run_id)
                self._loop(run_id, pipeline)
        except LeaseLost as exc:
            log.warning("%s", exc)
        except DBAPIError as exc:
            if not is_connection_lost(exc):
                self._fail(run_id, f"{type(exc).__name__}: {exc}")
                return True
            log.warning("run %s: database connection lost, handing it back: %s", run_id, exc)
            with contextlib.suppress(DBAPIError):  # else its lease expires and it is retaken
                self._release(run_id, RunStatus.QUEUED, "database connection lost: run handed back")
        except (IndexUnavailable, InferenceUnavailable) as exc:  # the batch is dropped
            log.warning("run %s: %s; handing it back", run_id, exc)
            if isinstance(exc, InferenceUnavailable):
                self.close()  # built during the outage: its probes of the servers are stale
            with contextlib.suppress(DBAPIError):
                self._hand_back(run_id, f"{exc}: run handed back")
            return False
        except (ServiceError, GeneratorError, FilterError, ValueError, OSError) as exc:
            self._fail(run_id, f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # the worker survives a bad run; the run records why
            log.exception("run %s failed", run_id)
            self._fail(run_id, f"unexpected {type(exc).__name__}: {exc}")
        return True

    def _pipeline(self, run_id: int) -> RunPipeline:
        return open_pipeline(
            self.database, run_id, settings=self.settings, backend_for=self._backend_for
        )

    def _backend_for(self, config: RunConfig) -> Backend:
        # One engine per process: reuse it while runs ask for the same backend and model.
        key = f"{config.backend}|{config.model}|{sorted(config.backend_options.items())}"
        if self._backend is None or key != self._backend_key:
            self.close()
            self._backend = self.backend_factory(config, self.settings)
            self._backend_key = key
        return self._backend

    def _loop(self, run_id: int, pipeline: RunPipeline) -> None:
        idle = 0
        while True:
            with self.database.sessions() as session:
                run = get_run(session, run_id)
            if run.lease_owner != self.owner or run.status != RunStatus.RUNNING:
                self._release(run_id, None, f"stopping: run is {run.status}")
                return
            done = self._finished(run, pipeline.config, idle)
            if done is not None:
                status, why, data = done
                self._release(run_id, status, why, data)
                return
            if self.stop_requested.is_set():
                self._release(
                    run_id, RunStatus.QUEUED, "worker stopping: run handed back to the queue"
                )
                return
            outcome = pipeline.step(run.iteration + 1, room=run.target_tasks - run.accepted_count)
            check_answered(outcome, self._servers(pipeline.config))
            with self.database.transaction() as session:
                stored = commit_iteration(
                    session,
                    run=run,
                    owner=self.owner,
                    lease_seconds=self.settings.lease_seconds,
                    outcome=outcome,
                )
            pipeline.absorb(stored)
            if self._paused_by_stop_rule(run_id, pipeline.config):
                return
            idle = 0 if outcome.accepted else idle + 1
            if self.on_iteration is not None:
                with self.database.sessions() as session:
                    fresh = get_run(session, run_id)
                self.on_iteration(fresh, outcome)

    def _paused_by_stop_rule(self, run_id: int, config: RunConfig) -> bool:
        """Pause the run, with the reason stored as a ``stop_rule`` event, if its radar says so."""
        if not config.stop_rules.active:
            return False
        with self.database.sessions() as session:
            found = check_stop_rules(session, run_id, config.stop_rules)
        if found is None:
            return False
        why, evidence = found
        with self.database.transaction() as session:
            release_lease(session, run_id=run_id, owner=self.owner, status=RunStatus.PAUSED)
            add_event(session, run_id, "stop_rule", why, evidence)
        log.info("run %s paused: %s", run_id, why)
        return True

    @staticmethod
    def _finished(
        run: Run, config: RunConfig, idle: int
    ) -> tuple[RunStatus, str, dict[str, Any]] | None:
        """Whether the run stops before its next batch: (status, why, the event's data with
        ``stop_reason``), checked in order target, max_iterations, budgets, idleness."""
        if run.accepted_count >= run.target_tasks:
            why = f"target reached: {run.accepted_count} accepted"
            return RunStatus.COMPLETED, why, {"stop_reason": "target_tasks"}
        if config.max_iterations is not None and run.iteration >= config.max_iterations:
            why = f"max_iterations {config.max_iterations} reached"
            return RunStatus.COMPLETED, why, {"stop_reason": "max_iterations"}
        usage = Usage(run.prompt_tokens, run.completion_tokens, run.wall_seconds)
        limit = exhausted(config.budgets, config.model, usage)
        if limit is not None:
            return RunStatus.COMPLETED, limit.message, {"stop_reason": limit.reason, **limit.data}
        if idle >= MAX_IDLE_ITERATIONS:
            why = f"no task accepted in {idle} iterations in a row"
            return RunStatus.FAILED, why, {"stop_reason": "idle"}
        return None

    def _heartbeat(self, run_id: int) -> contextlib.AbstractContextManager[None]:
        """Renew the lease in the background for as long as we hold the run."""

        def renew() -> bool:
            with self.database.transaction() as session:
                return renew_lease(
                    session,
                    run_id=run_id,
                    owner=self.owner,
                    lease_seconds=self.settings.lease_seconds,
                )

        return heartbeat(renew, every_s=self.settings.heartbeat_seconds, name=f"run-{run_id}")

    def _release(
        self, run_id: int, status: RunStatus | None, why: str, data: dict[str, Any] | None = None
    ) -> None:
        with self.database.transaction() as session:
            release_lease(session, run_id=run_id, owner=self.owner, status=status)
            add_event(session, run_id, status or "released", why, data)
        log.info("run %s: %s", run_id, why)

    def _servers(self, config: RunConfig) -> str:
        """The inference servers a run's requests go to, as configured (openai runs only)."""
        if config.backend != "openai":
            return ""
        url = config.backend_options.get("base_url") or self.settings.openai_base_url or ""
        return ",".join(url) if isinstance(url, list) else str(url)

    def _hand_back(self, run_id: int, why: str) -> None:
        """Back to the queue after an outage, claimable again after the settings' wait."""
        with self.database.transaction() as session:
            hand_back(
                session,
                run_id=run_id,
                owner=self.owner,
                retry_after_s=self.settings.outage_retry_seconds,
                why=why,
            )
        log.info("run %s: %s", run_id, why)

    def _fail(self, run_id: int, error: str) -> None:
        with self.database.transaction() as session:
            release_lease(
                session,
                run_id=run_id,
                owner=self.owner,
                status=RunStatus.FAILED,
                error=error[:4000],
            )
            add_event(session, run_id, RunStatus.FAILED, error[:4000])
        log.error("run %s failed: %s", run_id, error)

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()
            self._backend = None
            self._backend_key = None


def check_answered(outcome: IterationOutcome, servers: str = "") -> None:
    """Stop a batch that inference did not really answer, before it is committed.

    ``servers`` names where the requests went (for the message), when known.

    Raises:
        InferenceUnavailable: a request of the batch gave up on the servers
            (:func:`generators.backends.openai.failed_unreachable`): the batch is dropped
            whole, since committing it would store the candidates whose later stages failed
            as rejected junk, or an iteration of errors counted idle.
        BackendError: every request failed for itself (a 4xx, a malformed answer, a host no
            resolver knows): the next batch would fail the same, so the run fails now with
            the last failure rather than after 25 idle iterations.
    """
    records = outcome.result.records
    at = f" at {servers}" if servers else ""
    failed = [r for r in records if r.finish_reason == "error"]
    down = [r for r in failed if failed_unreachable(r.retry_log)]
    if down:
        raise InferenceUnavailable(
            f"inference unavailable{at}: {len(down)} of {len(records)} requests of the batch "
            f"gave up on the servers (last: {down[-1].retry_log[-1]})"
        )
    if records and len(failed) == len(records):
        last = failed[-1].retry_log[-1] if failed[-1].retry_log else "no answer"
        raise BackendError(f"every request of the batch{at} failed (last: {last})")
