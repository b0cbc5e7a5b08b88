"""Past one machine: the near-duplicate pool shared in Redis at 100k and 1M tasks, and workers.

Part 1, the pool (``--pools``, default 100,000 and 1,000,000 tasks): a PostgreSQL database
holds a run whose pool is the Self-Instruct seed set plus N machine tasks (the distinct
Stanford Alpaca instructions, then rule-made paraphrases of them generated here, seeded:
``bench/paraphrases.py``), bulk-loaded with COPY. Measured:

* ``claim_cold_s``: the first claim, which builds the run's pool in Redis from the database;
* ``claim_s``: a later claim (another worker), what ``open_pipeline`` costs once Redis holds
  the pool: the seed tasks and the machine tasks' ids read (a prompt reads the machine tasks
  it draws: ``service.runs.few_shot_pool``), and a sync that finds nothing to add;
* ``claim_memory_s`` (pools up to ``--memory-claim-max``): the claim without Redis, which
  reloads and re-indexes the whole pool in the worker, as every claim did before;
* per candidate, checking batches of ``--batch`` candidates (paraphrases of pool tasks, about
  half rejected, and the 252 user-oriented instructions) against the pool: wall ms, the
  worker's CPU ms and Redis's CPU ms (``INFO cpu``), round trips per batch (3: token ids,
  the posting lists of the queries' prefixes, member codes), and the commands and bytes
  Redis saw per candidate (``INFO commandstats``, ``INFO stats``: the whole server's, so
  another client's traffic would show);
* Redis memory (``used_memory`` grown by the pool) and keys.

Part 2, workers (``--workers``, default 1, 2, 4): worker processes against one PostgreSQL,
one Redis and two **scripted OpenAI-compatible servers** (``bench/scripted_openai.py``: canned
completions, no model - so the rates are of the non-inference part only, and say nothing
about generation speed; two real ``vllm serve`` do not fit on this machine's 2 shared
cores). On one run (a run is leased to one worker at a time, so extra workers wait) and on
as many runs as workers. Reported: accepted tasks per minute per worker, and the share of
the workers' wall time spent in database statements and in the shared index.

Run: python bench/scale.py [--pools 100000 1000000] [--workers 1 2 4] [--smoke]
(writes bench/results/scale.json; --smoke: tiny sizes, for tests/bench/test_scale_smoke.py)
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import resource
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from paraphrases import paraphrase  # noqa: E402  (bench/ on sys.path)
from result_file import goal, write_result  # noqa: E402

from bench.databases import pg_database  # noqa: E402
from bench.servers import scripted_servers  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
RESULT = ROOT / "bench" / "results" / "scale.json"
REDIS_URL = os.environ.get("INSTRUCTFORGE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
SEED = 20


def alpaca_instructions() -> list[str]:
    data = json.loads((SHARED / "alpaca_data.json").read_text())
    return list(dict.fromkeys(d["instruction"] for d in data))


def pool_texts(n: int, rng: random.Random) -> list[str]:
    """n instructions: distinct Alpaca ones, then paraphrases of them (1-4 operations)."""
    base = alpaca_instructions()
    texts = base[:n]
    while len(texts) < n:
        texts.append(paraphrase(rng.choice(base), rng, rng.randint(1, 4)))
    return texts


def user_oriented() -> list[str]:
    lines = (SHARED / "self_instruct_user_oriented_instructions.jsonl").read_text().splitlines()
    return [json.loads(line)["instruction"] for line in lines if line.strip()]


def libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def make_runs(url: str, runs: int, config: dict[str, Any]) -> tuple[int, list[int]]:
    """The default seed set and `runs` queued runs of `config`; (seed set id, run ids)."""
    from service.cli import default_seed_path
    from service.seed_files import parse_seed_file
    from service.storage.db import Database
    from service.storage.runs import create_run
    from service.storage.seeds import import_seed_set

    db = Database(url)
    try:
        with db.transaction() as s:
            seed_set = import_seed_set(
                s, name="default", seed_file=parse_seed_file(default_seed_path().read_bytes())
            ).seed_set
            ids = [
                create_run(
                    s, seed_set_id=seed_set.id, config=config, config_hash="0" * 64,
                    policy_version="v1", target_tasks=10_000_000,
                ).id
                for _ in range(runs)
            ]  # fmt: skip
            return seed_set.id, ids
    finally:
        db.dispose()


def copy_pool(url: str, seed_set_id: int, run_id: int, texts: list[str]) -> float:
    """Accepted machine tasks of iteration 1 (one instance each) by COPY; seconds taken."""
    started = time.perf_counter()
    columns = (
        "origin, seed_set_id, run_id, iteration, instruction, is_classification, status, created_at"
    )
    now = datetime.now(UTC)
    with psycopg.connect(libpq(url)) as conn:
        with conn.cursor().copy(f"COPY tasks ({columns}) FROM STDIN") as copy:
            for text in texts:
                copy.write_row(("machine", seed_set_id, run_id, 1, text, False, "accepted", now))
        conn.execute(
            "INSERT INTO instances (task_id, idx, input, output, status) "
            "SELECT id, 0, '', 'An answer.', 'accepted' FROM tasks WHERE run_id = %s",
            (run_id,),
        )
        conn.execute(
            "UPDATE runs SET iteration = 1, accepted_count = %s, generated_count = %s "
            "WHERE id = %s",
            (len(texts), len(texts), run_id),
        )
        conn.execute("ANALYZE tasks")
        conn.execute("ANALYZE instances")
    return time.perf_counter() - started


def redis_cpu(client: redis.Redis) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def redis_traffic(client: redis.Redis) -> tuple[int, int, int]:
    """(commands, bytes in, bytes out) the server has seen (the INFO calls' own included)."""
    stats = client.info("stats")
    calls = sum(int(v["calls"]) for v in client.info("commandstats").values())
    return calls, int(stats["total_net_input_bytes"]), int(stats["total_net_output_bytes"])


def claim(url: str, run_id: int, redis_url: str | None) -> tuple[Any, float]:
    """What a worker does at a claim: open the run's pipeline. (pipeline, seconds)."""
    from service.runs.pipeline import open_pipeline
    from service.settings import Settings
    from service.storage.db import Database

    db = Database(url)
    started = time.perf_counter()
    pipeline = open_pipeline(
        db, run_id, settings=Settings(database_url=url, redis_url=redis_url),
        backend_for=lambda _c: None,  # type: ignore[arg-type,return-value]
    )  # fmt: skip
    took = time.perf_counter() - started
    db.dispose()
    return pipeline, took


def candidates_for(texts: list[str], count: int, rng: random.Random) -> list[str]:
    """Half paraphrases of pool tasks (mostly near-duplicates), half new instructions."""
    new = user_oriented()
    out = [paraphrase(rng.choice(texts), rng, 1) for _ in range(count // 2)]
    out += [new[i % len(new)] for i in range(count - len(out))]
    rng.shuffle(out)
    return out


def pool_row(n: int, args: argparse.Namespace) -> dict[str, Any]:
    """Part 1 at one pool size."""
    from service.runs.shared_index import RedisPool

    rng = random.Random(SEED + n)
    texts = pool_texts(n, rng)
    client = redis.Redis.from_url(REDIS_URL)
    row: dict[str, Any] = {"part": "pool", "pool_machine_tasks": n}
    config = {"seed_set": "default", "backend": "openai", "model": "scripted"}
    with pg_database("if_scale") as url:
        seed_set_id, (run_id,) = make_runs(url, 1, config)
        row["copy_s"] = round(copy_pool(url, seed_set_id, run_id, texts), 2)
        memory_before = int(client.info("memory")["used_memory"])
        keys_before = int(client.dbsize())
        pipeline, row["claim_cold_s"] = claim(url, run_id, REDIS_URL)
        pool: RedisPool = pipeline.index.storage
        row["redis_memory_mb"] = round(
            (int(client.info("memory")["used_memory"]) - memory_before) / 2**20, 1
        )
        row["redis_keys"] = int(client.dbsize()) - keys_before
        del pipeline
        started_cpu = time.process_time()
        pipeline, row["claim_s"] = claim(url, run_id, REDIS_URL)
        row["claim_cpu_s"] = round(time.process_time() - started_cpu, 2)
        row["claim_s"] = round(row["claim_s"], 2)
        row["claim_cold_s"] = round(row["claim_cold_s"], 2)
        row["few_shot_pool"] = len(pipeline.machine_tasks) + len(pipeline.seed_tasks)
        cands = candidates_for(texts, args.candidates, rng)
        batches = [cands[i : i + args.batch] for i in range(0, len(cands), args.batch)]
        index = pipeline.index
        traffic = redis_traffic(client)
        wall, cpu, server = time.perf_counter(), time.process_time(), redis_cpu(client)
        rejected = 0
        for b, batch in enumerate(batches):
            verdicts = index.check_batch(
                [(f"c{b}.{i}", t) for i, t in enumerate(batch)], add_accepted=False
            )
            rejected += sum(not v.accepted for v in verdicts)
        wall = time.perf_counter() - wall
        cpu = time.process_time() - cpu
        server = redis_cpu(client) - server
        after = redis_traffic(client)
        calls, bytes_in, bytes_out = (b - a for a, b in zip(traffic, after, strict=True))
        row |= {
            "candidates": len(cands), "batch": args.batch, "rejected": rejected,
            "per_candidate_wall_ms": round(1000 * wall / len(cands), 3),
            "per_candidate_worker_cpu_ms": round(1000 * cpu / len(cands), 3),
            "per_candidate_redis_cpu_ms": round(1000 * server / len(cands), 3),
            "per_candidate_ms": round(1000 * (cpu + server) / len(cands), 3),
            "round_trips_per_batch": 3,
            "redis_commands_per_batch": round(calls / len(batches), 1),
            "redis_bytes_in_per_candidate": round(bytes_in / len(cands)),
            "redis_bytes_out_per_candidate": round(bytes_out / len(cands)),
        }  # fmt: skip
        del pipeline
        if n <= args.memory_claim_max:
            _, took = claim(url, run_id, None)
            row["claim_memory_s"] = round(took, 2)
        pool.wipe()
    client.close()
    row["max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print_row(row)
    return row


# --- part 2: workers -----------------------------------------------------------------------


UNTIL_ACCEPTED_MAX_S = 300.0


def worker_process(url: str, servers: str, seconds: float, out: Any, until_accepted: int) -> None:
    """One worker for `seconds`, and (`until_accepted` > 0) past them until the database holds
    that many accepted machine tasks; puts its timings (wall, database, index) on `out`."""
    from sqlalchemy import event

    import service.runs.pipeline as pipeline_module
    from service.runs.shared_index import RedisPool
    from service.runs.worker import Worker
    from service.settings import Settings
    from service.storage.db import Database

    spent = {"db_s": 0.0, "index_s": 0.0}
    db = Database(url)

    def before(conn: Any, *args: Any) -> None:
        conn.info.setdefault("t", []).append(time.perf_counter())

    def after(conn: Any, *args: Any) -> None:
        spent["db_s"] += time.perf_counter() - conn.info["t"].pop()

    event.listen(db.engine, "before_cursor_execute", before)
    event.listen(db.engine, "after_cursor_execute", after)

    def timed(fn: Any) -> Any:
        def wrapper(*a: Any, **k: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                spent["index_s"] += time.perf_counter() - t

        return wrapper

    # Redis work of the index: candidate queries, adds and mark reads (sync's database reads
    # are counted as database time by the statement events, not here).
    for name in ("candidates", "advance", "mark", "present"):
        setattr(RedisPool, name, timed(getattr(RedisPool, name)))
    settings = Settings(
        database_url=url, redis_url=REDIS_URL, openai_base_url=servers, poll_seconds=0.1
    )
    worker = Worker(settings=settings, database=db)
    del pipeline_module
    started = time.perf_counter()
    import threading

    def stop_when_done() -> None:
        # Past `seconds`, poll for the accepted count until UNTIL_ACCEPTED_MAX_S; a row that
        # never gets there ends with what it has (the caller sees accepted == 0).
        deadline, cap = started + seconds, started + seconds + UNTIL_ACCEPTED_MAX_S
        while not worker.stop_requested.wait(max(0.0, deadline - time.perf_counter())):
            try:
                done = accepted_machine(url) >= until_accepted
            except psycopg.Error:
                done = True
            if done or time.perf_counter() > cap:
                worker.stop_requested.set()
            deadline = time.perf_counter() + 0.1

    timer = threading.Thread(target=stop_when_done, daemon=True)
    timer.start()
    worker.run_forever()
    spent["wall_s"] = time.perf_counter() - started
    db.dispose()
    out.put(spent)


def accepted_machine(url: str) -> int:
    with psycopg.connect(libpq(url)) as conn:
        row = conn.execute(
            "SELECT count(*) FROM tasks WHERE origin = 'machine' AND status = 'accepted'"
        ).fetchone()
        return int(row[0]) if row else 0


def workers_row(
    workers: int, runs: int, args: argparse.Namespace, servers: list[str]
) -> dict[str, Any]:
    """Part 2: `workers` worker processes on `runs` runs for --worker-seconds."""
    config = {
        "seed_set": "default",
        "backend": "openai",
        "model": "scripted",
        "bootstrap": {"prompts_per_iteration": args.prompts},
    }
    rng = random.Random(SEED)
    with pg_database("if_scale") as url:
        seed_set_id, run_ids = make_runs(url, runs, config)
        for run_id in run_ids:
            copy_pool(url, seed_set_id, run_id, pool_texts(args.worker_pool, rng))
        before = accepted_machine(url)
        until = before + args.until_accepted if args.until_accepted else 0
        ctx = mp.get_context("spawn")
        out = ctx.Queue()
        procs = [
            ctx.Process(
                target=worker_process,
                args=(url, ",".join(servers), args.worker_seconds, out, until),
            )
            for _ in range(workers)
        ]
        for p in procs:
            p.start()
        spent = [out.get(timeout=args.worker_seconds + 600) for _ in procs]
        for p in procs:
            p.join()
        accepted = accepted_machine(url) - before
        client = redis.Redis.from_url(REDIS_URL)
        # Only this database's pools: other benches (and runs) may be using the same Redis.
        name = url.rsplit("/", 1)[1]
        for key in client.scan_iter(match=f"instructforge:ndx:*/{name}:*", count=10_000):
            client.unlink(key)
        client.close()
    wall = sum(s["wall_s"] for s in spent)
    row = {
        "part": "workers", "workers": workers, "runs": runs, "servers": len(servers),
        "inference": "scripted OpenAI-compatible servers (no model)",
        "pool_machine_tasks_per_run": args.worker_pool, "seconds": args.worker_seconds,
        "accepted": accepted,
        "accepted_per_min_per_worker": round(accepted / (wall / 60), 1),
        "accepted_per_min": round(accepted / (max(s["wall_s"] for s in spent) / 60), 1),
        "db_share": round(sum(s["db_s"] for s in spent) / wall, 3),
        "index_share": round(sum(s["index_s"] for s in spent) / wall, 3),
    }  # fmt: skip
    print_row(row)
    return row


def print_row(row: dict[str, Any]) -> None:
    print("  ".join(f"{k}={v}" for k, v in row.items()), flush=True)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pools", type=int, nargs="*", default=[100_000, 1_000_000])
    parser.add_argument("--candidates", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=8, help="candidates per check_batch")
    parser.add_argument("--memory-claim-max", type=int, default=100_000)
    parser.add_argument("--workers", type=int, nargs="*", default=[1, 2, 4])
    parser.add_argument("--worker-seconds", type=float, default=60.0)
    parser.add_argument("--worker-pool", type=int, default=20_000)
    parser.add_argument("--prompts", type=int, default=4, help="prompts per iteration")
    parser.add_argument("--result", type=Path, default=RESULT)
    parser.add_argument(
        "--until-accepted",
        type=int,
        default=0,
        help="keep the workers past --worker-seconds until the runs hold this many more "
        "accepted tasks (0: stop at --worker-seconds)",
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (tests)")
    args = parser.parse_args(argv)
    if args.smoke:
        # The workers stop as soon as they have accepted something (what the smoke checks),
        # however loaded the machine: a fixed window either wastes time or is too short.
        args.pools, args.candidates, args.workers = [2_000], 40, [1, 2]
        args.worker_seconds, args.worker_pool, args.until_accepted = 1.0, 500, 1
    rows = [pool_row(n, args) for n in args.pools]
    if args.workers:
        with scripted_servers(2) as servers:
            for w in args.workers:
                rows.append(workers_row(w, 1, args, servers))
                if w > 1:
                    rows.append(workers_row(w, w, args, servers))
    largest = max((r for r in rows if r["part"] == "pool"), key=lambda r: r["pool_machine_tasks"])
    size = largest["pool_machine_tasks"]
    suffix = "1m" if size == 1_000_000 else str(size)
    goals = [
        goal(f"claim_{suffix}_s", largest["claim_s"], 10.0, "lower"),
        goal(f"per_candidate_ms_{suffix}", largest["per_candidate_ms"], 2.0, "lower"),
    ]
    env = {
        "cpus": os.cpu_count(),
        "loadavg_start": LOAD_START,
        "loadavg_end": Path("/proc/loadavg").read_text().split()[:3],
        "note": "per_candidate_ms = worker CPU + Redis CPU per candidate (wall shown beside); "
        "worker rows use scripted servers: non-inference throughput only",
    }
    write_result(args.result, rows, goals, env)
    return {"rows": rows, "goals": goals}


LOAD_START = Path("/proc/loadavg").read_text().split()[:3]

if __name__ == "__main__":
    main()
