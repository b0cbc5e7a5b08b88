"""Liveness, readiness and Prometheus metrics (no API key needed)."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select, text

from service.api.deps import DatabaseDep, IsAdmin
from service.storage import migrate
from service.storage.db import Database
from service.storage.models import Generation, Run, Task

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
        with database.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        current = migrate.current_revision(database.engine)
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


class DatabaseCollector(Collector):
    """Reads the numbers from the database at scrape time, so every worker process counts."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self.database.sessions() as s:
            runs = GaugeMetricFamily("instructforge_runs", "Runs by status", labels=["status"])
            for status, n in s.execute(select(Run.status, func.count()).group_by(Run.status)):
                runs.add_metric([status], n)
            yield runs
            tasks = GaugeMetricFamily(
                "instructforge_machine_tasks",
                "Machine tasks by status and rejecting rule",
                labels=["status", "rule"],
            )
            for status, rule, n in s.execute(
                select(Task.status, Task.reject_rule, func.count())
                .where(Task.origin == "machine")
                .group_by(Task.status, Task.reject_rule)
            ):
                tasks.add_metric([status, rule or ""], n)
            yield tasks
            tokens = GaugeMetricFamily("instructforge_tokens", "Tokens used", labels=["kind"])
            p, c = s.execute(
                select(
                    func.coalesce(func.sum(Generation.prompt_tokens), 0),
                    func.coalesce(func.sum(Generation.completion_tokens), 0),
                )
            ).one()
            tokens.add_metric(["prompt"], p)
            tokens.add_metric(["completion"], c)
            yield tokens
            latency = GaugeMetricFamily(
                "instructforge_backend_latency_seconds",
                "Backend call latency by backend and stage (mean, max, count)",
                labels=["backend", "stage", "stat"],
            )
            for backend, stage, mean, mx, n in s.execute(
                select(
                    Generation.backend,
                    Generation.stage,
                    func.avg(Generation.latency_s),
                    func.max(Generation.latency_s),
                    func.count(),
                ).group_by(Generation.backend, Generation.stage)
            ):
                latency.add_metric([backend, stage, "mean"], float(mean or 0))
                latency.add_metric([backend, stage, "max"], float(mx or 0))
                latency.add_metric([backend, stage, "count"], n)
            yield latency


@router.get("/metrics", response_class=Response)
def metrics(database: DatabaseDep) -> Response:
    """Prometheus text format."""
    registry = CollectorRegistry()
    registry.register(DatabaseCollector(database))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
