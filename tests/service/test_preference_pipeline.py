"""A preference run's iterations on both databases, its report section and its DPO export.

Scripted replies (this tests dispatch, judging in both orders, storage, the report's bias
figures and the export; the real-model path is tests/e2e/test_methods_model.py). Each prompt
gets three responses: a long good one, a poor one and a short good one. The judge prefers a
good response in the free-text forms a weak judge writes, calls two good ones a tie, and for
every third prompt always names the first response shown (position bias)."""

from __future__ import annotations

import re
import shutil
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from generators.backends.scripted import ScriptedBackend
from generators.preference import PreferenceConfig
from generators.types import SamplingParams
from service.errors import InvalidInput
from service.export.preference import export_preference_pairs
from service.reports.compute import build_run_report
from service.runs.config import RunConfig
from service.runs.pipeline import open_pipeline
from service.settings import Settings
from service.storage.db import Database
from service.storage.iterations import commit_iteration
from service.storage.models import Generation, Instance, PreferenceComparison, Run, Task
from tests.service.scripted_run import claimed_run

RESPONSES = ("Good: a full answer in several plain words.", "Poor.", "Good: short.")
_JUDGED = re.compile(
    r"INSTRUCTION:\n(.*)\n\nINPUT:.*RESPONSE A:\n(.*)\n\nRESPONSE B:\n(.*)\n\nReply with", re.S
)


def _replies() -> tuple[object, Counter[str]]:
    answered: Counter[str] = Counter()

    def reply(prompt: str) -> str:
        judged = _JUDGED.search(prompt)
        if judged is None:  # the response stage: the prompt is the task itself
            n = answered[prompt]
            answered[prompt] += 1
            return RESPONSES[n % len(RESPONSES)]
        instruction, a, b = judged.groups()
        if len(instruction) % 3 == 0:
            return "A"  # position bias: never consistent across the swap
        ga, gb = a.startswith("Good"), b.startswith("Good")
        if ga == gb:
            return "Both are equal."
        return "Response A is better." if ga else "I prefer **B**."

    return reply, answered


@pytest.fixture
def sqlite_db(sqlite_template: Path, tmp_path: Path) -> Database:
    path = tmp_path / "preference.db"
    shutil.copyfile(sqlite_template, path)
    return Database(f"sqlite:///{path}")


def _config(prompts: int) -> RunConfig:
    return RunConfig(
        seed_set="default",
        method="preference",
        target_tasks=100,
        preference=PreferenceConfig(
            prompts_per_iteration=prompts,
            responses_per_prompt=3,
            response_sampling=SamplingParams(temperature=0.9, top_p=0.95, max_tokens=32),
            min_margin=1.0,
        ),
    )


def _run(database: Database, config: RunConfig, iterations: int) -> int:
    run_id = claimed_run(database, config)
    reply, _ = _replies()
    pipeline = open_pipeline(
        database, run_id, settings=Settings(), backend_for=lambda _: ScriptedBackend(reply)
    )
    with database.sessions() as s:
        run = s.get(Run, run_id)
        assert run is not None
    for n in range(1, iterations + 1):
        outcome = pipeline.step(n)
        with database.transaction() as s:
            stored = commit_iteration(s, run=run, owner="me", lease_seconds=60, outcome=outcome)
        pipeline.absorb(stored)
    return run_id


