"""Draw instances the embedded model really writes, for hand labelling (bench/quality.py).

Two modes, both with the embedded SmolLM2-135M-Instruct on the transformers backend.
``bootstrap`` runs iterations of the paper's pipeline (no filters, every candidate kept) seeded
from the Self-Instruct seed tasks; measured here, 3 prompts x 2 iterations gave 30 tasks but 1
parsed instance (the model rarely keeps the ``Example``/``Output:`` format), too few to label.
``answers`` asks the model, through its chat template, to answer seed tasks' instructions
(with their inputs) directly. Either writes one JSON line per output: instruction, input,
output and finish reason, with ``label`` left empty. A person then sets ``label`` to
``good`` or a junk kind (see bench/quality.py) and adds a ``note``; the labelled file is
``bench/data/quality_model_labelled.jsonl``.

Run: python bench/quality_sample.py OUT.jsonl [--mode answers --count 40 | --mode bootstrap
--iterations 2 --prompts 4]
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from dataformats.jsonl import write_jsonl
from generators.backends import make_backend
from generators.backends.base import Backend
from generators.bootstrap import run_iteration
from generators.config import BootstrapConfig
from generators.seed_tasks import read_seed_tasks
from generators.types import PoolTask, SamplingParams

ROOT = Path(__file__).resolve().parents[1]
SEEDS = Path("/work/shared/data/self_instruct_seed_tasks.jsonl")
CACHE = ROOT.parent / "main" / "data" / "model-cache"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--iterations", type=int, default=2)
    parser.add_argument("--prompts", type=int, default=4)
    parser.add_argument("--cache-dir", type=Path, default=CACHE)
    parser.add_argument("--mode", choices=("answers", "bootstrap"), default="answers")
    parser.add_argument("--count", type=int, default=40)
    args = parser.parse_args()
    seeds = read_seed_tasks(SEEDS)
    backend = make_backend(
        "transformers", model="smollm2-135m", cache_dir=args.cache_dir, num_threads=1
    )
    try:
        if args.mode == "answers":
            write_jsonl(args.out, sample_answers(backend, seeds[: args.count]))
        else:
            sample_bootstrap(backend, seeds, args)
    finally:
        backend.close()


def sample_answers(backend: Backend, tasks: list[PoolTask]) -> list[dict[str, object]]:
    """The model's own answer to each task's first instance, as a chat reply."""
    examples = [(t.instruction, t.instances[0].input if t.instances else "") for t in tasks]
    prompts = [backend.wrap_chat(f"{ins}\n\n{inp}".strip()) for ins, inp in examples]
    sampling = SamplingParams(temperature=0.7, top_p=0.9, max_tokens=160, seed=0)
    completions = backend.generate(prompts, sampling, chat=True)
    return [
        {"instruction": ins, "input": inp, "output": c.text.strip(),
         "finish_reason": c.finish_reason, "label": ""}
        for (ins, inp), c in zip(examples, completions, strict=True)
    ]  # fmt: skip


def sample_bootstrap(backend: Backend, seeds: list[PoolTask], args: argparse.Namespace) -> None:
    """Parsed instances of bootstrap iterations, written after each iteration."""
    config = BootstrapConfig(prompts_per_iteration=args.prompts)
    config = replace(config, instance_sampling=replace(config.instance_sampling, max_tokens=200))
    rows: list[dict[str, object]] = []
    for it in range(1, args.iterations + 1):
        result = run_iteration(
            seed_tasks=seeds, machine_tasks=[], backend=backend, config=config, seed=it
        )
        finish = {r.id: r.finish_reason for r in result.records}
        rows += [
            {
                "instruction": cand.instruction,
                "input": inst.input,
                "output": inst.output,
                "finish_reason": finish.get(cand.instances_generation_id or ""),
                "label": "",
            }
            for cand in result.kept
            for inst in cand.instances
        ]
        # Written after every iteration: on a shared CPU one iteration takes minutes.
        write_jsonl(args.out, rows)
        print(f"iteration {it}: {len(result.kept)} tasks, {len(rows)} instances so far")


if __name__ == "__main__":
    main()
