"""Export benchmark: N synthetic accepted tasks from the database to hashed files, end to end.

For SQLite and PostgreSQL, 10k and 100k tasks (about 1.25 examples each, one score each) are
bulk-inserted (not timed), then `create_version` is timed `--repeat` times (best and median
reported; the machine is shared, so the best is the least disturbed): streaming read, rules,
split, JSONL + Parquet for both formats and splits, sha256 of every file, dataset_items rows,
manifest, card, atomic rename, commit. Memory is measured on a separate export of the same data: the
tracemalloc peak (Python heap) and the peak RSS growth, each size in a fresh process.

Run: `python bench/export.py [--sizes 10000 100000] [--backends sqlite postgres] [--repeat 3]`;
writes bench/results/export.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.databases import pg_database  # noqa: E402 (after the path is set)

RESULT = ROOT / "bench" / "results" / "export.json"
TARGET_RATE = 20_000
TARGET_MEMORY_GROWTH = 1.5


def _rows(n: int, start: int = 1) -> dict[str, list[dict[str, Any]]]:
    tasks, instances, scores = [], [], []
    for tid in range(start, start + n):
        is_cls = tid % 5 == 0
        tasks.append(
            {
                "id": tid,
                "origin": "machine",
                "seed_set_id": 1,
                "run_id": 1,
                "iteration": tid // 100,
                "generation_id": f"g{tid % 50}",
                "instruction": f"Synthetic instruction number {tid}: "
                "rewrite the text below so that it is clear, short and polite.",
                "is_classification": is_cls,
                "status": "accepted",
            }
        )
        for idx in range(2 if tid % 4 == 0 else 1):
            instances.append(
                {
                    "id": tid * 2 + idx,
                    "task_id": tid,
                    "idx": idx,
                    "status": "accepted",
                    "input": f"hey, the report {tid} u sent is missing the numbers" if idx else "",
                    "output": f"Hello, thanks for report {tid}. Could you add the figures, please?",
                }
            )
        scores.append(
            {
                "task_id": tid,
                "instance_id": None,
                "scorer": "heuristic_quality",
                "scorer_version": "1",
                "value": (tid % 97) / 96,
                "details": {},
            }
        )
    return {"tasks": tasks, "instances": instances, "scores": scores}


def populate(url: str, n: int) -> None:
    """Bulk-insert one seed set, one run, 50 generations and n accepted tasks."""
    from sqlalchemy import insert

    from service.storage.db import Database
    from service.storage.models import Generation, Instance, Run, Score, SeedSet, Task

    db = Database(url)
    with db.transaction() as s:
        s.add(
            SeedSet(
                id=1,
                name="bench",
                content_hash="0" * 64,
                source_format="self_instruct",
                task_count=0,
            )
        )
        s.flush()
        s.add(
            Run(
                id=1,
                seed_set_id=1,
                config={"filters": {"rouge_threshold": 0.7}},
                config_hash="1" * 64,
                policy_version="p1",
                target_tasks=n,
            )
        )
        s.flush()
        s.execute(
            insert(Generation.__table__),
            [
                {
                    "id": f"g{i}",
                    "run_id": 1,
                    "stage": "instructions",
                    "backend": "vllm",
                    "model_name": "smollm2-135m",
                    "model_path": "/m",
                    "model_hash": "2" * 64,
                    "engine": "vllm",
                    "engine_version": "0.32.0",
                    "template_name": "instructions",
                    "template_version": "1",
                    "template_sha256": "3" * 64,
                    "prompt": "p",
                    "prompt_sha256": "4" * 64,
                    "chat_wrapped": False,
                    "few_shot_ids": [],
                    "sampling": {},
                    "completion": "c",
                    "finish_reason": "stop",
                    "prompt_tokens": 1,
                    "completion_tokens": 1,
                    "latency_s": 0.1,
                    "retry_log": [],
                }
                for i in range(50)
            ],
        )
    for start in range(1, n + 1, 20_000):
        chunk = _rows(min(20_000, n + 1 - start), start)
        with db.transaction() as s:
            s.execute(insert(Task.__table__), chunk["tasks"])
        with db.transaction() as s:
            s.execute(insert(Instance.__table__), chunk["instances"])
            s.execute(insert(Score.__table__), chunk["scores"])
    # Fresh statistics, as autovacuum would have gathered on a live database.
    with db.engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
        conn.commit()
    db.dispose()


def export_once(url: str, datasets_dir: Path, *, memory: bool, repeat: int) -> dict[str, Any]:
    """`repeat` exports timed one by one; with memory=True one export under tracemalloc."""
    from service.export import ExportSpec, create_version
    from service.storage.db import Database

    db = Database(url)
    rss_before = _rss_mb()
    if memory:
        tracemalloc.start()
    times, cpu, hashes = [], [], set()
    for _ in range(1 if memory else repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        info = create_version(db, dataset="bench", spec=ExportSpec(), datasets_dir=datasets_dir)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        hashes.add(info.content_hash)
    out: dict[str, Any] = {
        "seconds": sorted(times),
        "cpu_seconds": sorted(cpu),
        "tasks": info.counts["tasks"],
        "examples": info.counts["examples"],
        "hashes": sorted(hashes),
    }
    if memory:
        out["tracemalloc_peak_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        out["rss_growth_mb"] = _peak_rss_mb() - rss_before
    db.dispose()
    return out


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(url: str, datasets_dir: str, memory: bool, repeat: int = 1) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", url, datasets_dir, "--repeat", str(repeat)]
    cmd += ["--memory"] if memory else []
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _database(backend: str, tmp: Path, n: int) -> tuple[str, Any]:
    from service.storage.migrate import upgrade

    if backend == "sqlite":
        url = f"sqlite:///{tmp / f'bench-{n}.db'}"
        upgrade(url)
        return url, lambda: None
    stack = contextlib.ExitStack()
    return stack.enter_context(pg_database()), stack.close


def run(sizes: list[int], backends: list[str], repeat: int) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        for backend in backends:
            for n in sizes:
                url, drop = _database(backend, tmp, n)
                try:
                    t0 = time.perf_counter()
                    populate(url, n)
                    setup = time.perf_counter() - t0
                    timed = _child(url, str(tmp / f"out-{backend}-{n}"), False, repeat)
                    mem = _child(url, str(tmp / f"out-{backend}-{n}"), memory=True)
                finally:
                    drop()
                best, median = timed["seconds"][0], timed["seconds"][len(timed["seconds"]) // 2]
                rows.append(
                    {
                        "backend": backend,
                        "db_tasks": n,
                        "exported_tasks": timed["tasks"],
                        "examples": timed["examples"],
                        "setup_s": round(setup, 2),
                        "export_s_best": round(best, 3),
                        "export_s_median": round(median, 3),
                        "client_cpu_s": round(timed["cpu_seconds"][0], 3),
                        "tasks_per_s": round(timed["tasks"] / best),
                        "tasks_per_s_median": round(timed["tasks"] / median),
                        "tracemalloc_peak_mb": round(mem["tracemalloc_peak_mb"], 2),
                        "rss_growth_mb": round(mem["rss_growth_mb"], 1),
                        "same_hash_every_time": len({*timed["hashes"], *mem["hashes"]}) == 1,
                        "load_avg_1m": round(os.getloadavg()[0], 1),
                    }
                )
    return {"rows": rows, "goals": _goals(rows, sizes, backends)}


def _goals(rows: list[dict[str, Any]], sizes: list[int], backends: list[str]) -> list[dict]:
    goals = []
    big = max(sizes)
    for backend in backends:
        row = next(r for r in rows if r["backend"] == backend and r["db_tasks"] == big)
        value = row["tasks_per_s"]
        goals.append(
            {
                "name": f"{backend}_tasks_per_s",
                "value": value,
                "target": TARGET_RATE,
                "direction": "higher",
                "met": value >= TARGET_RATE,
            }
        )
    if len(sizes) >= 2:
        small = min(sizes)
        ratios = []
        for backend in backends:
            by = {r["db_tasks"]: r for r in rows if r["backend"] == backend}
            ratios.append(by[big]["tracemalloc_peak_mb"] / by[small]["tracemalloc_peak_mb"])
        value = round(max(ratios), 3)
        goals.append(
            {
                "name": f"memory_growth_{small // 1000}k_{big // 1000}k",
                "value": value,
                "target": TARGET_MEMORY_GROWTH,
                "direction": "lower",
                "met": value <= TARGET_MEMORY_GROWTH,
            }
        )
    return goals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgres"])
    parser.add_argument("--child", nargs=2, metavar=("URL", "DIR"), help=argparse.SUPPRESS)
    parser.add_argument("--memory", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--repeat", type=int, default=3, help="Timed exports per size (best).")
    args = parser.parse_args()
    if args.child:
        out = export_once(
            args.child[0], Path(args.child[1]), memory=args.memory, repeat=args.repeat
        )
        print(json.dumps(out))
        return
    result = run(args.sizes, args.backends, args.repeat)
    cols = list(result["rows"][0])
    print(" | ".join(cols))
    for row in result["rows"]:
        print(" | ".join(str(row[c]) for c in cols))
    for goal in result["goals"]:
        print(f"goal {goal['name']}: {goal['value']} (target {goal['target']}, met={goal['met']})")
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
