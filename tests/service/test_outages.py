"""A run whose inference or shared index is away goes back to the queue, not to `failed`.

Real databases (both kinds), the real worker with its real backend factory, and real sockets:
a refused port stands for a server or a Redis that is down, a local HTTP server that answers
404 to everything for a server that refuses the requests themselves.
"""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console
from sqlalchemy import select

from generators.config import BootstrapConfig
from service.runs.config import RunConfig
from service.runs.foreground import run_in_foreground
from service.runs.worker import Worker
from service.settings import Settings
from service.statuses import RunStatus
from service.storage.db import Database
from service.storage.models import Generation, RunEvent, Task
from service.storage.runs import claim_run, get_run, release_lease
from tests.service.fake_openai import FakeOpenAI, serving
from tests.service.scripted_run import queued_run, reply

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


def test_requests_refused_for_themselves_fail_the_run_at_once(
    database: Database, refusing_server: str
) -> None:
    """A 404 fails the same again: the run fails at its first batch with the last failure and
    the server named (it used to commit 25 iterations of errors and fail as 'no task accepted
    in 25 iterations'), rather than wait in the queue for a server that is up."""
    run_id = openai_run(database, base_url=refusing_server)
    worker = Worker(settings=Settings(openai_base_url=refusing_server), database=database)
    assert worker.work_one() is True
    with database.sessions() as s:
        run = get_run(s, run_id)
        assert run.status == RunStatus.FAILED and run.iteration == 0
        assert "HTTP 404" in (run.error or "") and refusing_server in (run.error or "")
    assert records_of(database, run_id) == 0


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


def test_a_server_dying_after_the_instruction_stage_stores_no_candidate_as_junk(
    database: Database,
) -> None:
    """The server answers the instruction stage, then is down for the rest of the batch
    (classification and instances all 503 after retries). The candidates it parsed are good
    tasks: committing them rejected as 'no instance was generated (backend_error)' loses them
    for good (and counts the iteration idle). The batch must go back like a batch that got no
    answer at all."""
    with serving(FakeOpenAI(reply, die_after_instructions=True)) as fake:
        run_id = openai_run(database, base_url=fake.url)
        worker = Worker(settings=Settings(openai_base_url=fake.url), database=database)
        worker.on_iteration = lambda _run, _outcome: worker.stop_requested.set()
        worker.work_one()
    with database.sessions() as s:
        junk = s.scalars(
            select(Task.instruction).where(
                Task.run_id == run_id, Task.reject_reason.contains("backend_error")
            )
        ).all()
        run = get_run(s, run_id)
    assert junk == [], f"stored as rejected for an outage: {junk}"
    assert run.iteration == 0


def test_a_run_whose_server_is_down_does_not_starve_the_other_queued_runs(
    database: Database,
) -> None:
    """Run 1's only server is down, run 2's is up. The claim takes the lowest id first, so a
    worker that hands run 1 back and polls claims run 1 again, forever: run 2 (and every run
    queued after run 1, a /v1/generate batch behind a down batch too) never starts."""
    with serving(FakeOpenAI(reply)) as fake:
        down = openai_run(database, base_url=REFUSED)
        up = openai_run(database, base_url=fake.url)
        worker = Worker(settings=Settings(poll_seconds=0.05), database=database)
        worker.on_iteration = lambda _run, _outcome: worker.stop_requested.set()
        thread = threading.Thread(target=worker.run_forever, daemon=True)
        thread.start()
        thread.join(timeout=20)
        worker.stop_requested.set()
        thread.join(timeout=30)
    with database.sessions() as s:
        claims = s.scalars(
            select(RunEvent.id).where(RunEvent.run_id == down, RunEvent.kind == "claimed")
        ).all()
        assert get_run(s, up).iteration >= 1, f"run {down} was claimed {len(claims)} times"


@pytest.mark.parametrize("serves", ["chat", "completions"])
def test_a_server_back_after_an_outage_is_asked_what_it_serves(
    database: Database, serves: str
) -> None:
    """The backend probes its servers once, when built: built during the outage it fell back
    to /v1/completions for everything and recorded engine version 'unknown', and the worker
    keeps that backend for the run's next claim. Once the server is back, a chat-only server
    gets every request on /v1/completions (404: the run fails idle after 25 batches), and a
    completions server's generations carry the outage's provenance."""
    with socket.socket() as probe:  # a free port, nothing listening yet
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    run_id = openai_run(database, base_url=url)
    worker = Worker(
        settings=Settings(openai_base_url=url, outage_retry_seconds=0), database=database
    )
    assert worker.work_one() is False  # down: handed back
    fake = FakeOpenAI(reply, completions=serves == "completions", chat=serves == "chat")
    with serving(fake, port=port):
        worker.on_iteration = lambda _run, _outcome: worker.stop_requested.set()
        assert worker.work_one() is True
    with database.sessions() as s:
        run = get_run(s, run_id)
        versions = set(
            s.scalars(select(Generation.engine_version).where(Generation.run_id == run_id))
        )
    assert run.accepted_count > 0 and versions == {"0.0-fake"}


def test_a_server_name_that_does_not_resolve_fails_the_run(database: Database) -> None:
    """A host name that no resolver knows (RFC 2606 .invalid: a typo in the URL) fails the
    same every time; handed back, the run waits in the queue forever with no error."""
    run_id = openai_run(database, base_url="http://no-such-host.invalid:8000")
    worker = Worker(settings=Settings(), database=database)
    worker.work_one()
    with database.sessions() as s:
        run = get_run(s, run_id)
    assert run.status == RunStatus.FAILED and "no-such-host.invalid" in (run.error or "")


def test_the_foreground_run_says_why_it_stopped(database: Database, tmp_path: Path) -> None:
    """`instructforge run` against a server that is down: the user must be told that no
    server answered (the run went back to the queue, where no worker may ever take it), not
    only 'run 1 queued: 0 accepted, 0 rejected, 0 parse failures'."""
    config = tmp_path / "run.json"
    config.write_text(
        json.dumps({"backend_options": {"base_url": REFUSED, "max_retries": 1, "backoff_s": 0.01}})
    )
    queued_run(database, RunConfig(seed_set="default"))  # imports the seed set
    console = Console(record=True, width=200)
    settings = Settings(database_url=database.url, openai_base_url=REFUSED)
    run_in_foreground(
        settings,
        console,
        seed_set="default",
        target=5,
        backend="openai",
        model="served-model",
        prompts=3,
        seed=0,
        config_file=config,
    )
    assert "inference unavailable" in console.export_text()


def test_a_run_handed_back_is_claimable_again_after_the_wait(database: Database) -> None:
    """Held back for `outage_retry_seconds`, not for good: no claim takes it before (an idle
    worker finds nothing), the first after takes it; the foreground `instructforge run`, which
    names its run, may take it at once."""
    run_id = openai_run(database, base_url=REFUSED)
    settings = Settings(openai_base_url=REFUSED, outage_retry_seconds=1.5)
    worker = Worker(settings=settings, database=database)
    assert worker.work_one() is False
    assert worker.claim() is None
    with database.transaction() as s:
        assert claim_run(s, owner="foreground", lease_seconds=60, run_id=run_id) == run_id
        release_lease(s, run_id=run_id, owner="foreground", status=RunStatus.QUEUED)
    assert worker.work_one() is False  # handed back again, held back again
    assert worker.claim() is None
    time.sleep(1.6)
    assert worker.claim() == run_id
