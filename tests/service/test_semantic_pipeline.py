"""The embedding near-duplicate rule in a run: off by default, after ROUGE-L when enabled."""

from __future__ import annotations

import os
import threading
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from filters.embeddings import (
    INT8_MODEL,
    STATIC_MODEL,
    SentenceEncoder,
    int8_encoder_dir,
    prepare_static_encoder,
    static_encoder_dir,
)
from filters.errors import ConfigError
from generators.backends.scripted import ScriptedBackend
from generators.types import Candidate
from service.cli import app
from service.runs import pipeline as pipeline_module
from service.runs.config import RunConfig
from service.runs.pipeline import open_pipeline
from service.settings import Settings, get_settings
from service.storage.db import Database
from service.storage.embeddings import load_task_embeddings, store_task_embeddings
from service.storage.iterations import commit_iteration
from service.storage.models import Task
from tests.conftest import MODEL_CACHE
from tests.service.scripted_run import claimed_run, queued_run, reply, scripted_pipeline
from tests.service.test_run_config import SpyStages

# The rule's default encoder is the int8 one: prepared once for the session.
pytestmark = [pytest.mark.embeddings, pytest.mark.usefixtures("prepared_int8_encoder")]

# A reworded default seed (ROUGE-L 0.26; cosine 0.844 with the default int8 encoder, 0.848 with
# fp32 MiniLM) and a task no seed resembles (0.35).
SEED = "Give three practical tips for someone who struggles to fall asleep."
PARAPHRASE = "Share some useful advice for people who have trouble getting to sleep."
DISTINCT = "List the chemical elements whose symbols are a single letter."
# One instruction prompt an iteration, the embedding rule on.
ONE_PROMPT_SEMANTIC = RunConfig.model_validate(
    {
        "seed_set": "default",
        "bootstrap": {"prompts_per_iteration": 1},
        "semantic_duplicates": {"enabled": True},
    }
)


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
    # The encoder's own cosine: int8 kernels differ by CPU (0.844 with VNNI, 0.837 on AVX2).
    vectors = pipeline.semantic.encoder.encode([PARAPHRASE, SEED])
    cosine = float(vectors[0] @ vectors[1]) / float(
        np.linalg.norm(vectors[0]) * np.linalg.norm(vectors[1])
    )
    assert paraphrase.verdict.similarity == pytest.approx(cosine, abs=1e-4)
    assert 0.83 < cosine < 0.85
    assert pipeline.semantic.encoder.name == INT8_MODEL and pipeline.semantic.threshold == 0.775
    pipeline.absorb([(9001, distinct), (9002, paraphrase)])
    assert "9001" in pipeline.semantic and "9002" not in pipeline.semantic


