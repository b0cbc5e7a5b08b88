"""Trainer benchmark: this trainer against TRL's SFTTrainer on SmolLM2-135M, CPU, same data.

Both train on the 175 Self-Instruct seed tasks as chat messages (an exported dataset version
written here), sequence length 512, batch 4, the same few steps, assistant-only loss and packing
on. Tokens/s counts only real (non-pad) tokens and skips the first (warm-up) step of each run.
Also: this trainer packed vs padded, packing efficiency, and the held-out loss on the
user-oriented instructions before and after the short run (they are the run's validation split).
Each row names its attention kernel: ours packed uses `auto` (sdpa_varlen: flattened rows, exact
causal attention per example), padded uses SDPA with a causal + padding mask (dynamic padding);
`--extra` adds the older SDPA block-diagonal mask and fp32 rows. Every run is a child process of
its own, so its peak resident size (`peak_rss_mb`, ru_maxrss) is its own: TRL as shipped, ours
with its defaults (keep_freed_memory and gradient_checkpointing on) and with each turned off, to
price them side by side. Goal `peak_rss_vs_trl`: ours packed over TRL, at most 1.0.

Run: `python bench/trainer.py [--steps 3] [--threads 2] [--extra]`;
writes bench/results/trainer.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
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
from dataformats.jsonl import read_jsonl  # noqa: E402

RESULT = ROOT / "bench" / "results" / "trainer.json"
LENGTH, BATCH = 512, 4
# SmolLM2's template with TRL's generation markers around what the assistant says; it renders
# the same text, and it is what TRL's assistant_only_loss needs to find assistant tokens.
TRL_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
    "Face<|im_end|>\n' }}{% endif %}{% if message['role'] == 'assistant' %}"
    "{{ '<|im_start|>assistant\n' }}{% generation %}{{ message['content'] + '<|im_end|>' }}"
    "{% endgeneration %}{{ '\n' }}{% else %}{{ '<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n' }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def chat_rows(path: Path, prefix: str, limit: int | None = None) -> list[dict[str, Any]]:
    """Self-Instruct tasks (instruction, instances) as chat rows, first instance each."""
    rows = []
    for _, task in read_jsonl(path)[:limit]:
        instance = task["instances"][0]
        user = task["instruction"] + (f"\n\n{instance['input']}" if instance["input"] else "")
        kind = "classification" if task.get("is_classification") else "generation"
        rows.append(
            {
                "id": f"{prefix}{task['id']}:0",
                "task_id": task["id"],
                "task_type": kind,
                "messages": [
                    {"role": "user", "content": user.strip()},
                    {"role": "assistant", "content": instance["output"].strip()},
                ],
            }
        )
    return rows


def write_version(root: Path, name: str, train: list[dict], validation: list[dict]) -> Path:
    """Write an exported dataset version (the service's layout) for the benchmark."""
    directory = root / name / "v1"
    directory.mkdir(parents=True)
    listing = {}
    for file_name, rows in (
        ("train.messages.jsonl", train),
        ("validation.messages.jsonl", validation),
    ):
        if not rows:
            continue
        data = "".join(json.dumps(r) + "\n" for r in rows).encode()
        (directory / file_name).write_bytes(data)
        listing[file_name] = {
            "sha256": hashlib.sha256(data).hexdigest(),
            "bytes": len(data),
            "rows": len(rows),
        }
    content = hashlib.sha256(json.dumps(listing, sort_keys=True).encode()).hexdigest()
    manifest = {
        "dataset": name,
        "version": 1,
        "content_hash": content,
        "spec": {},
        "spec_hash": "",
        "counts": {},
        "lineage": {},
        "files": listing,
    }
    (directory / "manifest.json").write_text(json.dumps(manifest))
    return directory


def run_ours(
    model_dir: Path, dataset: Path, out: Path, steps: int, **overrides: Any
) -> dict[str, Any]:
    """Train with this trainer; tokens/s over steps 2..N, real tokens only."""
    from trainer import TrainConfig, train

    values: dict[str, Any] = {
        "model": str(model_dir),
        "output_dir": str(out),
        "max_length": LENGTH,
        "batch_size": BATCH,
        "max_steps": steps + 1,
        "eval_steps": 0,
        "learning_rate": 5e-5,
        "warmup_steps": 0,
        "save_model": False,
        "eval_batch_size": 8,
    }
    result = train(TrainConfig(**(values | overrides)), dataset_dir=dataset)
    lines = [record for _, record in read_jsonl(out / "metrics.jsonl")]
    steps_ = [r for r in lines if r["type"] == "train"][1:]
    data = next(r for r in lines if r["type"] == "data")
    tokens = sum(r["tokens"] for r in steps_)
    seconds = sum(r["step_seconds"] for r in steps_)
    return {
        "tokens_per_s": tokens / seconds,
        "tokens": tokens,
        "seconds": seconds,
        "slots": sum(r["slots"] for r in steps_),
        "packing_efficiency": data["packing_efficiency"],
        "precision": result.metrics["precision"],
        "attention": result.metrics["attention"],
        "metrics": result.metrics,
    }


def run_trl(
    model_dir: Path, rows: list[dict], out: Path, steps: int, bf16: bool, device: str = "cpu"
) -> dict[str, Any]:
    """Train with TRL's SFTTrainer (assistant-only loss, bfd packing); real tokens per step.

    fp32 weights, with bf16 mixed precision (autocast) when `bf16`, as this trainer does; on
    `device` ``cpu`` or ``cuda`` (the Trainer's own placement).
    """
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.chat_template = TRL_TEMPLATE
    model = AutoModelForCausalLM.from_pretrained(
        model_dir, dtype=torch.float32, attn_implementation="sdpa"
    )
    args = SFTConfig(
        output_dir=str(out),
        max_length=LENGTH,
        packing=True,
        assistant_only_loss=True,
        per_device_train_batch_size=BATCH,
        gradient_accumulation_steps=1,
        max_steps=steps + 1,
        learning_rate=5e-5,
        lr_scheduler_type="cosine",
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=device == "cpu",
        bf16=bf16,
        dataloader_num_workers=0,
        seed=0,
        disable_tqdm=True,
    )
    dataset = Dataset.from_list([{"messages": r["messages"]} for r in rows])
    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer)
    counts: list[int] = []
    collator = trainer.data_collator

    def counting(features: list[dict]) -> dict:
        batch = collator(features)
        mask = batch.get("attention_mask")
        counts.append(int(mask.sum()) if mask is not None else int(batch["input_ids"].numel()))
        return batch

    trainer.data_collator = counting
    ends = train_timed(trainer)
    packed = [len(x) for x in trainer.train_dataset["input_ids"]]
    tokens = sum(counts[1 : len(ends)])
    seconds = ends[-1] - ends[0]
    return {
        "tokens_per_s": tokens / seconds,
        "tokens": tokens,
        "seconds": seconds,
        "packing_efficiency": sum(packed) / (len(packed) * LENGTH),
        "precision": "bf16" if bf16 else "fp32",
        "attention": "sdpa",
    }


