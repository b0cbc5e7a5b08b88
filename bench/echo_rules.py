"""False rejections of the list-number and near-copy rules on human-written and public data.

Issue 15's demo export held instructions that start with a numbered label (``"Sentence 2:
..."``) and outputs that re-type their instruction with small edits. The rules that now catch
them (``starts_with_list_number`` v3, ``output_near_copies_instruction`` v1, in
``filters.heuristics``) must leave real data alone. This bench applies them to the 175
Self-Instruct seed tasks, the 252 user-oriented tasks (instructions and every instance) and
Stanford Alpaca's 52,002 examples, and lists every rejection so each can be read by eye.

Re-run on 2026-12-01 under ``starts_with_list_number`` v3: the same rejections as under v2
(none on the seed and user-oriented tasks, none of Alpaca's instructions, 2 of its 52,002
outputs as near copies); only the timings moved.

Run: python bench/echo_rules.py   (writes bench/results/echo_rules.json)
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Any

from result_file import goal, write_result  # bench/ is sys.path[0] when run as a script

from dataformats.jsonl import read_jsonl
from filters.echo import near_copy_of_instruction, repeated_part
from filters.heuristics import RULE_VERSIONS
from filters.list_numbers import leading_list_number

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
RESULT = ROOT / "bench" / "results" / "echo_rules.json"
# Alpaca is machine-made and holds a little junk of both kinds; a handful of rejections in
# 52,002 is the budget (seeds and user-oriented tasks: none).
ALPACA_MAX_RATE = 1e-4

Example = tuple[str, str, str]  # (instruction, input, output)


def _tasks(name: str) -> list[Example]:
    return [
        (task["instruction"], inst["input"], inst["output"])
        for _, task in read_jsonl(DATA / name)
        for inst in task["instances"]
    ]


def datasets() -> dict[str, list[Example]]:
    alpaca = json.loads((DATA / "alpaca_data.json").read_text(encoding="utf-8"))
    return {
        "seed_tasks": _tasks("self_instruct_seed_tasks.jsonl"),
        "user_oriented": _tasks("self_instruct_user_oriented_instructions.jsonl"),
        "alpaca": [(r["instruction"], r["input"], r["output"]) for r in alpaca],
    }


def measure(name: str, examples: list[Example]) -> dict[str, Any]:
    started = time.perf_counter()
    instructions = sorted({ins for ins, _, _ in examples})
    listed = [(ins, m) for ins in instructions if (m := leading_list_number(ins))]
    near = []
    for ins, inp, out in examples:
        # The near-copy rule runs only on outputs the exact echo rules let through.
        if repeated_part(out, instruction=ins, input_text=inp) is not None:
            continue
        found = near_copy_of_instruction(out, instruction=ins)
        if found:
            near.append(
                {
                    "instruction": ins,
                    "output": out,
                    "output_share": round(found.output_share, 3),
                    "instruction_share": round(found.instruction_share, 3),
                }
            )
    return {
        "dataset": name,
        "instructions": len(instructions),
        "outputs": len(examples),
        "list_number_rejected": len(listed),
        "near_copy_rejected": len(near),
        "near_copy_rate": len(near) / len(examples),
        "seconds": round(time.perf_counter() - started, 1),
        "list_number_examples": [{"instruction": i, "marker": m} for i, m in listed],
        "near_copy_examples": near,
    }


def main() -> None:
    rows = [measure(name, examples) for name, examples in datasets().items()]
    print(f"{'dataset':<14} {'instructions':>12} {'list no.':>8} {'outputs':>8} {'near-copy':>9}")
    for r in rows:
        print(
            f"{r['dataset']:<14} {r['instructions']:>12} {r['list_number_rejected']:>8} "
            f"{r['outputs']:>8} {r['near_copy_rejected']:>9}"
        )
        for ex in r["list_number_examples"] + r["near_copy_examples"]:
            print(f"    {json.dumps(ex, ensure_ascii=False)[:160]}")
    by = {r["dataset"]: r for r in rows}
    goals = [
        goal(f"{d}_{k}", by[d][f"{k}_rejected"], 0, "lower")
        for d in ("seed_tasks", "user_oriented")
        for k in ("list_number", "near_copy")
    ]
    goals.append(
        goal(
            "alpaca_list_number_rate",
            by["alpaca"]["list_number_rejected"] / by["alpaca"]["instructions"],
            ALPACA_MAX_RATE,
            "lower",
        )
    )
    goals.append(
        goal("alpaca_near_copy_rate", by["alpaca"]["near_copy_rate"], ALPACA_MAX_RATE, "lower")
    )
    env = {
        "python": platform.python_version(),
        "starts_with_list_number": RULE_VERSIONS["starts_with_list_number"],
        "output_near_copies_instruction": RULE_VERSIONS["output_near_copies_instruction"],
    }
    write_result(RESULT, rows, goals, env)


if __name__ == "__main__":
    main()
