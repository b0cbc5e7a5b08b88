"""The viewer's tasks table at 100k tasks: time to first byte and to a rendered page.

A database of 100,000 machine tasks over 10 runs, as runs leave them (Alpaca instructions;
1-3 instances and two scores each; 35% rejected by six rules, the near duplicates pointing at
an earlier accepted task with similarity and reason; run counters recounted), bulk loaded
through service.storage.bulk (COPY on PostgreSQL) on a migrated database (search index
included), is served by `instructforge serve` (one process). For each tasks-table view
(first page, filters, full-text search that finds or finds nothing, a deep cursor page, a
score range) this measures:

* `ttfb_ms`: request sent to the first byte of the answer, over HTTP (httpx, the session
  cookie of a real login), and the whole HTML (`html_ms`);
* `rendered_ms`: Debian's Chromium (Playwright) navigating to the page, from navigation
  start to the load event (HTML parsed, styles and scripts run, the table laid out), read
  from the browser's own Navigation Timing entry; its `responseStart` is the browser's TTFB;
* CPU, which the machine's load does not stretch: the server process's user + system time
  per request (`server_cpu_ms_per_request`) and the browser's per page view, all Chromium's
  processes and Playwright's driver (`browser_cpu_p50_ms`).

Goal (issue #19): p95 under 300 ms for both, on this machine, for every view.

    python bench/viewer.py [--databases sqlite,postgres] [--tasks 100000] [--samples 20]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import re
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.result_file import goal, write_result
from bench.service import (
    alpaca_instructions,
    api_server,
    cpu_seconds,
    pg_database,
    seed_and_runs,
    sqlite_database,
)
from service.demo import free_port
from service.storage.bulk import analyze, insert_rows, next_id, recount_runs
from service.storage.db import Database
from service.storage.keys import create_api_key
from service.storage.models import Instance, Score, Task
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


# Rejections as a run records them: (rule, version, share of rejected tasks). The near
# duplicates point at an earlier accepted task with their ROUGE-L similarity.
REJECTIONS = (
    ("near_duplicate", "3", 0.55),
    ("semantic_duplicate", "1", 0.10),
    ("instruction_length", "2", 0.12),
    ("unsuitable_keyword", "1", 0.08),
    ("starts_with_punctuation", "1", 0.05),
    ("score_gate", "heuristic_quality@4", 0.10),
)
REJECTED_SHARE = 0.35
REASONS = {
    "semantic_duplicate": "cosine 0.91 with an accepted task",
    "instruction_length": "3 words, fewer than 4",
    "unsuitable_keyword": "mentions 'image'",
    "starts_with_punctuation": "starts with '-'",
    "score_gate": "heuristic_quality 0.12 < 0.3",
}


def run_rows(
    first_id: int, first_instance: int, seed_set_id: int, run_ids: list[int], n_tasks: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Tasks, instances and scores as the worker stores them for `n_tasks` tasks spread over
    `run_ids`, in id order from `first_id` (deterministic: random.Random(0))."""
    rng = random.Random(0)
    rules = [r[:2] for r in REJECTIONS]
    weights = [r[2] for r in REJECTIONS]
    tasks, instances, scores = [], [], []
    accepted: list[int] = []
    instance_id = first_instance
    now = datetime.now(UTC)
    for i, text in enumerate(texts(n_tasks)):
        task_id = first_id + i
        rejected = bool(accepted) and rng.random() < REJECTED_SHARE
        rule, version = rng.choices(rules, weights)[0] if rejected else (None, None)
        nearest = rng.choice(accepted[-5000:]) if rule == "near_duplicate" else None
        similarity = round(rng.uniform(0.7, 0.98), 4) if nearest else None
        tasks.append(
            {
                "id": task_id,
                "origin": "machine",
                "seed_set_id": seed_set_id,
                "run_id": run_ids[i % len(run_ids)],
                "iteration": 1 + i // (8 * len(run_ids)),
                "instruction": text,
                "is_classification": rng.random() < 0.25,
                "status": "rejected" if rejected else "accepted",
                "reject_rule": rule,
                "reject_rule_version": version,
                "reject_reason": (
                    f"ROUGE-L {similarity} with task {nearest}"
                    if nearest
                    else REASONS.get(rule or "")
                ),
                "nearest_task_id": nearest,
                "similarity": similarity,
                "created_at": now,
            }
        )
        if not rejected:
            accepted.append(task_id)
        for idx in range(1 if rejected else rng.randint(1, 3)):
            instances.append(
                {
                    "id": instance_id,
                    "task_id": task_id,
                    "idx": idx,
                    "input": "" if rng.random() < 0.6 else f"Input {idx} of task {task_id}.",
                    "output": f"An answer to task {task_id}, instance {idx}.",
                    "status": "accepted",
                }
            )
            if idx == 0:
                for scorer, version in (("heuristic_quality", "4"), ("refusal", "2")):
                    scores.append(
                        {
                            "task_id": task_id,
                            "instance_id": instance_id,
                            "scorer": scorer,
                            "scorer_version": version,
                            "value": round(rng.random(), 4),
                            "details": {},
                            "created_at": now,
                        }
                    )
            instance_id += 1
    return tasks, instances, scores


