"""bench/pipelines.py's own logic: the Alpaca loop's parsing and filters, the one referee every
tool is counted by, and the run it asks the service for (the race itself needs a live server)."""

from __future__ import annotations

import importlib.util
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("race_bench", ROOT / "bench" / "pipelines.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


REPLY = """ Give three tips for staying healthy.
4. Input:
<noinput>
4. Output:
Eat well, sleep, exercise.
###
5. Instruction: Draw a picture of a cat in the snow.
5. Input:
<noinput>
5. Output:
ok
###
6. Instruction: Translate the sentence into French.
6. Input:
I like cheese.
6. Output:
J'aime le fromage.
###
7. Instruction: Sort.
7. Input:
<noinput>
7. Output:
done
###
8. Instruction: just words without the other fields
###
9. Instruction: Summarize the"""


def test_alpaca_parse_keeps_whole_tasks_and_counts_each_drop(bench: ModuleType) -> None:
    dropped: Counter[str] = Counter()
    tasks = bench.alpaca_parse(REPLY, "length", 4, dropped)
    assert tasks == [
        {"instruction": "Give three tips for staying healthy.", "input": "", "output": "Eat well, "
         "sleep, exercise."},
        {"instruction": "Translate the sentence into French.", "input": "I like cheese.",
         "output": "J'aime le fromage."},
    ]  # fmt: skip
    assert dropped == {"blacklist": 1, "length": 1, "unparsed": 1, "cut_by_length": 1}


def test_alpaca_parse_keeps_the_last_task_when_the_reply_stopped(bench: ModuleType) -> None:
    reply = " Name a fruit that is red.\n4. Input:\n<noinput>\n4. Output:\nA strawberry."
    tasks = bench.alpaca_parse(reply, "stop", 4, Counter())
    assert [t["output"] for t in tasks] == ["A strawberry."]


def test_alpaca_prompt_numbers_the_examples_and_asks_for_the_next(bench: ModuleType) -> None:
    seeds = bench.read_seeds()[:3]
    prompt = bench.alpaca_prompt(seeds)
    assert prompt.endswith("###\n4. Instruction:")
    assert f"1. Instruction: {seeds[0]['instruction']}\n" in prompt
    assert prompt.count("###") == 4


def test_referee_counts_duplicates_missing_instances_and_short_instructions(
    bench: ModuleType,
) -> None:
    seeds = bench.read_seeds()
    referee = bench.Referee(seeds)
    assert not referee.judge(seeds[0]["instruction"], ["an answer"])  # a seed again
    assert not referee.judge("Explain how tides form on Earth.", ["", "  "])
    assert not referee.judge("Tides?", ["The moon."])
    assert referee.judge("Explain how tides form on Earth.", ["The moon's pull."])
    # Once accepted, a near copy of it is a duplicate too (ROUGE-L 0.7 against the pool).
    assert not referee.judge("Explain how the tides form on Earth.", ["Gravity."])
    assert referee.accepted == ["Explain how tides form on Earth."]
    assert referee.rejected == {"rouge_l_duplicate": 2, "no_instance": 1, "too_short": 1}


def test_the_product_run_is_a_valid_exact_target_openai_run(bench: ModuleType) -> None:
    from service.runs.config import RunConfig

    config = RunConfig.model_validate(bench.product_config(30, 60))
    assert (config.backend, config.target_tasks, config.max_iterations) == ("openai", 30, 60)
    assert config.backend_options["endpoint"] == "completions"
    assert config.bootstrap.chat_wrap is False
    assert config.near_duplicates.threshold == bench.THRESHOLD
    # The batch and the requests in flight are what a user of the openai backend gets.
    from service.demo import demo_run_config

    assert "max_concurrency" not in config.backend_options
    demo = demo_run_config("openai")["bootstrap"]
    assert config.bootstrap.prompts_per_iteration == demo["prompts_per_iteration"]
