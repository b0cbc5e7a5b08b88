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
from service.runs.pipeline import make_run_backend, open_pipeline
from service.settings import Settings
from service.storage.db import Database
from service.storage.iterations import commit_iteration
from service.storage.lineage import depth_histogram, lineage_depth
from service.storage.models import Generation, Instance, ParseFailure, Run, Task
from tests.conftest import MODEL_CACHE
from tests.service.scripted_run import claimed_run

pytestmark = [pytest.mark.model, pytest.mark.slow]


@pytest.fixture
def sqlite_db(sqlite_template: Path, tmp_path: Path) -> Database:
    path = tmp_path / "methods.db"
    shutil.copyfile(sqlite_template, path)
    return Database(f"sqlite:///{path}")


def test_evol_run_on_the_embedded_model(sqlite_db: Database, embedded_model_dir: Path) -> None:
    config = RunConfig(
        seed_set="default",
        method="evol",
        seed=3,
        evol=EvolConfig(
            parents_per_iteration=3,
            evolution_sampling=SamplingParams(
                temperature=0.7, top_p=0.95, max_tokens=64, stop=("\n\n",)
            ),
            answer_sampling=SamplingParams(temperature=0.0, top_p=1.0, max_tokens=48),
        ),
    )
    run_id = claimed_run(sqlite_db, config)
    settings = Settings(model_cache_dir=MODEL_CACHE)
    pipeline = open_pipeline(
        sqlite_db, run_id, settings=settings, backend_for=lambda c: make_run_backend(c, settings)
    )
    with sqlite_db.sessions() as s:
        run = s.get(Run, run_id)
        assert run is not None
    for n in (1, 2):
        outcome = pipeline.step(n)
        with sqlite_db.transaction() as s:
            stored = commit_iteration(s, run=run, owner="me", lease_seconds=60, outcome=outcome)
        pipeline.absorb(stored)

    with sqlite_db.sessions() as s:
        tasks = list(s.scalars(select(Task).where(Task.run_id == run_id)))
        generations = list(s.scalars(select(Generation).where(Generation.run_id == run_id)))
        failures = s.scalar(select(ParseFailure.id).where(ParseFailure.run_id == run_id).limit(1))
        stages = [g.stage for g in generations]
        assert stages.count("evolution") == 6 and set(stages) <= {"evolution", "answer"}
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
