"""GPU benchmark: transformers-backend generation and this trainer against TRL, on one CUDA GPU.

1. The transformers backend's generation throughput in bf16 at batch 64: 64 seeded few-shot
   instruction prompts (as ``bench/backends.py`` builds them), one warm-up batch, then the best
   of ``--repeats`` timed batches; output tokens per second.
2. This trainer against TRL's SFTTrainer on the same data (the 175 Self-Instruct seed tasks as
   chat messages, as ``bench/trainer.py``): both bf16 autocast over fp32 weights, packing on,
   assistant-only loss, sequence length 512, batch 4; real (non-pad) tokens per second over the
   steps after the first. Ours runs with its default attention (``auto``) and, as a second
   row, the SDPA block mask. Goal ``trainer_vs_trl_gpu`` >= 1.3 (ours ``auto`` over TRL).

Without a CUDA device (or without torch) it does not fail: it writes a result file saying
``skipped`` and why, with no goals, and exits 0. vLLM is never imported (the transformers
backend and the trainer need only torch and transformers), so it runs where vLLM is absent.
Sized to finish well under 8 minutes on one GPU. ``--device cpu`` with tiny sizes runs the same
code on a CPU (the unit test does; its figures mean nothing).

Run: ``python bench/gpu.py [--steps 20] [--repeats 3] [--max-tokens 256]``; writes
``bench/results/gpu.json``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data"

from bench.result_file import goal, write_result  # noqa: E402 (after the path is set)

RESULT = ROOT / "bench" / "results" / "gpu.json"


def skip_reason(device: str) -> str | None:
    """Why the benchmark cannot run on `device` here (None: it can)."""
    try:
        import torch
    except ImportError:
        return "torch is not installed"
    if device.startswith("cuda") and not torch.cuda.is_available():
        return "no CUDA device visible"
    return None


def generation(model_dir: Path, device: str, prompts: int, max_tokens: int, repeats: int) -> dict:
    """Output tokens/s of the transformers backend in bf16, all prompts in one batch."""
    from bench.backends import build_prompts
    from generators.backends.transformers import TransformersBackend
    from generators.seed_tasks import read_seed_tasks
    from generators.types import SamplingParams

    pool = read_seed_tasks(SHARED / "self_instruct_seed_tasks.jsonl")
    batch = build_prompts(pool, prompts, seed=0)
    backend = TransformersBackend(model_dir, batch_size=prompts, dtype="bfloat16", device=device)
    sampling = SamplingParams(temperature=0.7, top_p=0.5, max_tokens=max_tokens, seed=0)
    try:
        backend.generate(batch[: min(8, prompts)], sampling)  # warm-up (kernels, allocator)
        runs = []
        for _ in range(repeats):
            started = time.perf_counter()
            out = backend.generate(batch, sampling)
            seconds = time.perf_counter() - started
            tokens = sum(c.completion_tokens for c in out)
            runs.append((tokens / seconds, tokens, seconds))
    finally:
        backend.close()
    best = max(runs)
    return {
        "run": f"transformers backend generate, batch {prompts}, bf16",
        "output_tokens_per_s": round(best[0], 1),
        "output_tokens": best[1],
        "seconds": round(best[2], 3),
        "all_runs_tok_s": [round(r[0], 1) for r in runs],
        "dtype": backend.model_info.dtype,
    }


def training(model_dir: Path, device: str, steps: int, limit: int | None) -> dict[str, dict]:
    """Tokens/s of this trainer (auto and sdpa attention) and of TRL, bf16, packed."""
    from bench.trainer import chat_rows, run_ours, run_trl, write_version

    seeds = chat_rows(SHARED / "self_instruct_seed_tasks.jsonl", "seed:", limit)
    report: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = write_version(root, "seed-chat", seeds, [])
        report["trl SFTTrainer packed (bf16)"] = run_trl(
            model_dir, seeds, root / "trl", steps, bf16=True, device=device
        )
        for name, attention in (("auto", "auto"), ("sdpa block mask", "sdpa")):
            report[f"ours packed, {name} (bf16)"] = run_ours(
                model_dir,
                data,
                root / attention,
                steps,
                precision="bf16",
                device=device,
                attn_implementation=attention,
            )
    return report


def environment(device: str) -> dict[str, Any]:
    import torch

    env: dict[str, Any] = {"device": device, "torch": torch.__version__}
    if device.startswith("cuda"):
        env |= {
            "gpu": torch.cuda.get_device_name(),
            "bf16_supported": torch.cuda.is_bf16_supported(),
            "cuda": torch.version.cuda,
        }
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--prompts", type=int, default=64, help="The generation batch.")
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20, help="Measured steps (+1 warm-up).")
    parser.add_argument("--seed-limit", type=int, default=None, help="Train on the first N.")
    parser.add_argument("--out", type=Path, default=RESULT)
    options = parser.parse_args(argv)
    why = skip_reason(options.device)
    if why is not None:
        write_result(options.out, [{"skipped": True, "reason": why}], [], {"skipped": why})
        print(f"skipped: {why}")
        return 0
    from generators.embedded_model import prepare_embedded_model

    cache = Path(os.environ.get("INSTRUCTFORGE_MODEL_CACHE_DIR", ROOT / "data" / "model-cache"))
    model_dir = prepare_embedded_model(cache)
    started = time.perf_counter()
    rows = [
        generation(model_dir, options.device, options.prompts, options.max_tokens, options.repeats)
    ]
    print(rows[0], flush=True)
    report = training(model_dir, options.device, options.steps, options.seed_limit)
    for name, result in report.items():
        rows.append(
            {
                "run": name,
                "tokens_per_s": round(result["tokens_per_s"], 1),
                "real_tokens": result["tokens"],
                "seconds": round(result["seconds"], 3),
                "packing_efficiency": round(result["packing_efficiency"], 4),
                "precision": result["precision"],
                "attention": result["attention"],
            }
        )
        print(rows[-1], flush=True)
    wall = time.perf_counter() - started
    ours = report["ours packed, auto (bf16)"]["tokens_per_s"]
    trl = report["trl SFTTrainer packed (bf16)"]["tokens_per_s"]
    goals = [
        goal("trainer_vs_trl_gpu", round(ours / trl, 4), 1.3, "higher"),
        goal("wall_s", round(wall, 1), 480.0, "lower"),
    ]
    write_result(options.out, rows, goals, environment(options.device))
    return 0


if __name__ == "__main__":
    sys.exit(main())
