"""Bench-only: the API in N processes that each bind the port with SO_REUSEPORT.

`uvicorn --workers N` (what `instructforge serve` runs) shares one listening socket: whichever
process wakes first accepts every connection waiting, so a burst of keep-alive connections
(wrk's 100 at start) can split 77/23 between two processes for the connections' whole life.
With SO_REUSEPORT each process has its own socket and the kernel spreads new connections over
them by a hash of the addresses. Used by bench/trace_reads.py to compare the two.

Run: python bench/reuseport_serve.py PORT WORKERS APP   (APP: a uvicorn factory "module:name")
"""

from __future__ import annotations

import multiprocessing as mp
import signal
import socket
import sys
from pathlib import Path

# `python bench/reuseport_serve.py` puts bench/ first on sys.path, where bench/service.py would
# shadow the `service` package served.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]


def serve(port: int, app: str) -> None:
    import uvicorn

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(2048)
    config = uvicorn.Config(app, factory=True, access_log=False, log_level="warning")
    uvicorn.Server(config).run(sockets=[sock])


def main() -> None:
    port, workers, app = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=serve, args=(port, app)) for _ in range(workers)]
    for p in procs:
        p.start()

    def stop(signum: int, _frame: object) -> None:
        for p in procs:
            p.terminate()  # uvicorn shuts down (lifespan included) on SIGTERM

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    for p in procs:
        p.join()


if __name__ == "__main__":
    main()
