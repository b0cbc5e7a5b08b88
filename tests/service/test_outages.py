"""A run whose inference or shared index is away goes back to the queue, not to `failed`.

Real databases (both kinds), the real worker with its real backend factory, and real sockets:
a refused port stands for a server or a Redis that is down, a local HTTP server that answers
404 to everything for a server that refuses the requests themselves.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from generators.config import BootstrapConfig
from service.runs.config import RunConfig
from service.runs.worker import MAX_IDLE_ITERATIONS, Worker
from service.settings import Settings
from service.statuses import RunStatus
from service.storage.db import Database
from service.storage.models import Generation, RunEvent
from service.storage.runs import get_run
from tests.service.scripted_run import queued_run

REFUSED = "http://127.0.0.1:9"  # the discard port: nothing listens, connections are refused


def openai_run(database: Database, **options: object) -> int:
    config = RunConfig(
        seed_set="default",
        backend="openai",
        model="served-model",
        backend_options={"max_retries": 1, "backoff_s": 0.01, **options},
        bootstrap=BootstrapConfig(prompts_per_iteration=3),
        target_tasks=10,
    )
    return queued_run(database, config)


def last_event(database: Database, run_id: int) -> RunEvent:
    with database.sessions() as s:
        event = s.scalars(
            select(RunEvent).where(RunEvent.run_id == run_id).order_by(RunEvent.id.desc())
        ).first()
    assert event is not None
    return event


def records_of(database: Database, run_id: int) -> int:
    with database.sessions() as s:
        return len(s.scalars(select(Generation).where(Generation.run_id == run_id)).all())


def assert_handed_back(database: Database, run_id: int, why: str) -> None:
    with database.sessions() as s:
        run = get_run(s, run_id)
        assert run.status == RunStatus.QUEUED and run.lease_owner is None and run.error is None
        assert run.iteration == 0 and run.parse_failure_count == 0
    event = last_event(database, run_id)
    assert event.kind == "queued" and "handed back" in event.message and why in event.message
    assert records_of(database, run_id) == 0  # the dropped batch left no row


@pytest.mark.parametrize("base_url", [REFUSED, f"{REFUSED},http://127.0.0.1:7"])
def test_inference_away_hands_the_run_back_with_nothing_stored(
    database: Database, base_url: str
) -> None:
    """Every request of the batch refused (one server, or a fleet all down): the batch is not
    committed as an iteration of errors (which used to count idle, and after 25 such failed
    the run as 'no task accepted'), the run waits in the queue with the reason, and the
    worker reports no progress so that it waits a poll before claiming again."""
    run_id = openai_run(database, base_url=base_url)
    worker = Worker(settings=Settings(openai_base_url=REFUSED), database=database)
    assert worker.work_one() is False
    assert_handed_back(database, run_id, "inference unavailable")
    assert "ConnectError" in last_event(database, run_id).message


@pytest.fixture
def refusing_server() -> Iterator[str]:
    """A server that is up and answers 404 to every request (a wrong model or path)."""

    class NotFound(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_POST = _answer

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_requests_refused_for_themselves_are_committed_not_retried_forever(
    database: Database, refusing_server: str
) -> None:
    """A 404 fails the same again: the batches are committed with their failures and the run
    ends as before (idle), rather than waiting in the queue for a server that is up."""
    run_id = openai_run(database, base_url=refusing_server)
    worker = Worker(settings=Settings(openai_base_url=refusing_server), database=database)
    assert worker.work_one() is True
    with database.sessions() as s:
        run = get_run(s, run_id)
        assert run.status == RunStatus.FAILED and run.iteration == MAX_IDLE_ITERATIONS
    assert records_of(database, run_id) > 0


def test_redis_away_hands_the_run_back_and_the_worker_waits(database: Database) -> None:
    """The shared near-duplicate index unreachable: the same hand-back, before any batch."""
    run_id = queued_run(
        database,
        RunConfig(
            seed_set="default",
            bootstrap=BootstrapConfig(prompts_per_iteration=1),
            target_tasks=100,
        ),
    )
    worker = Worker(
        settings=Settings(redis_url=f"redis://{REFUSED.removeprefix('http://')}/0"),
        database=database,
        backend_factory=lambda _c, _s: pytest.fail("no batch may be generated"),
    )
    assert worker.work_one() is False
    assert_handed_back(database, run_id, "shared index")
