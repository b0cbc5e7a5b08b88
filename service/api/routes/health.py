"""Liveness, readiness and Prometheus metrics (no API key needed)."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from service.api.deps import DatabaseDep, IsAdmin
from service.api.errors import error_responses
from service.statuses import TaskStatus
from service.storage import migrate
from service.storage import runs as run_store
from service.storage.db import Database

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "Not ready"}})
def readyz(database: DatabaseDep, is_admin: IsAdmin) -> JSONResponse:
    """Ready when the database answers and its schema is at the code's head revision.

    Without a key the answer says only ready or not and a generic reason; the details (driver
    error, revisions) go to an admin key alone, since they name hosts and databases.
    """
    try:
        current = migrate.current_revision(database.engine)  # a round trip: the database answers
    except Exception as exc:  # any driver error means "not ready", never a 500
        detail = str(exc)[:200] if is_admin else "the database does not answer"
        return _not_ready("db_unreachable", detail)
    head = migrate.head_revision(database.url)
    if current != head:
        detail = (
            f"database at {current}, code at {head}: run `instructforge db upgrade`"
            if is_admin
            else "the database schema is not up to date"
        )
        return _not_ready("migrations_pending", detail)
    return JSONResponse(
        {"status": "ready", "revision": current} if is_admin else {"status": "ready"}
    )


def _not_ready(code: str, message: str) -> JSONResponse:
    return JSONResponse({"status": "unavailable", "code": code, "message": message}, 503)


class RunCountersCollector(Collector):
    """Reads the runs' own counters at scrape time (one row per run), so every worker
    process counts and no scrape aggregates the tasks or generations tables."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self.database.reads() as session:
            totals = run_store.run_totals(session)
        runs = GaugeMetricFamily("instructforge_runs", "Runs by status", labels=["status"])
        for status, n in sorted(totals.runs_by_status.items()):
            runs.add_metric([status], n)
        yield runs
        tasks = GaugeMetricFamily(
            "instructforge_machine_tasks",
            "Machine tasks by status and rejecting rule",
            labels=["status", "rule"],
        )
        tasks.add_metric([TaskStatus.ACCEPTED, ""], totals.accepted)
        for rule, n in sorted(totals.rejected_by_rule.items()):
            tasks.add_metric([TaskStatus.REJECTED, rule], n)
        yield tasks
        yield GaugeMetricFamily(
            "instructforge_parse_failures", "Completions that did not parse", totals.parse_failures
        )
        tokens = GaugeMetricFamily("instructforge_tokens", "Tokens used", labels=["kind"])
        tokens.add_metric(["prompt"], totals.prompt_tokens)
        tokens.add_metric(["completion"], totals.completion_tokens)
        yield tokens
        yield GaugeMetricFamily(
            "instructforge_inference_seconds",
            "Seconds spent in backend calls",
            totals.inference_seconds,
        )


@router.get("/metrics", response_class=Response, responses=error_responses(503))
def metrics(database: DatabaseDep) -> Response:
    """Prometheus text format: the runs' counters. The API process holds no backend: per-server
    inference metrics are on each worker's own port (`INSTRUCTFORGE_WORKER_METRICS_PORT`)."""
    registry = CollectorRegistry()
    registry.register(RunCountersCollector(database))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
