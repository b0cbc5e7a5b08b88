"""`instructforge serve --workers 2`: each process listens on its own SO_REUSEPORT socket.

Real processes: the CLI started as users start it, on a migrated SQLite file; connections made
with plain sockets and attributed to the process holding their server end (psutil reads the
kernel's tables), so what is checked is where the kernel put each connection, not what the
server reports about itself.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.reduction import ForkingPickler
from pathlib import Path
from typing import Any

import psutil
import pytest
from uvicorn.config import STARTUP_FAILURE

from bench.servers import stop_server
from service.api import serve as serve_module
from service.api.serve import REUSE_PORT, bind_reuse_port, serve
from service.demo import free_port, wait_ready

ROOT = Path(__file__).resolve().parents[2]
BURST = 100
# Each process's share of a burst of 100 hashed connections is Binomial(100, 1/2): below 30 with
# probability ~4e-5. One shared socket gave 0/100 and 23/77 (bench/trace_reads.py).
MIN_SHARE = 30

needs_reuse_port = pytest.mark.skipif(not REUSE_PORT, reason="SO_REUSEPORT balances on Linux only")


@needs_reuse_port
def test_pickled_socket_is_a_new_socket_on_the_same_address() -> None:
    """What uvicorn's supervisor sends each process it spawns: a sibling, not a duplicate."""
    with bind_reuse_port("127.0.0.1", 0) as original:
        copy = ForkingPickler.loads(ForkingPickler.dumps(original))
        with copy:
            assert type(copy) is socket.socket
            assert copy.getsockname() == original.getsockname()
            assert copy.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 1
            # Another open file, not a second descriptor of the same socket.
            assert os.fstat(copy.fileno()).st_ino != os.fstat(original.fileno()).st_ino


@needs_reuse_port
def test_a_busy_port_stops_the_start_with_uvicorns_startup_failure() -> None:
    """The supervisor binds before it spawns anything: a taken address exits 3 at once."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SystemExit) as exit_info:
            serve(
                "service.app:create_app", host="127.0.0.1", port=port, workers=2, access_log=False
            )
    assert exit_info.value.code == STARTUP_FAILURE


def test_without_reuse_port_the_processes_share_uvicorns_one_socket(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Where SO_REUSEPORT is missing or refused, uvicorn runs the processes as it does itself."""
    calls: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(serve_module.uvicorn, "run", lambda app, **kw: calls.append((app, kw)))
    monkeypatch.setattr(serve_module, "REUSE_PORT", False)
    serve("service.app:create_app", host="127.0.0.1", port=1, workers=2, access_log=False)

    def refused(host: str, port: int) -> socket.socket:
        raise OSError(errno.ENOPROTOOPT, "Protocol not available")

    monkeypatch.setattr(serve_module, "REUSE_PORT", True)
    monkeypatch.setattr(serve_module, "bind_reuse_port", refused)
    serve("service.app:create_app", host="127.0.0.1", port=1, workers=2, access_log=False)
    assert [(app, kw["workers"], kw["factory"]) for app, kw in calls] == [
        ("service.app:create_app", 2, True)
    ] * 2


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int

    def listeners(self) -> set[int]:
        """Pids of the supervisor's children listening on the port."""
        pids = set()
        for child in psutil.Process(self.proc.pid).children():
            try:
                conns = child.net_connections(kind="tcp")
            except psutil.NoSuchProcess:
                continue
            if any(c.status == psutil.CONN_LISTEN and c.laddr.port == self.port for c in conns):
                pids.add(child.pid)
        return pids

    def wait_listeners(self, count: int, without: set[int], timeout: float = 120) -> set[int]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pids = self.listeners() - without
            if len(pids) == count:
                return pids
            time.sleep(0.2)
        raise AssertionError(f"{count} listening processes expected, found {self.listeners()}")


@pytest.fixture
def server(sqlite_template: Path, tmp_path: Path) -> Iterator[Server]:
    db = tmp_path / "api.db"
    shutil.copy(sqlite_template, db)
    env = {
        **os.environ,
        "INSTRUCTFORGE_DATABASE_URL": f"sqlite:///{db}",
        "INSTRUCTFORGE_DATA_DIR": str(tmp_path),
        "INSTRUCTFORGE_DATASETS_DIR": str(tmp_path / "datasets"),
        "INSTRUCTFORGE_MODELS_DIR": str(tmp_path / "models"),
    }
    port = free_port()
    command = [sys.executable, "-m", "service.cli", "serve", "--workers", "2", "--port", str(port)]
    with (tmp_path / "api.log").open("wb") as log:
        proc = subprocess.Popen(
            [*command, "--no-access-log"],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # stop_server signals the group: supervisor and processes
        )
        try:
            wait_ready(f"http://127.0.0.1:{port}", proc, timeout=120)
            yield Server(proc, port)
        finally:
            stop_server(proc)


def burst(server: Server, listeners: set[int]) -> Counter[int]:
    """Open BURST connections at once, ask /healthz on each (all must answer 200, kept alive),
    then count them by the process holding their server end."""
    clients = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(BURST)]
    try:
        request = f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n\r\n".encode()
        for client in clients:
            client.sendall(request)
        for client in clients:
            client.settimeout(30)
            status = read_response(client)
            assert status.startswith(b"HTTP/1.1 200"), status
        ports = {client.getsockname()[1] for client in clients}
        owners: Counter[int] = Counter()
        for pid in listeners:
            conns: list[Any] = psutil.Process(pid).net_connections(kind="tcp")
            owners[pid] = sum(
                1
                for c in conns
                if c.laddr.port == server.port and c.raddr and c.raddr.port in ports
            )
        assert sum(owners.values()) == BURST, owners
        return owners
    finally:
        for client in clients:
            client.close()


def read_response(client: socket.socket) -> bytes:
    """The status line of one small HTTP response (read whole, so the connection stays usable)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = client.recv(4096)
        assert chunk, "connection closed before the response"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += client.recv(4096)
    return head.split(b"\r\n", 1)[0]


@pytest.mark.slow
@needs_reuse_port
def test_two_processes_share_a_burst_and_a_killed_one_is_replaced(server: Server) -> None:
    first = server.wait_listeners(2, without=set())
    owners = burst(server, first)
    assert min(owners[pid] for pid in first) >= MIN_SHARE, owners

    # uvicorn's supervisor replaces a dead process; the new one binds a socket of its own.
    killed = min(first)
    os.kill(killed, signal.SIGKILL)
    (replacement,) = server.wait_listeners(1, without=first)
    survivors = server.wait_listeners(2, without={killed})
    assert survivors == (first - {killed}) | {replacement}
    owners = burst(server, survivors)
    assert owners[replacement] >= MIN_SHARE, owners
    assert server.proc.poll() is None
