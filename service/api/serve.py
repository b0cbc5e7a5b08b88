"""The API's processes (`instructforge serve`): each listens on a socket of its own.

`uvicorn --workers N` binds one listening socket in its supervisor and hands that socket to every
process. All N accept from its one queue, so whichever process wakes first takes most of a burst
of new connections and keeps them for their keep-alive life: with 2 processes and wrk's 100
connections, bench/trace_reads.py saw 0/100 and 23/77 splits, and one process did most of the
run's work while the other idled. With `SO_REUSEPORT` (Linux 3.9+) each process listens on its own
socket bound to the same address, and the kernel hashes every new connection (its address pair)
to one of the listening sockets: 10 bursts of 100 split between 44/56 and 56/44.

uvicorn's own supervisor still runs the processes (`uvicorn.supervisors.Multiprocess`: health
pings, a dead or hung process replaced, SIGHUP restarts, SIGTTIN/SIGTTOU). Only the socket it is
given differs: a :class:`ReusePortSocket`, bound (not listening) in the supervisor, so a busy port
fails at start and the address stays reserved for this user while a process restarts. The
supervisor pickles its sockets into every process it spawns; this one arrives not as a duplicate
of the supervisor's descriptor (one shared queue again) but as a new `SO_REUSEPORT` socket bound
to the same address, which that process's `uvicorn.Server` listens on and closes at shutdown.

The cost: connections the kernel has queued on a process's socket but that process never
accepted are reset when it exits (a shared socket would leave them to the others). Elsewhere than
Linux (`SO_REUSEPORT` missing, or not balancing, as on macOS and the BSDs) and for one process,
uvicorn runs as before, on one socket.
"""

from __future__ import annotations

import errno
import logging
import socket
import sys
from typing import Any, TypeVar

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

logger = logging.getLogger("uvicorn.error")

# Linux alone spreads connections over the sockets of a SO_REUSEPORT group; macOS and the BSDs
# accept the option but give every connection to one socket.
REUSE_PORT = sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


_S = TypeVar("_S", bound=socket.socket)


def _bind(sock: _S, address: tuple[Any, ...]) -> _S:
    """`sock` with SO_REUSEADDR and SO_REUSEPORT set, bound to `address`; closed on failure.

    Raises OSError: the kernel refuses SO_REUSEPORT (ENOPROTOOPT), or the address is taken.
    """
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def _bound_sibling(family: int, address: tuple[Any, ...]) -> socket.socket:
    """A new SO_REUSEPORT socket bound to `address`: how a :class:`ReusePortSocket` unpickles."""
    return _bind(socket.socket(family, socket.SOCK_STREAM), address)


class ReusePortSocket(socket.socket):
    """A TCP socket bound with SO_REUSEPORT whose pickled copy is a sibling, not a duplicate.

    Pickled (as uvicorn's supervisor does for each process it spawns) it becomes, in the
    unpickling process, a new plain `socket.socket` with SO_REUSEPORT bound to this socket's
    address: one more member of the kernel's group for that address. `multiprocessing`'s own
    socket reducer (which duplicates the descriptor) matches `socket.socket` exactly, not
    subclasses, so `__reduce__` below is the one used.
    """

    def __reduce__(self) -> tuple[Any, tuple[int, tuple[Any, ...]]]:
        return _bound_sibling, (int(self.family), self.getsockname())


def bind_reuse_port(host: str, port: int) -> ReusePortSocket:
    """A :class:`ReusePortSocket` bound to `host`:`port` (IPv6 when `host` has a colon).

    Raises OSError: the kernel refuses SO_REUSEPORT (ENOPROTOOPT), or the address is taken.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return _bind(ReusePortSocket(family, socket.SOCK_STREAM), (host, port))


def serve(app: str, *, host: str, port: int, workers: int, access_log: bool) -> None:
    """Serve the ASGI app factory `app` ("module:function") in `workers` processes.

    Exits with uvicorn's STARTUP_FAILURE (3) when the address cannot be bound or the app fails
    its startup. Returns when stopped (SIGINT/SIGTERM).
    """
    options: dict[str, Any] = {
        "factory": True,
        "host": host,
        "port": port,
        "workers": workers,
        "access_log": access_log,
        "log_level": "info",
        # The supervisor kills a process that does not answer its ping within this many seconds,
        # and a new process answers only once it has re-imported the CLI module (spawn): 1.2
        # CPU-s, 5 s of wall time on a loaded 2-core machine, where uvicorn's default of 5 s
        # killed every new process in a loop. The pings are answered by a thread of their own,
        # so a busy event loop does not delay them.
        "timeout_worker_healthcheck": 30,
    }
    if workers == 1 or not REUSE_PORT:
        uvicorn.run(app, **options)
        return
    config = uvicorn.Config(app, **options)
    try:
        sock = bind_reuse_port(host, port)
    except OSError as exc:
        if exc.errno != errno.ENOPROTOOPT:
            logger.error(exc)
            sys.exit(STARTUP_FAILURE)
        logger.warning("SO_REUSEPORT refused (%s): one socket shared by the processes", exc)
        uvicorn.run(app, **options)
        return
    bound_host, bound_port = sock.getsockname()[:2]
    logger.info(
        "Uvicorn running on http://%s:%d with SO_REUSEPORT, one socket per process "
        "(Press CTRL+C to quit)",
        bound_host,
        bound_port,
    )
    try:
        Multiprocess(config, sockets=[sock]).run()
    finally:
        sock.close()