def train_timed(trainer: Any) -> list[float]:
    """Run a transformers Trainer; the perf_counter time at the end of each optimizer step."""
    from transformers import TrainerCallback

    ends: list[float] = []

    class Clock(TrainerCallback):
        def on_step_end(self, *_: Any, **__: Any) -> None:
            ends.append(time.perf_counter())

    trainer.add_callback(Clock())
    trainer.train()
    return ends


def measure_in_child(script: str, name: str, args: list[str]) -> dict[str, Any]:
    """Run `script --one NAME ARGS` in a fresh Python; its last stdout line, as JSON.

    One trainer per process, so each peak resident size (ru_maxrss) is that trainer's alone and
    no run inherits another's heap or allocator setting.
    """
    argv = [sys.executable, script, "--one", name, *args]
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{name} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def peak_rss_mb() -> float:
    """This process's peak resident size so far, MiB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# name -> (trainer, keyword overrides for run_ours); every run uses the demo's length and batch.
RUNS: dict[str, tuple[str, dict[str, Any]]] = {
    # TRL first: if its setup breaks, the run fails before the long part.
    "trl SFTTrainer packed (fp32)": ("trl", {}),
    "ours packed (bf16 autocast)": ("ours", {"precision": "auto"}),
    "ours packed, keep_freed_memory off": ("ours", {"keep_freed_memory": False}),
    "ours packed, gradient_checkpointing off": ("ours", {"gradient_checkpointing": False}),
    "ours padded (bf16 autocast)": ("ours", {"packing": False}),
}
EXTRA_RUNS: dict[str, tuple[str, dict[str, Any]]] = {
    "ours packed, sdpa block mask (bf16 autocast)": ("ours", {"attn_implementation": "sdpa"}),
    "ours packed (fp32)": ("ours", {"precision": "fp32"}),
}


def child(options: argparse.Namespace) -> None:
    """One run of RUNS in this process; prints its figures and peak RSS as one JSON line."""
    import torch

    from generators.embedded_model import prepare_embedded_model

    torch.set_num_threads(options.threads)
    kind, overrides = (RUNS | EXTRA_RUNS)[options.one]
    model_dir = prepare_embedded_model(ROOT / "data" / "model-cache")
    seeds = chat_rows(SHARED / "self_instruct_seed_tasks.jsonl", "seed:")
    heldout = chat_rows(
        SHARED / "self_instruct_user_oriented_instructions.jsonl", "eval:", options.heldout
    )
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if kind == "trl":
            result = run_trl(model_dir, seeds, root / "out", options.steps, bf16=options.trl_bf16)
        else:
            # The packed default run also evaluates on the held-out split (the loss row).
            main_run = options.one == "ours packed (bf16 autocast)"
            data = write_version(root, "seed-demo", seeds, heldout if main_run else [])
            result = run_ours(model_dir, data, root / "out", options.steps, **overrides)
    print(json.dumps(result | {"peak_rss_mb": peak_rss_mb()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3, help="Measured steps (plus 1 warm-up).")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--heldout", type=int, default=64, help="Held-out instructions used.")
    parser.add_argument("--trl-bf16", action="store_true", help="TRL with bf16 autocast too.")
    parser.add_argument("--extra", action="store_true", help="Also the sdpa-mask and fp32 rows.")
    parser.add_argument("--one", choices=[*RUNS, *EXTRA_RUNS], help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.one:
        child(options)
        return
    args = ["--steps", str(options.steps), "--threads", str(options.threads)]
    args += ["--heldout", str(options.heldout)] + (["--trl-bf16"] if options.trl_bf16 else [])
    rows_out, report = [], {}
    for name in [*RUNS, *(EXTRA_RUNS if options.extra else [])]:
        started = time.perf_counter()
        report[name] = result = measure_in_child(__file__, name, args)
        rows_out.append(
            {
                "run": name,
                "tokens_per_s": round(result["tokens_per_s"], 1),
                "real_tokens": result["tokens"],
                "seconds": round(result["seconds"], 1),
                "peak_rss_mb": round(result["peak_rss_mb"]),
                "packing_efficiency": result["packing_efficiency"]
                and round(result["packing_efficiency"], 4),
                "precision": result["precision"],
                "attention": result["attention"],
                "wall_s": round(time.perf_counter() - started, 1),
            }
        )
        print(
            f"{name:45s} {result['tokens_per_s']:8.1f} tok/s  "
            f"peak {result['peak_rss_mb']:7.0f} MiB  eff={result['packing_efficiency']}",
            flush=True,
        )
    write_results(rows_out, report, options)


def write_results(rows: list[dict], report: dict[str, Any], options: argparse.Namespace) -> None:
    """Print the table, compute the goals, write bench/results/trainer.json."""
    ours = report["ours packed (bf16 autocast)"]
    trl = report["trl SFTTrainer packed (fp32)"]
    padded = report["ours padded (bf16 autocast)"]
    demo = ours["metrics"]
    rows.append(
        {
            "run": f"held-out loss (user-oriented, first {options.heldout})",
            "before": round(demo["initial_val_loss"], 4),
            "after": round(demo["val_loss"], 4),
            "steps": demo["steps"],
        }
    )
    goals = [
        goal("vs_trl", round(ours["tokens_per_s"] / trl["tokens_per_s"], 4), 1.5, "higher"),
        goal("packing_efficiency", round(ours["packing_efficiency"], 4), 0.98, "higher"),
        goal(
            "packed_vs_padded",
            round(ours["tokens_per_s"] / padded["tokens_per_s"], 4),
            1.5,
            "higher",
        ),
        goal("peak_rss_vs_trl", round(ours["peak_rss_mb"] / trl["peak_rss_mb"], 4), 1.0, "lower"),
    ]
    notes = (
        f"CPU, torch threads={options.threads}, length {LENGTH}, batch {BATCH}, "
        f"{options.steps} measured steps after 1 warm-up; ours uses bf16 autocast "
        f"({ours['precision']}) vs TRL {'bf16' if options.trl_bf16 else 'fp32'}; real tokens "
        "only. Each run in its own process; peak_rss_mb is that process's ru_maxrss (model "
        "loading included). TRL runs as shipped (glibc malloc defaults); ours with its defaults "
        "(keep_freed_memory and gradient_checkpointing on) unless the row says otherwise."
    )
    env = {
        "threads": options.threads,
        "steps": options.steps,
        "loadavg": Path("/proc/loadavg").read_text().split()[:3],
        "notes": notes,
    }
    print("\n".join(json.dumps(r) for r in rows))
    write_result(RESULT, rows, goals, env)


if __name__ == "__main__":
    main()
