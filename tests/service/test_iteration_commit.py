"""Unit tests of one iteration's screening and commit (scripted replies: this tests storage and
filtering logic, not generation; the real-model paths are in tests/e2e)."""

from __future__ import annotations

from sqlalchemy import func, select

from generators.backends.scripted import ScriptedBackend
from service.cli import default_seed_path
from service.iteration import RunPipeline
from service.run_config import RunConfig
from service.run_settings import make_index
from service.seed_files import parse_seed_file
from service.settings import Settings
from service.storage.db import Database
from service.storage.iterations import commit_iteration, load_pool
from service.storage.models import Instance, ParseFailure, Run, Score, Task
from service.storage.runs import claim_run, create_run
from service.storage.seeds import import_seed_set

INSTRUCTIONS = (
    " Write a short poem about the ocean at night.\n"
    "10. Write a short poem about the ocean at night!\n"
    "11. Draw a picture of a cat.\n"
    "12. List three ways to save water at home."
)


def reply(prompt: str) -> str:
    if prompt.startswith("Can the following task be regarded as a classification"):
        return " No"
    if prompt.startswith("Come up with examples"):
        return "Example 1\nInput: \nOutput: The waves whisper under the moon."
    assert prompt.startswith("Come up with a series of tasks"), prompt[:80]
    return INSTRUCTIONS


def test_iteration_commit_is_consistent(database: Database) -> None:
    config = RunConfig(seed_set="default", prompts_per_iteration=1, target_tasks=5)
    with database.transaction() as s:
        seed_set = import_seed_set(
            s, name="default", seed_file=parse_seed_file(default_seed_path().read_bytes())
        ).seed_set
        run_id = create_run(
            s,
            seed_set_id=seed_set.id,
            config=config.model_dump(mode="json"),
            config_hash=config.config_hash(),
            policy_version="v1",
            target_tasks=5,
        ).id
        assert claim_run(s, owner="me", lease_seconds=60) == run_id
    with database.sessions() as s:
        run = s.get(Run, run_id)
        assert run is not None
        seeds, machine, items = load_pool(s, run)
    assert len(seeds) == 69 and machine == []
    index = make_index(Settings(), run_id=run_id, threshold=0.7)
    index.add_many(items)
    pipeline = RunPipeline(
        config=config,
        backend=ScriptedBackend(reply),
        index=index,
        seed_tasks=seeds,
        machine_tasks=machine,
    )
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
    assert all(str(t.id) in index for t in accepted)
