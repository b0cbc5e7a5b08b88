"""The viewer's tasks table at 100k tasks: time to first byte and to a rendered page.

A database of 100,000 machine tasks (Alpaca instructions, one instance and two scores each, a
third rejected as near-duplicates; bench/service.py's loader) is served by `instructforge
serve` (one process). For each tasks-table view (first page, filters, full-text search that
finds or finds nothing, a deep cursor page, a score range) this measures:

* `ttfb_ms`: request sent to the first byte of the answer, over HTTP (httpx, the session
  cookie of a real login), and the whole HTML (`html_ms`);
* `rendered_ms`: Debian's Chromium (Playwright) navigating to the page, from navigation
  start to the load event (HTML parsed, styles and scripts run, the table laid out), read
  from the browser's own Navigation Timing entry; its `responseStart` is the browser's TTFB.

Goal (issue #19): p95 under 300 ms for both, on this machine, for every view.

    python bench/viewer.py [--databases sqlite,postgres] [--tasks 100000] [--samples 20]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.result_file import goal, write_result
from bench.service import (
    alpaca_instructions,
    api_server,
    bulk_tasks,
    pg_database,
    seed_and_runs,
    sqlite_database,
)
from service.demo import free_port
from service.storage.db import Database
from service.storage.keys import create_api_key
from service.storage.pages import encode_cursor

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "bench" / "results" / "viewer.json"
CHROMIUM = Path(os.environ.get("INSTRUCTFORGE_CHROMIUM", "/usr/bin/chromium"))
TARGET_MS = 300.0


def texts(n: int) -> list[str]:
    """n distinct instructions: Alpaca's, numbered once they run out."""
    base = alpaca_instructions(n)
    return [
        base[i % len(base)] if i < len(base) else f"{base[i % len(base)]} (variant {i})"
        for i in range(n)
    ]


def populate(url: str, n_tasks: int) -> tuple[str, int]:
    """Tasks and a read key; returns (key, first task id)."""
    db = Database(url)
    try:
        seed_set_id, run_ids = seed_and_runs(db, 10, {"seed_set": "si"})
        ids = bulk_tasks(db, seed_set_id=seed_set_id, run_ids=run_ids, texts=texts(n_tasks))
        with db.transaction() as s:
            _, key = create_api_key(s, name="bench", scopes=["read"])
        with db.engine.connect() as conn:
            command = "VACUUM ANALYZE" if db.engine.dialect.name == "postgresql" else "ANALYZE"
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(command)
        return key, ids[0]
    finally:
        db.dispose()


def views(first_id: int, n_tasks: int) -> dict[str, str]:
    deep = encode_cursor(first_id + int(n_tasks * 0.9))
    return {
        "first_page": "/ui/tasks",
        "rule": "/ui/tasks?reject_rule=near_duplicate",
        "run_status_type": "/ui/tasks?run_id=3&status=accepted&type=classification",
        "search_common": "/ui/tasks?q=poem",
        "search_none": "/ui/tasks?q=zqxj-nowhere",
        "deep_cursor": f"/ui/tasks?cursor={deep}",
        "score_range": "/ui/tasks?scorer=heuristic_quality&min_score=0.2&max_score=0.4",
    }


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[18]


def over_http(base: str, key: str, path: str, samples: int) -> dict[str, float]:
    with httpx.Client(base_url=base, timeout=30) as client:
        login = client.post("/ui/login", data={"key": key}, follow_redirects=False)
        assert login.status_code == 303, login.text
        ttfb: list[float] = []
        whole: list[float] = []
        for i in range(samples + 2):
            start = time.perf_counter()
            with client.stream("GET", path) as answer:
                first = time.perf_counter()
                body = answer.read()
                done = time.perf_counter()
            assert answer.status_code == 200 and b"<table" in body, (path, answer.status_code)
            if i >= 2:  # the first two warm the server's statement caches
                ttfb.append((first - start) * 1000)
                whole.append((done - start) * 1000)
    return {
        "ttfb_p50_ms": statistics.median(ttfb),
        "ttfb_p95_ms": p95(ttfb),
        "html_p95_ms": p95(whole),
    }


def in_browser(base: str, key: str, paths: dict[str, str], samples: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    figures: dict[str, Any] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM))
        page = browser.new_page(viewport={"width": 1366, "height": 860})
        page.goto(f"{base}/ui/login")
        page.get_by_label("API key").fill(key)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(f"{base}/ui/runs")
        for name, path in paths.items():
            loads: list[float] = []
            firsts: list[float] = []
            for i in range(samples + 2):
                page.goto(f"{base}{path}", wait_until="load")
                timing = page.evaluate(
                    "() => { const n = performance.getEntriesByType('navigation')[0];"
                    " return [n.responseStart - n.startTime, n.loadEventEnd - n.startTime]; }"
                )
                if i >= 2:
                    firsts.append(timing[0])
                    loads.append(timing[1])
            figures[name] = {
                "browser_ttfb_p95_ms": p95(firsts),
                "rendered_p50_ms": statistics.median(loads),
                "rendered_p95_ms": p95(loads),
            }
        browser.close()
    return figures


def bench_database(kind: str, url: str, n_tasks: int, samples: int) -> list[dict[str, Any]]:
    started = time.perf_counter()
    key, first_id = populate(url, n_tasks)
    print(f"{kind}: {n_tasks} tasks loaded in {time.perf_counter() - started:.0f} s")
    port = free_port()
    command = [sys.executable, "-m", "service.cli", "serve", "--port", str(port)]
    rows = []
    paths = views(first_id, n_tasks)
    with api_server(url, [*command, "--no-access-log"], port) as (base, _):
        browser = in_browser(base, key, paths, samples) if CHROMIUM.exists() else {}
        for name, path in paths.items():
            row = {"database": kind, "view": name, "path": path, "tasks": n_tasks}
            row.update(over_http(base, key, path, samples))
            row.update(browser.get(name, {}))
            rows.append(row)
            print(
                f"{kind:8} {name:16} ttfb p95 {row['ttfb_p95_ms']:7.1f} ms   html p95 "
                f"{row['html_p95_ms']:7.1f} ms   rendered p95 "
                f"{row.get('rendered_p95_ms', float('nan')):7.1f} ms"
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=20)
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    makers = {"sqlite": sqlite_database, "postgres": pg_database}
    for kind in args.databases.split(","):
        with makers[kind]() as url:
            rows += bench_database(kind, url, args.tasks, args.samples)
    goals = []
    for kind in args.databases.split(","):
        mine = [r for r in rows if r["database"] == kind]
        goals.append(
            goal(
                f"{kind}_ttfb_p95_ms_worst_view",
                max(r["ttfb_p95_ms"] for r in mine),
                TARGET_MS,
                "lower",
            )
        )
        rendered = [r["rendered_p95_ms"] for r in mine if "rendered_p95_ms" in r]
        goals.append(
            goal(
                f"{kind}_rendered_p95_ms_worst_view",
                max(rendered) if rendered else None,
                TARGET_MS,
                "lower",
            )
        )
    env = {
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "chromium": str(CHROMIUM),
        "samples": args.samples,
    }
    write_result(RESULT, rows, goals, env)


if __name__ == "__main__":
    main()
