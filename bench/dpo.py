"""DPO benchmark: our --method dpo against TRL's DPOTrainer, SmolLM2-135M, CPU, same pairs.

Pairs from the 175 Self-Instruct seed tasks: the prompt is a task (its first input appended),
chosen its own first output, rejected the next task's output; sequence length 256, batch 4,
beta 0.1, sigmoid loss, fp32 on both sides. Each trainer runs in a child process of its own, so
the peak resident size (ru_maxrss) of each is its own. Tokens/s counts the prompt+chosen and
prompt+rejected tokens of each step and skips the first (warm-up) step; ours also reports the
rate with its one reference pass (the starting model over every train pair) counted in, since
TRL instead runs the reference model inside every step. `--no-keep-freed-memory` runs ours
without the glibc setting (keep_freed_memory), to price it.

Run: `python bench/dpo.py [--steps 3] [--pairs 64] [--threads 2]`; writes bench/results/dpo.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data"

from bench.result_file import goal, write_result  # noqa: E402 (after the path is set)
from bench.trainer import measure_in_child, peak_rss_mb, train_timed  # noqa: E402
from dataformats.jsonl import read_jsonl, write_jsonl  # noqa: E402
from dataformats.preference import preference_record  # noqa: E402

RESULT = ROOT / "bench" / "results" / "dpo.json"
LENGTH, BATCH, BETA = 256, 4, 0.1


def seed_pairs(limit: int) -> list[dict[str, Any]]:
    """Conversational pairs from the seed tasks: own output chosen, the next task's rejected."""
    tasks = [t for _, t in read_jsonl(SHARED / "self_instruct_seed_tasks.jsonl")][: limit + 1]
    prompts, outputs = [], []
    for task in tasks:
        instance = task["instances"][0]
        prompt = task["instruction"] + (f"\n\n{instance['input']}" if instance["input"] else "")
        prompts.append(prompt)
        outputs.append(instance["output"])
    return [
        preference_record(prompts[i], outputs[i], outputs[i + 1], conversational=True)
        for i in range(limit)
    ]


def write_pairs(directory: Path, pairs: list[dict[str, Any]]) -> Path:
    """A preference export's layout (conversational; all pairs train, none validation)."""
    files = {}
    for split, rows in (("train", pairs), ("validation", [])):
        path = directory / "conversational" / f"{split}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        count = write_jsonl(path, rows)
        files[f"conversational/{split}.jsonl"] = {
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "rows": count,
        }
    (directory / "manifest.json").write_text(json.dumps({"run_id": None, "files": files}))
    return directory


def run_ours(model_dir: Path, pairs_dir: Path, out: Path, steps: int, keep: bool) -> dict[str, Any]:
    from trainer import TrainConfig
    from trainer.dpo import train_dpo

    config = TrainConfig(
        model=str(model_dir), method="dpo", output_dir=str(out), max_length=LENGTH,
        batch_size=BATCH, max_steps=steps + 1, eval_steps=0, learning_rate=5e-7, beta=BETA,
        precision="fp32", save_model=False, keep_freed_memory=keep,
    )  # fmt: skip
    result = train_dpo(config, pairs_dir=pairs_dir)
    lines = [r for _, r in read_jsonl(out / "metrics.jsonl") if r["type"] == "train"][1:]
    tokens = sum(r["tokens"] for r in lines)
    seconds = sum(r["step_seconds"] for r in lines)
    per_step_ref = result.metrics["reference_seconds"] / max(result.metrics["steps"], 1)
    return {
        "tokens_per_s": tokens / seconds,
        "tokens_per_s_with_reference": tokens / (seconds + per_step_ref * len(lines)),
        "tokens": tokens,
        "seconds": seconds,
    }


def run_trl(model_dir: Path, pairs: list[dict[str, Any]], out: Path, steps: int) -> dict[str, Any]:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer  # type: ignore[attr-defined]

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(
        model_dir, dtype=torch.float32, attn_implementation="sdpa"
    )
    args = DPOConfig(
        output_dir=str(out), max_length=LENGTH, per_device_train_batch_size=BATCH,
        max_steps=steps + 1, learning_rate=5e-7, beta=BETA, loss_type=["sigmoid"],
        logging_steps=1, save_strategy="no", report_to="none", use_cpu=True, bf16=False,
        dataloader_num_workers=0, seed=0, disable_tqdm=True,
    )  # fmt: skip
    trainer = DPOTrainer(
        model=model, args=args, train_dataset=Dataset.from_list(pairs), processing_class=tokenizer
    )
    counts: list[int] = []
    collator = trainer.data_collator

    def counting(features: list[dict[str, Any]]) -> dict[str, Any]:
        batch = collator(features)
        total = 0
        for key, value in batch.items():
            if key.endswith("attention_mask") and hasattr(value, "sum"):
                total += int(value.sum()) * (2 if key.startswith("prompt") else 1)
        counts.append(total)
        return batch

    trainer.data_collator = counting
    ends = train_timed(trainer)
    tokens = sum(counts[1 : len(ends)])
    seconds = ends[-1] - ends[0]
    return {"tokens_per_s": tokens / seconds, "tokens": tokens, "seconds": seconds}


def child(options: argparse.Namespace) -> None:
    """One trainer in this process; prints its figures and peak RSS as one JSON line."""
    import torch

    torch.set_num_threads(options.threads)
    from generators.embedded_model import prepare_embedded_model

    model_dir = prepare_embedded_model(ROOT / "data" / "model-cache")
    pairs = seed_pairs(options.pairs)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if options.one == "trl":
            result = run_trl(model_dir, pairs, root / "trl", options.steps)
        else:
            keep = options.one == "ours"
            pairs_dir = write_pairs(root / "pairs", pairs)
            result = run_ours(model_dir, pairs_dir, root / "ours", options.steps, keep)
    print(json.dumps(result | {"peak_rss_mb": peak_rss_mb()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3, help="Measured steps (plus 1 warm-up).")
    parser.add_argument("--pairs", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--one", choices=["ours", "ours-no-keep", "trl"], help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.one:
        child(options)
        return
    report = {}
    args = ["--steps", str(options.steps), "--pairs", str(options.pairs)]
    args += ["--threads", str(options.threads)]
    for name in ("trl", "ours", "ours-no-keep"):
        report[name] = measure_in_child(__file__, name, args)
    rows = [
        {
            "run": name,
            "tokens_per_s": round(r["tokens_per_s"], 1),
            "tokens_per_s_with_reference": r.get("tokens_per_s_with_reference")
            and round(r["tokens_per_s_with_reference"], 1),
            "tokens": r["tokens"],
            "seconds": round(r["seconds"], 1),
            "peak_rss_mb": round(r["peak_rss_mb"]),
        }
        for name, r in report.items()
    ]
    for row in rows:
        print(row)
    speed = report["ours"]["tokens_per_s"] / report["trl"]["tokens_per_s"]
    memory = report["ours"]["peak_rss_mb"] / report["trl"]["peak_rss_mb"]
    goals = [
        goal("vs_trl", round(speed, 3), 1.5, "higher"),
        goal("peak_rss_vs_trl", round(memory, 3), 1.0, "lower"),
    ]
    env = {"threads": options.threads, "pairs": options.pairs, "steps": options.steps,
           "loadavg": Path("/proc/loadavg").read_text().split()[:3]}  # fmt: skip
    write_result(RESULT, rows, goals, env)


if __name__ == "__main__":
    main()
