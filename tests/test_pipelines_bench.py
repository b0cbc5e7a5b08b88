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


DISTINCT = [
    "Explain how tides form on Earth.",
    "List three uses of copper wire in homes.",
    "Describe the water cycle to a child.",
    "Convert twelve miles into kilometres please.",
    "Suggest a name for a bakery near the sea.",
]
NO_TOKENS = {"prompt_tokens": 0, "completion_tokens": 0}


def _task(instruction: str, at: float, spent: int, output: str = "an answer") -> dict[str, object]:
    return {
        "instruction": instruction,
        "outputs": [output],
        "at": at,
        "tokens": {"prompt_tokens": spent, "completion_tokens": spent},
    }


def _raw(tasks: list[dict[str, object]], seconds: float) -> dict[str, object]:
    return {"tasks": tasks, "seconds": seconds, "candidates": len(tasks),
            "tool_duplicates": {}, "tool_rejections": {}}  # fmt: skip


def test_score_takes_time_and_tokens_when_the_referee_count_first_reaches_n(
    bench: ModuleType,
) -> None:
    # Alpaca-like: one task at a time; the 3rd ACCEPTED one is at 30 s (a rejected one between).
    tasks = [
        _task(DISTINCT[0], 10, 100),
        _task("Explain how the tides form on Earth.", 15, 150),  # the referee's duplicate
        _task(DISTINCT[1], 20, 200, output=" "),  # no instance
        _task(DISTINCT[2], 25, 250),
        _task(DISTINCT[3], 30, 300),
        _task(DISTINCT[4], 90, 900),
    ]
    row = bench.score("alpaca", _raw(tasks, 120), NO_TOKENS, 3)
    assert (row["reached_target"], row["seconds_to_target"]) == (True, 30)
    assert row["rate"] == 6.0  # 3 in 30 s
    assert row["tokens_to_target"] == {"prompt_tokens": 300, "completion_tokens": 300}
    assert row["accepted_per_million_tokens_at_target"] == 5000.0  # 3 / 600 tokens
    # The overall figures stay beside it: 4 accepted in 120 s.
    assert (row["accepted"], row["seconds"], row["accepted_per_min"]) == (4, 120, 2.0)


def test_score_credits_a_chunk_tool_with_n_at_its_chunk_end_not_with_its_overshoot(
    bench: ModuleType,
) -> None:
    # distilabel-like: one chunk delivers 5 accepted at 60 s; N=2 -> 2 per 60 s, not 5.
    chunk = [_task(text, 60, 1000) for text in DISTINCT]
    row = bench.score("distilabel", _raw(chunk, 61), NO_TOKENS, 2)
    assert (row["seconds_to_target"], row["rate"], row["accepted"]) == (60, 2.0, 5)
    # A second chunk is not reached when the first already crossed N.
    second = [_task(text, 120, 2000) for text in DISTINCT[2:]]
    row = bench.score("distilabel", _raw(chunk[:2] + second, 121), NO_TOKENS, 3)
    assert (row["seconds_to_target"], row["tokens_to_target"]["prompt_tokens"]) == (120, 2000)


def test_score_without_reaching_n_rates_at_most_n_over_its_whole_time(bench: ModuleType) -> None:
    """It had not reached N when it stopped, so its time to N exceeds its whole time: N over
    that time bounds its rate at N from above (its overall rate, 1/min here, bounds nothing:
    a tool that stops early, or slows, would need longer)."""
    row = bench.score("alpaca", _raw([_task(DISTINCT[0], 10, 5)], 60), NO_TOKENS, 3)
    assert (row["reached_target"], row["seconds_to_target"], row["tokens_to_target"]) == (
        False, None, None,
    )  # fmt: skip
    assert (row["rate"], row["accepted_per_min"]) == (3.0, 1.0)


@pytest.mark.parametrize(
    ("ats", "reached_at"),
    [
        ((50, 10, 20), 20),  # delivered out of order: two were in by 20 s, not 10 s
        ((30, 30, 5), 30),  # a late chunk listed first
        ((10, 20, 30), 20),  # in order
    ],
)
def test_score_replays_tasks_in_delivery_order(
    bench: ModuleType, ats: tuple[int, int, int], reached_at: int
) -> None:
    tasks = [_task(t, at, at * 10) for t, at in zip(DISTINCT, ats, strict=False)]
    row = bench.score("distilabel", _raw(tasks, 60), NO_TOKENS, 2)
    assert row["seconds_to_target"] == reached_at
    assert row["tokens_to_target"]["prompt_tokens"] == reached_at * 10


@pytest.mark.parametrize(
    ("ours", "seconds"),
    [
        ([DISTINCT[0]], 6),  # stopped early with 1 of 2: 10/min overall
        ([], 30),  # nothing at all
    ],
)
def test_no_goal_is_met_when_instructforge_does_not_reach_n(
    bench: ModuleType, tmp_path: Path, ours: list[str], seconds: float
) -> None:
    import argparse
    import json

    rows = [
        bench.score("instructforge", _raw([_task(t, 5, 1) for t in ours], seconds), NO_TOKENS, 2),
        bench.score("distilabel", _raw([_task(t, 60, 1) for t in DISTINCT], 60), NO_TOKENS, 2),
    ]
    out = tmp_path / "pipelines.json"
    args = argparse.Namespace(
        tools="instructforge,distilabel", target=2, max_minutes=1, server_threads=1, out=out
    )
    bench.report(rows, args, {})
    goals = json.loads(out.read_text())["goals"]
    assert [(g["value"], g["met"]) for g in goals] == [(None, False)]


def test_the_goals_compare_rates_at_n(bench: ModuleType, tmp_path: Path) -> None:
    import argparse
    import json

    rows = [
        bench.score("instructforge", _raw([_task(t, 30, 1) for t in DISTINCT[:2]], 30),
                    NO_TOKENS, 2),
        bench.score("distilabel", _raw([_task(t, 60, 1) for t in DISTINCT], 60), NO_TOKENS, 2),
    ]  # fmt: skip
    out = tmp_path / "pipelines.json"
    args = argparse.Namespace(
        tools="instructforge,distilabel", target=2, max_minutes=1, server_threads=1, out=out
    )
    bench.report(rows, args, {})
    goals = json.loads(out.read_text())["goals"]
    # 4/min against 2/min at N=2, though distilabel's overall rate (5/min) beats instructforge's.
    assert goals == [{"name": "vs_distilabel", "value": 2.0, "target": 1.5,
                      "direction": "higher", "met": True}]  # fmt: skip
