# ruff: noqa: E402  (imports follow the sys.path fix below, on purpose)
"""API CPU per request on the hot reads, in-process: what each request costs the server's CPU.

The four hot GETs of bench/service.py (runs list, run show, tasks?limit=50, task show) on a
PostgreSQL database populated as that bench does (175 real seed tasks, machine tasks from
Alpaca with an instance and two scores each, 10 runs). The app (`create_app`, lifespan run, so
`gc.freeze` applies) is called directly as an ASGI app by a minimal caller: no socket and no
HTTP client, so the CPU measured is the app's (routing, dependencies, key check, SQLAlchemy,
psycopg, the JSON body) plus the asyncio loop it runs on. HTTP parsing in uvicorn is left out
(httptools: a few microseconds). `time.process_time()` counts this process's CPU only, so a
busy machine slows the wall clock but hardly the figure; PostgreSQL's CPU is not counted.

Each route: a warm-up, then `--rounds` rounds of `--requests` requests; the row gives the
fastest round's CPU ms per request (the least disturbed) and the median. Sequentially
(1 client) and with `--concurrency` clients on one loop (pool waits included). The floor is
a bare FastAPI app answering a constant through the same caller.

Goal `cpu_ms_per_request` <= 0.4 on every route: bench/service.py holds 100 closed-loop clients
on 2 cores, where latency ~ clients / throughput; a p99 of 50 ms at about twice the mean needs
~4,000 req/s, i.e. 0.5 ms of the machine's CPU per request, of which PostgreSQL and the load
generator take ~0.1.

Run: python bench/read_cpu.py   (writes bench/results/read_cpu.json; about a minute)
Needs PostgreSQL at INSTRUCTFORGE_TEST_PG_DSN (default postgresql://postgres@127.0.0.1:5432/postgres).
"""

from __future__ import annotations

import sys
from pathlib import Path

# `python bench/read_cpu.py` puts bench/ first on sys.path, where bench/service.py would shadow
# the `service` package measured here; the repository root goes there instead.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [str(_HERE.parent), *(p for p in sys.path if Path(p or ".").resolve() != _HERE)]

import argparse
import asyncio
import platform
import statistics
import time
from typing import Any

import orjson
from fastapi import FastAPI

from bench.result_file import goal, write_result
from bench.service import pg_database, populate_api_db, route_paths
from service.app import create_app
from service.settings import Settings
from tests.service.api_client import asgi_get

RESULT = _HERE / "results" / "read_cpu.json"
CPU_TARGET_MS = 0.4


def floor_app() -> FastAPI:
    """The same framework with nothing of ours, answering a constant (bench/service.py's floor,
    served by `instructforge serve --app bench.read_cpu:floor_app`, which waits on /readyz)."""
    app = FastAPI()

    @app.get("/readyz")
    async def ready() -> dict[str, str]:
        return {"status": "ready"}

    @app.get("/floor")
    async def floor() -> dict[str, object]:
        return {"id": 1, "status": "running", "progress": {"accepted": 10, "rejected": 3}}

    return app


async def get(app: FastAPI, target: str, headers: dict[str, str]) -> bytes:
    """GET `target` from the ASGI app; its body. Raises AssertionError on a non-200."""
    status, body = await asgi_get(app, target, headers)
    assert status == 200, f"GET {target}: {status} {body[:200]!r}"
    return body


async def cpu_per_request(
    app: FastAPI, paths: list[str], headers: dict[str, str], n: int, clients: int
) -> tuple[float, float]:
    """(CPU ms, wall ms) per request over `n` requests from `clients` closed-loop clients."""
    per_client = max(n // clients, 1)

    async def client(offset: int) -> None:
        for i in range(per_client):
            await get(app, paths[(offset + i) % len(paths)], headers)

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(client(c * 7919) for c in range(clients)))
    done = per_client * clients
    return (
        (time.process_time() - cpu) * 1000 / done,
        (time.perf_counter() - wall) * 1000 / done,
    )


async def measure(
    app: FastAPI, route: str, paths: list[str], key: str, args: argparse.Namespace
) -> list[dict[str, Any]]:
    headers = {"host": "bench", "authorization": f"Bearer {key}"}
    orjson.loads(await get(app, paths[0], headers))  # a JSON body, or fail loudly
    await cpu_per_request(app, paths, headers, args.warmup, 1)
    rows = []
    for clients in sorted({1, args.concurrency}):
        rounds = [
            await cpu_per_request(app, paths, headers, args.requests, clients)
            for _ in range(args.rounds)
        ]
        cpus = [c for c, _ in rounds]
        rows.append(
            {
                "route": route,
                "clients": clients,
                "cpu_ms_per_request": round(min(cpus), 4),
                "cpu_ms_median": round(statistics.median(cpus), 4),
                "wall_ms_per_request": round(min(w for _, w in rounds), 4),
                "requests": args.requests * args.rounds,
            }
        )
        print(
            f"{route:26s} clients {clients:>3}  cpu {rows[-1]['cpu_ms_per_request']:.3f} ms "
            f"(median {rows[-1]['cpu_ms_median']:.3f})  wall {rows[-1]['wall_ms_per_request']:.3f}",
            flush=True,
        )
    return rows


async def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = await measure(floor_app(), "GET /floor (bare FastAPI)", ["/floor"], "", args)
    with pg_database() as url:
        key, run_ids, task_ids = populate_api_db(url, args.tasks)
        app = create_app(Settings(database_url=url))
        async with app.router.lifespan_context(app):
            for route, paths in route_paths(run_ids, task_ids).items():
                rows += await measure(app, route, paths, key, args)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=5000, help="Machine tasks in the database.")
    parser.add_argument("--requests", type=int, default=1000, help="Requests per round.")
    parser.add_argument("--rounds", type=int, default=5, help="Rounds per route and clients.")
    parser.add_argument("--warmup", type=int, default=300, help="Warm-up requests per route.")
    parser.add_argument("--concurrency", type=int, default=100, help="Concurrent clients.")
    args = parser.parse_args()
    rows = asyncio.run(run(args))
    served = [r for r in rows if not r["route"].startswith("GET /floor")]
    worst = max(r["cpu_ms_per_request"] for r in served)
    env = {"python": platform.python_version(), "database": "postgresql", **vars(args)}
    write_result(RESULT, rows, [goal("cpu_ms_per_request", worst, CPU_TARGET_MS, "lower")], env)


if __name__ == "__main__":
    main()