def populate(url: str, n_tasks: int) -> tuple[str, int]:
    """A finished history of `n_tasks` machine tasks over 10 runs, bulk loaded through
    service.storage.bulk, and a read key; returns (key, first task id)."""
    db = Database(url)
    try:
        seed_set_id, run_ids = seed_and_runs(db, 10, {"seed_set": "si"})
        with db.engine.begin() as conn:
            first = next_id(conn, Task)
            tasks, instances, scores = run_rows(
                first, next_id(conn, Instance), seed_set_id, run_ids, n_tasks
            )
            insert_rows(conn, Task, tasks)
            insert_rows(conn, Instance, instances)
            insert_rows(conn, Score, scores)
            recount_runs(conn, run_ids)
        with db.transaction() as s:
            _, key = create_api_key(s, name="bench", scopes=["read"])
        with db.engine.connect() as conn:
            analyze(conn)
        return key, first
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


def over_http(base: str, key: str, path: str, samples: int, pid: int) -> dict[str, float]:
    """TTFB and whole-answer p95 of `path`, and the server's CPU per request (user + system
    time of its process over the samples: what the request costs whatever the load)."""
    with httpx.Client(base_url=base, timeout=30) as client:
        form = re.search(r'name="csrf" value="([^"]+)"', client.get("/ui/login").text)
        assert form is not None
        login = client.post(
            "/ui/login", data={"key": key, "csrf": form.group(1)}, follow_redirects=False
        )
        assert login.status_code == 303, login.text
        ttfb: list[float] = []
        whole: list[float] = []
        cpu_before = 0.0
        for i in range(samples + 2):
            if i == 2:
                cpu_before = cpu_seconds([pid])
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
        "server_cpu_ms_per_request": (cpu_seconds([pid]) - cpu_before) * 1000 / samples,
    }


def descendants(pid: int) -> list[int]:
    """The processes under `pid` (children, theirs, ...), from /proc."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        children = parents.get(todo.pop(), [])
        found += children
        todo += children
    return found


def in_browser(
    base: str, key: str, paths: dict[str, str], samples: int, server_pid: int
) -> dict[str, Any]:
    """Navigation timing p95s of each path in Chromium, and the CPU each page view cost the
    browser (all its processes, user + system)."""
    from playwright.sync_api import sync_playwright

    figures: dict[str, Any] = {}
    server = {server_pid, *descendants(server_pid)}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM))
        page = browser.new_page(viewport={"width": 1366, "height": 860})
        page.goto(f"{base}/ui/login")
        page.get_by_label("API key").fill(key)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(f"{base}/ui/runs")

        def browser_cpu() -> float:
            # Chromium's processes (browser, renderer, GPU, network) and Playwright's driver:
            # every descendant of this process but the server's.
            return cpu_seconds([p for p in descendants(os.getpid()) if p not in server])

        for name, path in paths.items():
            loads: list[float] = []
            firsts: list[float] = []
            cpu: list[float] = []
            for i in range(samples + 2):
                before = browser_cpu()
                page.goto(f"{base}{path}", wait_until="load")
                timing = page.evaluate(
                    "() => { const n = performance.getEntriesByType('navigation')[0];"
                    " return [n.responseStart - n.startTime, n.loadEventEnd - n.startTime]; }"
                )
                used = browser_cpu() - before
                if i >= 2:
                    firsts.append(timing[0])
                    loads.append(timing[1])
                    cpu.append(used * 1000)
            figures[name] = {
                "browser_ttfb_p95_ms": p95(firsts),
                "rendered_p50_ms": statistics.median(loads),
                "rendered_p95_ms": p95(loads),
                "browser_cpu_p50_ms": statistics.median(cpu),
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
    with api_server(url, [*command, "--no-access-log"], port) as (base, pid):
        browser = in_browser(base, key, paths, samples, pid) if CHROMIUM.exists() else {}
        for name, path in paths.items():
            row = {"database": kind, "view": name, "path": path, "tasks": n_tasks}
            row.update(over_http(base, key, path, samples, pid))
            row.update(browser.get(name, {}))
            rows.append(row)
            print(
                f"{kind:8} {name:16} ttfb p95 {row['ttfb_p95_ms']:7.1f} ms   html p95 "
                f"{row['html_p95_ms']:7.1f} ms   rendered p95 "
                f"{row.get('rendered_p95_ms', float('nan')):7.1f} ms   server cpu "
                f"{row['server_cpu_ms_per_request']:5.1f} ms   browser cpu p50 "
                f"{row.get('browser_cpu_p50_ms', float('nan')):5.1f} ms"
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
