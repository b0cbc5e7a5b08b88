"""A real `instructforge worker` process on a scripted backend, able to pause at a named point.

A test-only hook for fault-injection timing: to kill -9 the worker *while* it commits an
iteration or publishes an export, the test must know that it is there now. With
`FAULT_POINT=<point>` the worker writes `FAULT_MARKER` on reaching the point and then sleeps
`FAULT_PAUSE_S` (once: a marker already written means the fault was injected). The backend is
scripted because these tests are about leases and storage; tests/e2e/test_crash_safety.py
kills a worker on the real model.

Points: `commit` (an iteration's rows flushed, not committed), `batch` (holding a claimed run,
inside the backend call), `export` (files and items written, not renamed or committed),
`published` (renamed into place, not committed).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

from generators.backends.base import Backend
from generators.backends.scripted import ScriptedBackend
from service.export import build
from service.runs import worker
from service.runs.config import RunConfig
from service.settings import Settings, get_settings
from service.storage.db import Database
from tests.service.scripted_run import reply


def pause(point: str) -> None:
    marker = Path(os.environ.get("FAULT_MARKER", "/nonexistent/marker"))
    if os.environ.get("FAULT_POINT") != point or marker.exists():
        return
    marker.write_text(point)
    time.sleep(float(os.environ.get("FAULT_PAUSE_S", "60")))


def backend(config: RunConfig, settings: Settings) -> Backend:
    def answer(prompt: str) -> str:
        pause("batch")
        return reply(prompt)

    return ScriptedBackend(answer)


def install_pauses() -> None:
    commit_iteration, publish = worker.commit_iteration, build._publish

    def commit(session: Any, **kwargs: Any) -> Any:
        stored = commit_iteration(session, **kwargs)
        session.flush()  # the rows are at the server, the transaction still open
        pause("commit")
        return stored

    def publish_then_pause(tmp: Path, final: Path) -> None:
        pause("export")
        publish(tmp, final)
        pause("published")

    worker.commit_iteration = commit  # type: ignore[assignment]
    build._publish = publish_then_pause  # type: ignore[assignment]


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    install_pauses()
    settings = get_settings()
    database = Database(settings.database_url)
    w = worker.Worker(settings=settings, database=database, backend_factory=backend)
    w.install_signal_handlers()
    try:
        w.run_forever()
    finally:
        database.dispose()


if __name__ == "__main__":
    main()
