"""Unit tests of one iteration's screening and commit (scripted replies: this tests storage and
filtering logic, not generation; the real-model paths are in tests/e2e)."""

from __future__ import annotations

from sqlalchemy import func, select

from generators.backends.scripted import ScriptedBackend
from generators.config import BootstrapConfig
from generators.types import Completion
from service.runs.config import RunConfig
from service.storage.db import Database
from service.storage.iterations import commit_iteration
from service.storage.models import Instance, ParseFailure, Run, Score, Task
from tests.service.scripted_run import claimed_run, scripted_pipeline
from tests.service.scripted_run import reply as scripted_reply


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


def test_cut_and_echoed_instances_reject_their_tasks_with_reasons(database: Database) -> None:
    def reply(prompt: str) -> str | Completion:
        if prompt.startswith("Come up with examples"):
            if "ocean" in prompt:  # the only instance is cut by the token limit
                return Completion("Example 1\nOutput: The waves whis", "length", 50, 300, 0.1)
            return "Output: List three ways to save water at home."  # echoes the instruction
        return scripted_reply(prompt)

    config = RunConfig(
        seed_set="default", bootstrap=BootstrapConfig(prompts_per_iteration=1), target_tasks=5
    )
    _, pipeline = scripted_pipeline(database, claimed_run(database, config), config)
    pipeline.backend = ScriptedBackend(reply)
    by_text = {t.candidate.instruction: t for t in pipeline.step(1).tasks}
    cut = by_text["Write a short poem about the ocean at night."]
    assert (cut.verdict.rule, cut.verdict.reason) == (
        "instances",
        "no instance was generated (truncated)",
    )
    echo = by_text["List three ways to save water at home."]
    assert echo.verdict.rule == "instances" and not echo.verdict.accepted
    assert [v.rule for v in echo.instance_verdicts] == ["output_repeats_instruction"]
