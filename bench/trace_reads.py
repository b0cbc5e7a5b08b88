# ruff: noqa: E402  (imports follow the sys.path fix below, on purpose)
"""Where the hot reads' p99 goes: each route of bench/service.py under wrk, on a traced server.

For each route a fresh `instructforge serve --workers N --app bench.trace_app:create_app` (the
product's app wrapped by bench/trace_app.py) on one populated PostgreSQL database: warm-up, then
the route's load; then per API process: the client connections it got, requests, server-side
p50/p99, garbage collections by generation and their time, event-loop lag. Compare wrk's
(client) p99 with the server-side one: what the server does not see is time in the kernel's
queues and waiting for a core.

Run: python bench/trace_reads.py [--route-seconds 5] [--workers 2] [--env K=V ...]
Writes bench/results/trace_reads.json.
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import argparse
import json
import os
import tempfile
import time

from bench.databases import pg_database
from bench.service import (
    ROOT,
    api_server,
    autogroup,
    populate_api_db,
    route_paths,
    server_pids,
    wrk,
)
from bench.trace_app import TRACE_DIR_ENV, summarize
from service.demo import free_port

RESULT = ROOT / "bench" / "results" / "trace_reads.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--route-seconds", type=float, default=5)
    parser.add_argument("--warmup-seconds", type=float, default=3)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--tasks", type=int, default=5000)
    parser.add_argument("--routes", nargs="*", default=None, help="Route names (default all).")
    parser.add_argument("--env", nargs="*", default=[], help="K=V for the server's environment.")
    parser.add_argument("--label", default="")
    parser.add_argument("--repeat", type=int, default=1, help="Measurements per route.")
    parser.add_argument(
        "--sched-autogroup",
        choices=["off", "as-is"],
        default="off",
        help="The kernel's autogroup while measuring (as bench/service.py): off, or as-is.",
    )
    args = parser.parse_args()
    extra_env = dict(kv.split("=", 1) for kv in args.env)
    rows = []
    with autogroup(args.sched_autogroup) as sched, pg_database() as url:
        key, run_ids, task_ids = populate_api_db(url, args.tasks)
        routes = route_paths(run_ids, task_ids)
        for route, paths in routes.items():
            if args.routes and route not in args.routes:
                continue
            with tempfile.TemporaryDirectory() as out:
                port = free_port()
                command = [
                    sys.executable, "-m", "service.cli", "serve", "--app",
                    "bench.trace_app:create_app", "--no-access-log", "--workers",
                    str(args.workers), "--port", str(port),
                ]  # fmt: skip
                env = {**extra_env, TRACE_DIR_ENV: out}
                with api_server(url, command, port, env) as (base, pid):
                    pids = server_pids(pid)
                    splits = []
                    every = [p for ps in routes.values() for p in ps[:100]]
                    wrk(base, key, every, args, args.warmup_seconds, pids)
                    since = time.time()
                    client = wrk(base, key, paths, args, args.route_seconds, pids)
                    # More fresh sets of connections: how they split between the processes.
                    for _ in range(args.repeat - 1):
                        marked = time.time()
                        wrk(base, key, paths[:10], args, 1, pids)
                        splits.append(marked)
                trace = summarize(Path(out), since, splits)
            row = {
                "route": route,
                "label": args.label,
                "sched_autogroup": sched,
                **client,
                **trace,
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(RESULT.read_text()) if RESULT.exists() else []
    RESULT.write_text(json.dumps(previous + rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
