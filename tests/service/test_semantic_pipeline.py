"""The embedding near-duplicate rule in a run: off by default, after ROUGE-L when enabled."""

from __future__ import annotations

from typing import Any

import pytest

from generators.backends.scripted import ScriptedBackend
from generators.types import Candidate
from service.runs import pipeline as pipeline_module
from service.runs.config import RunConfig
from service.runs.pipeline import open_pipeline
from service.settings import Settings
from service.storage.db import Database
from tests.service.scripted_run import queued_run, reply
from tests.service.test_run_config import SpyStages

pytestmark = pytest.mark.embeddings

# A reworded default seed (ROUGE-L 0.26, cosine 0.848) and a task no seed resembles (0.35).
SEED = "Give three practical tips for someone who struggles to fall asleep."
PARAPHRASE = "Share some useful advice for people who have trouble getting to sleep."
DISTINCT = "List the chemical elements whose symbols are a single letter."


class FixedStages(SpyStages):
    """Two fixed instructions (a paraphrase of a seed, a new task), one instance each."""

    def instructions(self, seed_tasks: Any, machine_tasks: Any) -> list[Candidate]:
        return [Candidate(PARAPHRASE, "g1"), Candidate(DISTINCT, "g1")]


@pytest.mark.parametrize("enabled", [False, True])
def test_paraphrase_of_a_seed_is_rejected_only_when_enabled(
    database: Database, monkeypatch: pytest.MonkeyPatch, enabled: bool
) -> None:
    config = RunConfig.model_validate(
        {"seed_set": "default", "semantic_duplicates": {"enabled": enabled}}
    )
    run_id = queued_run(database, config)
    pipeline = open_pipeline(
        database, run_id, settings=Settings(), backend_for=lambda _: ScriptedBackend(reply)
    )
    monkeypatch.setattr(pipeline_module, "Iteration", FixedStages)
    paraphrase, distinct = pipeline.step(1).tasks
    assert distinct.accepted
    if not enabled:
        assert pipeline.semantic is None
        assert paraphrase.accepted and paraphrase.verdict.rule == "near_duplicate"
        return
    assert not paraphrase.accepted
    assert paraphrase.verdict.rule == "semantic_duplicate"
    seed = next(t for t in pipeline.seed_tasks if t.instruction == SEED)
    assert paraphrase.verdict.nearest_id == seed.id
    assert paraphrase.verdict.similarity == pytest.approx(0.848, abs=1e-3)
    pipeline.absorb([(9001, distinct), (9002, paraphrase)])
    assert "9001" in pipeline.semantic and "9002" not in pipeline.semantic
