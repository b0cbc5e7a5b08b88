"""Unit tests of one iteration's screening and commit (scripted replies: this tests storage and
filtering logic, not generation; the real-model paths are in tests/e2e)."""

from __future__ import annotations

from sqlalchemy import func, select

from generators.config import BootstrapConfig
from service.runs.config import RunConfig
from service.storage.db import Database
from service.storage.iterations import commit_iteration
from service.storage.models import Instance, ParseFailure, Run, Score, Task
from tests.service.scripted_run import claimed_run, scripted_pipeline


def test_iteration_commit_is_consistent(database: Database) -> None:
    config = RunConfig(
        seed_set="default", bootstrap=BootstrapConfig(prompts_per_iteration=1), target_tasks=5
    )
    run_id = claimed_run(database, config)
    run, pipeline = scripted_pipeline(database, run_id, config)
    assert len(pipeline.seed_tasks) == 69 and pipeline.machine_tasks == []
    outcome = pipeline.step(1)
    by_text = {t.candidate.instruction: t for t in outcome.tasks}
    assert by_text["Draw a picture of a cat."].verdict.rule == "unsuitable_keyword"
    dup = by_text["Write a short poem about the ocean at night!"].verdict
    assert not dup.accepted and dup.rule == "near_duplicate" and dup.nearest_id == "new:0"
    with database.transaction() as s:
        stored = commit_iteration(s, run=run, owner="me", lease_seconds=60, outcome=outcome)
    pipeline.absorb(stored)
    with database.sessions() as s:
        run = s.get(Run, run_id)
        assert run is not None and run.iteration == 1
        rows = list(s.scalars(select(Task).where(Task.run_id == run_id).order_by(Task.id)))
        assert run.generated_count == len(rows) == 4
        accepted = [t for t in rows if t.status == "accepted"]
        assert run.accepted_count == len(accepted)
        assert run.rejected_by_rule == {"unsuitable_keyword": 1, "near_duplicate": 1}
        poem_dup = next(t for t in rows if t.instruction.endswith("night!"))
        first_poem = next(t for t in rows if t.instruction.endswith("night."))
        assert poem_dup.nearest_task_id == first_poem.id and poem_dup.similarity > 0.7
        assert all(t.minhash for t in rows)
        n_inst = s.scalar(
            select(func.count())
            .select_from(Instance)
            .where(Instance.task_id.in_([t.id for t in accepted]))
        )
        assert n_inst and n_inst >= len(accepted)
        assert s.scalar(select(func.count()).select_from(Score)) >= len(accepted)
        assert run.parse_failure_count == s.scalar(
            select(func.count()).select_from(ParseFailure).where(ParseFailure.run_id == run_id)
        )
    assert {t.id for t in pipeline.machine_tasks} == {str(t.id) for t in accepted}
    assert all(str(t.id) in pipeline.index for t in accepted)
