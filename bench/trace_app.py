"""Bench-only: the API of `instructforge serve`, traced per process (`bench/service.py --trace`).

`create_app()` builds `service.app.create_app()` unchanged and wraps it in an ASGI layer that
records, in the process that serves:
- each request's server-side time (first ASGI call to the last body chunk sent), ns;
- the client connection it came on (wrk's closed-loop connections are kept alive, so how
  uvicorn's processes shared them out at the start decides each process's load for the run);
- every garbage collection (gc.callbacks): generation and duration;
- the event loop's lag: a task that asks to wake every 5 ms records how late it woke.
`$INSTRUCTFORGE_BENCH_GC_THRESHOLD` ("a,b,c") sets the collector's thresholds, for comparison.
At lifespan shutdown it writes them to `$INSTRUCTFORGE_BENCH_TRACE_DIR/trace-<pid>.json`.
`summarize(dir)` reads every process's file back into one record.

Nothing here is imported by the product; the served app is the product's own.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import json
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from service.app import create_app as create_product_app

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

TRACE_DIR_ENV = "INSTRUCTFORGE_BENCH_TRACE_DIR"
GC_THRESHOLD_ENV = "INSTRUCTFORGE_BENCH_GC_THRESHOLD"  # "700,10,10": an experiment's setting
LAG_TICK_S = 0.005


class Trace:
    """What one process records; `dump()` writes it as JSON."""

    def __init__(self, app: ASGIApp, out_dir: Path) -> None:
        self.app = app
        self.out_dir = out_dir
        self.latency_ns: list[int] = []
        self.connections: dict[str, float] = {}  # peer -> when first seen (time.time())
        self.gc_events: list[tuple[int, int, int]] = []  # (generation, wall ns, CPU ns)
        self.lag_ns: list[int] = []
        self.full_collections: list[tuple[float, float, int]] = []  # (at s, CPU ms, collected)
        self._gc_started = self._gc_cpu_started = 0
        self._lag_task: asyncio.Task[None] | None = None
        self.started = time.perf_counter()
        self.cpu_started = time.process_time()

    def on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter_ns()
            self._gc_cpu_started = time.thread_time_ns()
        else:
            wall = time.perf_counter_ns() - self._gc_started
            cpu = time.thread_time_ns() - self._gc_cpu_started
            self.gc_events.append((info["generation"], wall, cpu))
            if info["generation"] == 2:
                self.full_collections.append(
                    (
                        round(time.perf_counter() - self.started, 2),
                        round(cpu / 1e6, 2),
                        info["collected"],
                    )
                )

    async def lag(self) -> None:
        while True:
            before = time.perf_counter_ns()
            await asyncio.sleep(LAG_TICK_S)
            self.lag_ns.append(time.perf_counter_ns() - before - int(LAG_TICK_S * 1e9))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, self._lifespan_receive(receive), send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        peer = f"{client[0]}:{client[1]}" if client else "?"
        self.connections.setdefault(peer, time.time())
        started = time.perf_counter_ns()

        async def timed_send(message: Message) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                self.latency_ns.append(time.perf_counter_ns() - started)

        await self.app(scope, receive, timed_send)

    def _lifespan_receive(self, receive: Receive) -> Receive:
        async def wrapped() -> Message:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if os.environ.get(GC_THRESHOLD_ENV):
                    gc.set_threshold(*map(int, os.environ[GC_THRESHOLD_ENV].split(",")))
                gc.callbacks.append(self.on_gc)
                self._lag_task = asyncio.get_running_loop().create_task(self.lag())
            elif message["type"] == "lifespan.shutdown":
                if self._lag_task is not None:
                    self._lag_task.cancel()
                gc.callbacks.remove(self.on_gc)
                self.dump()
            return message

        return wrapped

    def dump(self) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        record = {
            "pid": os.getpid(),
            "wall_s": time.perf_counter() - self.started,
            "cpu_s": time.process_time() - self.cpu_started,
            "latency_ns": self.latency_ns,
            "connections": self.connections,
            "gc_events": self.gc_events,
            "gc_frozen": gc.get_freeze_count(),
            "gc_threshold": gc.get_threshold(),
            "lag_ns": self.lag_ns,
            "full_collections": self.full_collections,
            "gc_live_by_generation": [len(gc.get_objects(n)) for n in range(3)],
            "gen2_top_types": Counter(type(o).__qualname__ for o in gc.get_objects(2)).most_common(
                15
            ),
        }
        (self.out_dir / f"trace-{os.getpid()}.json").write_text(json.dumps(record))


def create_app() -> ASGIApp:
    """The product's app, traced (uvicorn factory)."""
    return Trace(create_product_app(), Path(os.environ[TRACE_DIR_ENV]))


def _pct(values: list[int], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e6


def summarize(
    out_dir: Path, since: float = 0.0, splits: list[float] | None = None
) -> dict[str, Any]:
    """Every process's trace in `out_dir`, one record per process; times in ms. A trace spans
    the server's whole life (warm-up included); `connections` counts those first seen at or
    after `since` (time.time())."""
    processes = []
    bounds = [since, *(splits or []), float("inf")]
    shares: list[list[int]] = []
    for path in sorted(out_dir.glob("trace-*.json")):
        t = json.loads(path.read_text())
        conns = t["connections"]
        gcs = t["gc_events"]
        shares.append(
            [
                sum(1 for first in conns.values() if lo <= first < hi)
                for lo, hi in itertools.pairwise(bounds)
            ]
        )
        processes.append(
            {
                "requests": len(t["latency_ns"]),
                "connections": shares[-1][0],
                "server_p50_ms": round(_pct(t["latency_ns"], 0.50), 2),
                "server_p99_ms": round(_pct(t["latency_ns"], 0.99), 2),
                "server_max_ms": round(_pct(t["latency_ns"], 1.0), 2),
                "gc_by_generation": [sum(1 for g, _, _ in gcs if g == n) for n in range(3)],
                "gc_wall_ms_by_generation": [
                    round(sum(w for g, w, _ in gcs if g == n) / 1e6, 1) for n in range(3)
                ],
                "gc_cpu_ms_by_generation": [
                    round(sum(c for g, _, c in gcs if g == n) / 1e6, 1) for n in range(3)
                ],
                "gc_max_wall_ms": round(max((w for _, w, _ in gcs), default=0) / 1e6, 2),
                "gc_max_cpu_ms": round(max((c for _, _, c in gcs), default=0) / 1e6, 2),
                "gc_frozen": t["gc_frozen"],
                "gc_live_by_generation": t["gc_live_by_generation"],
                "gen2_top_types": t["gen2_top_types"],
                "full_collections": t["full_collections"],
                "loop_lag_p99_ms": round(_pct(t["lag_ns"], 0.99), 2),
                "loop_lag_max_ms": round(_pct(t["lag_ns"], 1.0), 2),
                "cpu_s": round(t["cpu_s"], 2),
            }
        )
    # Per set of connections (the measured load first, then each of `splits`): how many each
    # process got.
    return {
        "processes": processes,
        "connection_splits": [list(c) for c in zip(*shares, strict=False)],
    }