def test_the_index_is_built_while_the_first_instructions_are_generated(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = ONE_PROMPT_SEMANTIC
    run_id = claimed_run(database, config)
    requested = threading.Event()
    build = pipeline_module.make_semantic_index

    def after_the_first_request(*args: Any, **kwargs: Any) -> Any:
        # Built before open_pipeline returned, this waits in vain: no request is sent yet.
        assert requested.wait(timeout=30), "the index build held back the instruction requests"
        return build(*args, **kwargs)

    def replying(prompt: str) -> str:
        requested.set()
        return reply(prompt)

    monkeypatch.setattr(pipeline_module, "make_semantic_index", after_the_first_request)
    pipeline = open_pipeline(
        database, run_id, settings=Settings(), backend_for=lambda _: ScriptedBackend(replying)
    )
    tasks = pipeline.step(1).tasks
    assert pipeline.semantic is not None and len(pipeline.semantic) == len(pipeline.seed_tasks)
    # The screening waited for the index: the accepted task was checked against it.
    accepted = [t for t in tasks if t.accepted]
    assert accepted and all(t.embedding is not None for t in accepted)


def test_a_failed_index_build_fails_the_step_that_needs_it(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = RunConfig.model_validate(
        {"seed_set": "default", "semantic_duplicates": {"enabled": True}}
    )
    run_id = claimed_run(database, config)

    def failing(*args: Any, **kwargs: Any) -> Any:
        raise ConfigError("embedding model 'x' is not prepared")

    monkeypatch.setattr(pipeline_module, "make_semantic_index", failing)
    pipeline = open_pipeline(
        database, run_id, settings=Settings(), backend_for=lambda _: ScriptedBackend(reply)
    )
    with pytest.raises(ConfigError, match="not prepared"):
        pipeline.step(1)


def test_pool_embeddings_are_stored_once_and_reused_at_the_next_claim(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = ONE_PROMPT_SEMANTIC
    run_id = claimed_run(database, config)
    embedded: list[str] = []
    encode = SentenceEncoder.encode

    def counting(self: SentenceEncoder, texts: Any, **kwargs: Any) -> np.ndarray:
        embedded.extend(texts)
        return encode(self, texts, **kwargs)

    monkeypatch.setattr(SentenceEncoder, "encode", counting)
    run, first = scripted_pipeline(database, run_id, config)
    assert first.semantic is not None
    model = first.semantic.encoder.model_id
    assert model.startswith(f"{INT8_MODEL}@") and model.endswith("/e1.2")
    seeds = {int(t.id): t.instruction for t in first.seed_tasks}
    assert sorted(embedded) == sorted(seeds.values())  # the first claim embeds the seeds once
    outcome = first.step(1)
    assert outcome.embedding_model == model
    with database.transaction() as s:
        stored = commit_iteration(s, run=run, owner="me", lease_seconds=60, outcome=outcome)
    accepted = {tid: t for tid, t in stored if t.accepted}
    assert accepted and all(t.embedding is not None for t in accepted.values())
    with database.sessions() as s:
        vectors = load_task_embeddings(s, model, [*seeds, *accepted, *(tid for tid, _ in stored)])
        assert load_task_embeddings(s, "another-model@x/e1", list(vectors)) == {}
    # Seeds and accepted tasks have a row, bit for bit the vector the rule checked; rejected
    # tasks have none.
    assert set(vectors) == set(seeds) | set(accepted)
    for tid, task in accepted.items():
        assert vectors[tid].dtype == np.float32
        np.testing.assert_array_equal(vectors[tid], task.embedding)
    first.absorb(stored)

    embedded.clear()
    _, second = scripted_pipeline(database, run_id, config)  # the next claim embeds nothing
    assert embedded == []
    assert second.semantic is not None and len(second.semantic) == len(first.semantic)
    probe = first.semantic.embed([PARAPHRASE, DISTINCT])
    assert second.semantic.search(probe) == first.semantic.search(probe)


def test_stored_embeddings_round_trip_and_ignore_a_second_insert(database: Database) -> None:
    queued_run(database, RunConfig.model_validate({"seed_set": "default"}))
    vector = np.array([0.5, -0.25, 1e-8, 1.0e38], dtype=np.float32)
    with database.transaction() as s:
        seed_ids = [t.id for t in s.scalars(select(Task).where(Task.origin == "seed").limit(2))]
        assert store_task_embeddings(s, "m@1/e1", [(seed_ids[0], vector)]) == 1
        # A rival claim storing the same pair is ignored, not an error.
        assert store_task_embeddings(s, "m@1/e1", [(seed_ids[0], vector * 2)]) == 0
        assert store_task_embeddings(s, "m@2/e1", [(seed_ids[0], vector * 2)]) == 1
    with database.sessions() as s:
        got = load_task_embeddings(s, "m@1/e1", seed_ids)
        assert list(got) == [seed_ids[0]]
        np.testing.assert_array_equal(got[seed_ids[0]], vector)
        other = load_task_embeddings(s, "m@2/e1", seed_ids)
        np.testing.assert_array_equal(other[seed_ids[0]], vector * 2)
        assert load_task_embeddings(s, "m@1/e1", []) == {}


# For the static encoder: a reordering ROUGE-L lets through (0.5) that it rejects (cosine
# 0.919 > its 0.9), while the looser rewording above stays under its threshold (0.695).
REORDERED = "Someone struggles to fall asleep; suggest three practical tips."


class StaticStages(SpyStages):
    """A reordered seed, a reworded seed and a new task, one instance each."""

    def instructions(self, seed_tasks: Any, machine_tasks: Any) -> list[Candidate]:
        return [Candidate(REORDERED, "g1"), Candidate(PARAPHRASE, "g1"), Candidate(DISTINCT, "g1")]


def test_a_run_can_use_the_static_encoder_with_its_own_threshold(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    os.environ["HF_HUB_OFFLINE"] = "1"
    prepare_static_encoder(MODEL_CACHE)  # distilled once (about 2 CPU minutes), then cached
    config = RunConfig.model_validate(
        {"seed_set": "default", "semantic_duplicates": {"enabled": True, "model": STATIC_MODEL}}
    )
    run_id = queued_run(database, config)
    pipeline = open_pipeline(
        database,
        run_id,
        settings=Settings(model_cache_dir=MODEL_CACHE),
        backend_for=lambda _: ScriptedBackend(reply),
    )
    monkeypatch.setattr(pipeline_module, "Iteration", StaticStages)
    assert pipeline.semantic is not None and pipeline.semantic.threshold == 0.9
    outcome = pipeline.step(1)
    reordered, reworded, distinct = outcome.tasks
    assert outcome.embedding_model is not None
    assert outcome.embedding_model.startswith(f"{STATIC_MODEL}@d")
    assert not reordered.accepted and reordered.verdict.rule == "semantic_duplicate"
    seed = next(t for t in pipeline.seed_tasks if t.instruction == SEED)
    assert reordered.verdict.nearest_id == seed.id
    assert reordered.verdict.similarity == pytest.approx(0.919, abs=2e-3)
    assert reworded.accepted and distinct.accepted  # the static encoder's lower recall


def test_model_prepare_quantises_the_default_encoder_and_distils_the_static_one_when_asked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("INSTRUCTFORGE_MODEL_CACHE_DIR", str(MODEL_CACHE))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    get_settings.cache_clear()
    try:
        plain = CliRunner().invoke(app, ["model", "prepare"])
        asked = CliRunner().invoke(app, ["model", "prepare", "--static-encoder"])
        bare = CliRunner().invoke(app, ["model", "prepare", "--no-int8-encoder"])
    finally:
        get_settings.cache_clear()
    assert plain.exit_code == 0 and "static encoder" not in plain.output
    # The semantic rule's default encoder is prepared unless declined.
    assert "int8 encoder ready" in plain.output
    assert int8_encoder_dir(MODEL_CACHE).name in plain.output.replace("\n", "")
    assert bare.exit_code == 0 and "int8 encoder" not in bare.output
    assert asked.exit_code == 0, asked.output
    assert "static encoder ready" in asked.output
    assert static_encoder_dir(MODEL_CACHE).name in asked.output.replace("\n", "")


def test_a_multiturn_run_with_the_rule_on_commits_its_conversations(database: Database) -> None:
    """The demo's multiturn run failed here ("need at least one array to stack"): accepted
    conversations repeat their parent's instruction, are never screened by the rule, and have
    no vector for its pool."""
    from tests.service.test_evol_pipeline import multiturn_run

    run_id = multiturn_run(database, "Be brief.", semantic=True)
    with database.sessions() as s:
        statuses = [t.status for t in s.scalars(select(Task).where(Task.run_id == run_id))]
    assert len(statuses) == 12 and "accepted" in statuses
