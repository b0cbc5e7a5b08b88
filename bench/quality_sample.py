"""Draw instances the embedded model really writes, for hand labelling (bench/quality.py).

Runs bootstrap iterations of the paper's pipeline (no filters, every candidate kept) with the
embedded SmolLM2-135M-Instruct on the transformers backend, seeded from the Self-Instruct seed
tasks, and writes one JSON line per parsed instance: instruction, input, output and the
instance completion's finish reason, with ``label`` left empty. A person then sets ``label`` to
``good`` or a junk kind (see bench/quality.py) and adds a ``note``; the labelled file is
``bench/data/quality_model_labelled.jsonl``.

Run: python bench/quality_sample.py OUT.jsonl [--iterations 2] [--prompts 4]
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from dataformats.jsonl import write_jsonl
from generators.backends import make_backend
from generators.bootstrap import run_iteration
from generators.config import BootstrapConfig
from generators.seed_tasks import read_seed_tasks

ROOT = Path(__file__).resolve().parents[1]
SEEDS = Path("/work/shared/data/self_instruct_seed_tasks.jsonl")
CACHE = ROOT.parent / "main" / "data" / "model-cache"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--iterations", type=int, default=2)
    parser.add_argument("--prompts", type=int, default=4)
    parser.add_argument("--cache-dir", type=Path, default=CACHE)
    args = parser.parse_args()
    seeds = read_seed_tasks(SEEDS)
    config = BootstrapConfig(prompts_per_iteration=args.prompts)
    config = replace(config, instance_sampling=replace(config.instance_sampling, max_tokens=200))
    backend = make_backend(
        "transformers", model="smollm2-135m", cache_dir=args.cache_dir, num_threads=1
    )
    rows: list[dict[str, object]] = []
    try:
        for it in range(1, args.iterations + 1):
            result = run_iteration(
                seed_tasks=seeds, machine_tasks=[], backend=backend, config=config, seed=it
            )
            finish = {r.id: r.finish_reason for r in result.records}
            for cand in result.kept:
                for inst in cand.instances:
                    rows.append(
                        {
                            "instruction": cand.instruction,
                            "input": inst.input,
                            "output": inst.output,
                            "finish_reason": finish.get(cand.instances_generation_id or ""),
                            "label": "",
                        }
                    )
            # Written after every iteration: on a shared CPU one iteration takes minutes.
            write_jsonl(args.out, rows)
            print(f"iteration {it}: {len(result.kept)} tasks, {len(rows)} instances so far")
    finally:
        backend.close()


if __name__ == "__main__":
    main()