def test_preference_run_stores_responses_comparisons_and_report(
    database: Database, tmp_path: Path
) -> None:
    run_id = _run(database, _config(prompts=6), iterations=2)
    with database.sessions() as s:
        tasks = list(s.scalars(select(Task).where(Task.run_id == run_id).order_by(Task.id)))
        assert len(tasks) == 12
        parents = [t.parent_task_id for t in tasks]
        assert len(set(parents)) == 12  # every seed prompt answered once a run
        biased = [t for t in tasks if len(t.instruction) % 3 == 0]
        fair = [t for t in tasks if len(t.instruction) % 3 != 0]
        assert biased and fair
        assert all(t.status == "rejected" for t in biased)
        assert {t.reject_rule for t in biased} == {"no_preference_pair"}
        assert all("inconsistent 3" in (t.reject_reason or "") for t in biased)
        assert all(t.status == "accepted" and t.operation == "preference" for t in fair)
        generations = {g.id: g for g in s.scalars(select(Generation))}
        for task in tasks:
            query = select(Instance).where(Instance.task_id == task.id).order_by(Instance.idx)
            instances = list(s.scalars(query))
            assert [i.output for i in instances] == list(RESPONSES)
            ids = [i.generation_id for i in instances]
            assert len(set(ids)) == 3  # each response is its own recorded call
            seeds = [generations[str(g)].seed for g in ids]
            assert seeds == [seeds[0], seeds[0] + 1, seeds[0] + 2]
        rows = list(s.scalars(select(PreferenceComparison).order_by(PreferenceComparison.id)))
        assert len(rows) == 12 * 3
        by_task: dict[int, list[PreferenceComparison]] = {}
        for row in rows:
            by_task.setdefault(row.task_id, []).append(row)
            assert len(row.replies) == 4 and row.judge_model == generations[ids[0]].model_name
        for task in fair:
            outcomes = [(r.outcome, r.margin, r.length_only) for r in by_task[task.id]]
            # (0, 1): good beats poor; (0, 2): two good ones tie; (1, 2): good beats poor
            assert outcomes == [("kept", 1.0, False), ("tie", None, False), ("kept", 1.0, False)]
            chosen = [s.get(Instance, r.chosen_instance_id) for r in by_task[task.id][::2]]
            assert [c.output for c in chosen if c is not None] == [RESPONSES[0], RESPONSES[2]]
        report = build_run_report(s, run_id)
    audit = report.preference
    assert audit is not None and report.judge is None
    assert audit.comparisons == 36 and audit.kept_pairs == 2 * len(fair)
    assert audit.outcomes == {
        "kept": 2 * len(fair),
        "tie": len(fair),
        "inconsistent": 3 * len(biased),
    }
    assert audit.position_swap_consistency == pytest.approx(len(fair) / 12)
    assert audit.length_ratio is not None and audit.length_ratio.p10 > 1  # good is longer
    assert audit.judge_is_generator and audit.self_preference is None
    assert audit.replies_by_form == {
        "comparative": 4 * len(fair),  # "Response A is better." in each good-first order
        "choice": 4 * len(fair),
        "tie": 4 * len(fair),
        "bare": 12 * len(biased),
    }
    assert audit.reply_failures == {}
    assert {r.rule: r.stage for r in report.yield_.rejected_by_rule} == {
        "no_preference_pair": "preference"
    }

    with database.sessions() as s:
        manifest = export_preference_pairs(s, run_id, tmp_path / "pairs", validation_ratio=0.3)
    assert sum(manifest["pairs"].values()) == 2 * len(fair)
    files = manifest["files"]
    assert set(files) == {
        f"{form}/{split}.jsonl"
        for form in ("standard", "conversational")
        for split in ("train", "validation")
    }
    for split in ("train", "validation"):
        assert files[f"standard/{split}.jsonl"]["rows"] == manifest["pairs"][split]
        assert files[f"conversational/{split}.jsonl"]["rows"] == manifest["pairs"][split]


def test_export_refuses_other_methods(database: Database, tmp_path: Path) -> None:
    run_id = claimed_run(database, RunConfig(seed_set="default"))
    with database.sessions() as s, pytest.raises(InvalidInput):
        export_preference_pairs(s, run_id, tmp_path)


def test_prompts_are_not_answered_twice_across_iterations() -> None:
    from generators.preference import pick_prompts
    from generators.types import PoolTask

    pool = [PoolTask(str(i), f"task {i}", False, "seed") for i in range(10)]
    picked = [pick_prompts(pool, iteration=n, per_iteration=4, seed=7) for n in (1, 2, 3, 4)]
    ids = [t.id for batch in picked for t in batch]
    assert [len(b) for b in picked] == [4, 4, 2, 0]
    assert sorted(ids) == sorted(t.id for t in pool)
    assert picked[0] == pick_prompts(list(reversed(pool)), iteration=1, per_iteration=4, seed=7)
    assert picked[0] != pick_prompts(pool, iteration=1, per_iteration=4, seed=8)


@pytest.mark.model
@pytest.mark.parametrize("form", ["standard", "conversational"])
def test_trl_dpo_trainer_loads_the_export_untouched(
    form: str, sqlite_db: Database, embedded_model_dir: Path, tmp_path: Path
) -> None:
    from tests.dataformats.test_preference_trl import dpo_smoke

    run_id = _run(sqlite_db, _config(prompts=4), iterations=1)
    with sqlite_db.sessions() as s:
        manifest = export_preference_pairs(
            s, run_id, tmp_path / "pairs", validation_ratio=0.0, system="Be brief."
        )
    assert manifest["pairs"]["train"] >= 2
    logged = dpo_smoke(tmp_path / "pairs" / form / "train.jsonl", embedded_model_dir, tmp_path)
    assert logged[0]["loss"] == pytest.approx(0.6931, abs=0.01)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--model", "m"], "give --dataset (sft) or --pairs"),
        (["train", "--pairs", "x", "--dataset", "d@1", "--model", "m"], "give --dataset"),
        (["train", "--pairs", "x", "--model", "m"], "--pairs trains with --method dpo"),
    ],
)
def test_train_command_pairs_dpo_with_pairs_only(argv: list[str], message: str) -> None:
    from typer.testing import CliRunner

    from service.cli import app

    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 2 and message in result.output
