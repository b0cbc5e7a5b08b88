"""Generation methods on the real embedded model (SmolLM2-135M, CPU), end to end but small:
the worker's pipeline and commit on SQLite, then the run report from the stored rows."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from generators.evol import EvolConfig
from generators.types import SamplingParams
from service.reports.compute import build_run_report
from service.runs.config import RunConfig
from service.runs.pipeline import RunPipeline, make_run_backend, open_pipeline
from service.settings import Settings
from service.storage.db import Database
from service.storage.evolution import depth_histogram, lineage_depth
from service.storage.iterations import commit_iteration
from service.storage.models import Generation, Instance, ParseFailure, Run, Task
from tests.conftest import MODEL_CACHE
from tests.service.scripted_run import claimed_run

pytestmark = [pytest.mark.model, pytest.mark.slow]


@pytest.fixture
def sqlite_db(sqlite_template: Path, tmp_path: Path) -> Database:
    path = tmp_path / "methods.db"
    shutil.copyfile(sqlite_template, path)
    return Database(f"sqlite:///{path}")


def _claimed_pipeline(db: Database, config: RunConfig) -> tuple[int, Run, RunPipeline]:
    """A run of `config` claimed as a worker would, its row, and its pipeline on the real model."""
    run_id = claimed_run(db, config)
    settings = Settings(model_cache_dir=MODEL_CACHE)
    pipeline = open_pipeline(
        db, run_id, settings=settings, backend_for=lambda c: make_run_backend(c, settings)
    )
    with db.sessions() as s:
        run = s.get(Run, run_id)
        assert run is not None
    return run_id, run, pipeline


@pytest.mark.timeout(1800)  # minutes alone; far more on a CPU shared by parallel jobs
def test_evol_run_on_the_embedded_model(sqlite_db: Database, embedded_model_dir: Path) -> None:
    config = RunConfig(
        seed_set="default",
        method="evol",
        seed=3,
        evol=EvolConfig(
            parents_per_iteration=4,
            evolution_sampling=SamplingParams(
                temperature=0.7, top_p=0.95, max_tokens=48, stop=("\n\n",)
            ),
            answer_sampling=SamplingParams(temperature=0.0, top_p=1.0, max_tokens=48),
        ),
    )
    run_id, run, pipeline = _claimed_pipeline(sqlite_db, config)
    for n in (1,):  # lineages deepen over iterations: tests/service/test_evol_pipeline.py
        outcome = pipeline.step(n)
        with sqlite_db.transaction() as s:
            stored = commit_iteration(s, run=run, owner="me", lease_seconds=60, outcome=outcome)
        pipeline.absorb(stored)

    with sqlite_db.sessions() as s:
        tasks = list(s.scalars(select(Task).where(Task.run_id == run_id)))
        generations = list(s.scalars(select(Generation).where(Generation.run_id == run_id)))
        failures = s.scalar(select(ParseFailure.id).where(ParseFailure.run_id == run_id).limit(1))
        stages = [g.stage for g in generations]
        assert stages.count("evolution") == 4 and set(stages) <= {"evolution", "answer"}
        assert all(g.model_hash and g.template_sha256 for g in generations)
        assert {g.engine for g in generations} == {"transformers"}
        # Every parsed evolution became a task with its parent and operation, or a parse failure.
        assert len(tasks) + (1 if failures else 0) >= 1
        assert all(t.parent_task_id is not None and t.operation for t in tasks)
        accepted = [t for t in tasks if t.status == "accepted"]
        for task in accepted:
            answer = s.scalars(select(Instance).where(Instance.task_id == task.id)).one()
            assert answer.status == "accepted" and answer.output.strip()
            assert answer.generation_id == task.instances_generation_id
            assert lineage_depth(s, task.id) >= 1
        assert sum(depth_histogram(s, run_id).values()) == len(accepted)
        report = build_run_report(s, run_id)
        depths = depth_histogram(s, run_id)
    by_rule = {r.rule: r for r in report.yield_.rejected_by_rule}
    assert report.yield_.accepted == len(accepted)
    assert all(r.stage == "elimination" for name, r in by_rule.items() if name.startswith("evol_"))
    rejections = {name: r.rejected for name, r in by_rule.items()}
    print(
        f"evol on SmolLM2-135M: {len(tasks)} evolved tasks, {len(accepted)} accepted, "
        f"rejections {rejections}, parse failures {report.yield_.parse_failures_by_reason}, "
        f"depths {depths}"
    )


@pytest.mark.timeout(1800)
def test_preference_run_on_the_embedded_model(
    sqlite_db: Database, embedded_model_dir: Path, tmp_path: Path
) -> None:
    """k sampled answers per seed prompt, judged in both orders and at equal length by the same
    model, stored, reported and exported (small: 3 prompts, 2 answers each).

    The judge reads the model's label probabilities (judge_mode logprob, the default): the
    135M model writes no readable verdict (all 12 text replies were no_verdict), but every
    reading here must give a value or a named reason, and the bias figures must exist."""
    from generators.preference import PreferenceConfig
    from service.export.preference import export_preference_pairs
    from service.storage.models import PreferenceComparison

    config = RunConfig(
        seed_set="default",
        method="preference",
        seed=11,
        preference=PreferenceConfig(
            prompts_per_iteration=3,
            responses_per_prompt=2,
            response_sampling=SamplingParams(temperature=0.9, top_p=0.95, max_tokens=32),
            min_margin=0.0,
        ),
    )
    run_id, run, pipeline = _claimed_pipeline(sqlite_db, config)
    outcome = pipeline.step(1)
    with sqlite_db.transaction() as s:
        commit_iteration(s, run=run, owner="me", lease_seconds=60, outcome=outcome)
    with sqlite_db.sessions() as s:
        tasks = list(s.scalars(select(Task).where(Task.run_id == run_id)))
        assert len(tasks) == 3 and all(t.operation == "preference" for t in tasks)
        generations = list(s.scalars(select(Generation).where(Generation.run_id == run_id)))
        assert [g.stage for g in generations] == ["answer"] * 6
        assert {g.engine for g in generations} == {"transformers"}
        rows = list(s.scalars(select(PreferenceComparison)))
        assert len(rows) == 3 and all(len(r.replies) == 4 for r in rows)
        assert {r.judge_mode for r in rows} == {"logprob"}
        # A chat model given the answer prefix puts its mass on the labels: every reading
        # carries both labels' log-probabilities.
        assert all(x["label_logprobs"] for r in rows for x in r.replies)
        # Every reply is either read (with its form) or kept unread with a reason.
        assert all(
            (x["value"] is None) == (x["failure"] is not None) for r in rows for x in r.replies
        )
        report = build_run_report(s, run_id)
        manifest = export_preference_pairs(s, run_id, tmp_path / "pairs", validation_ratio=0.0)
    audit = report.preference
    assert audit is not None and audit.comparisons == 3 and audit.judge_is_generator
    assert sum(audit.outcomes.values()) == 3
    assert sum(audit.replies_by_form.values()) + sum(audit.reply_failures.values()) == 12
    assert audit.parsed >= 1 and audit.position_swap_consistency is not None
    assert manifest["pairs"]["train"] == audit.kept_pairs == report.yield_.accepted
    print(
        f"preference on SmolLM2-135M (judge = generator): {report.yield_.accepted} of 3 prompts "
        f"accepted; {audit.model_dump()}"
    )


@pytest.mark.timeout(1800)
def test_multiturn_run_on_the_embedded_model(sqlite_db: Database, embedded_model_dir: Path) -> None:
    from generators.config import BootstrapConfig
    from generators.multiturn import MultiturnConfig

    config = RunConfig(
        seed_set="default",
        method="multiturn",
        seed=5,
        bootstrap=BootstrapConfig(prompts_per_iteration=3),
        multiturn=MultiturnConfig(
            max_user_turns=3,
            system_prompt="You are a helpful assistant.",
            user_sampling=SamplingParams(
                temperature=0.8, top_p=0.95, max_tokens=32, stop=("\nAssistant:", "\n\n")
            ),
            answer_sampling=SamplingParams(temperature=0.0, top_p=1.0, max_tokens=64),
        ),
    )
    run_id, run, pipeline = _claimed_pipeline(sqlite_db, config)
    outcome = pipeline.step(1)
    with sqlite_db.transaction() as s:
        commit_iteration(s, run=run, owner="me", lease_seconds=60, outcome=outcome)
    with sqlite_db.sessions() as s:
        tasks = list(s.scalars(select(Task).where(Task.run_id == run_id)))
        assert len(tasks) == 3
        for task in tasks:
            turns = task.turns or []
            assert turns[0]["role"] == "system" and turns[1]["content"] == task.instruction
            assert task.operation == "multiturn" and task.parent_task_id is not None
        report = build_run_report(s, run_id)
    rejections = {r.rule: r.rejected for r in report.yield_.rejected_by_rule}
    assert all(r.stage == "turns" for r in report.yield_.rejected_by_rule)
    print(
        f"multiturn on SmolLM2-135M: {len(tasks)} conversations, "
        f"{report.yield_.accepted} accepted, rejections {rejections}"
    )
