"""The run's score gate rejects at generation time, stored and counted like every rule.

Scripted replies: this tests the pipeline's filtering and storage, not generation.
"""

from __future__ import annotations

import pydantic
import pytest
from sqlalchemy import select

from filters.quality import SCORER_VERSION
from generators.backends.scripted import ScriptedBackend
from generators.config import BootstrapConfig
from service.runs.config import RunConfig
from service.storage.db import Database
from service.storage.iterations import commit_iteration
from service.storage.models import Instance, Run, Score, Task
from tests.service.scripted_run import claimed_run, scripted_pipeline
from tests.service.scripted_run import reply as scripted_reply

POEM = "Write a short poem about the ocean at night."
WATER = "List three ways to save water at home."
GOOD = "Take shorter showers, fix leaking taps and water the garden at dawn."
LOOP = " ".join(["save the water"] * 20)
RESIDUE = "The waves whisper under the moon.\n\n5. Write a story about a dog."
GATE_VERSION = f"heuristic_quality@{SCORER_VERSION}"


def reply(prompt: str) -> str:
    if prompt.startswith("Come up with examples"):
        if "ocean" in prompt:  # its only instance runs on into the next task
            return f"Example 1\nInput: \nOutput: {RESIDUE}"
        return f"Example 1\nInput: \nOutput: {GOOD}\n\nExample 2\nInput: \nOutput: {LOOP}"
    return scripted_reply(prompt)


def config(gate: dict[str, float]) -> RunConfig:
    return RunConfig(
        seed_set="default",
        bootstrap=BootstrapConfig(prompts_per_iteration=1),
        target_tasks=5,
        score_gate=gate,
    )


def test_without_a_gate_the_junk_is_kept(database: Database) -> None:
    cfg = config({})
    _, pipeline = scripted_pipeline(database, claimed_run(database, cfg), cfg)
    pipeline.backend = ScriptedBackend(reply)
    by_text = {t.candidate.instruction: t for t in pipeline.step(1).tasks}
    assert by_text[POEM].accepted and by_text[WATER].accepted
    assert all(v.accepted for v in by_text[WATER].instance_verdicts)


def test_scores_below_the_gate_reject_instances_and_tasks(database: Database) -> None:
    cfg = config({"heuristic_quality": 0.6})
    run_id = claimed_run(database, cfg)
    run, pipeline = scripted_pipeline(database, run_id, cfg)
    pipeline.backend = ScriptedBackend(reply)
    outcome = pipeline.step(1)
    by_text = {t.candidate.instruction: t for t in outcome.tasks}
    poem, water = by_text[POEM].verdict, by_text[WATER]
    assert (poem.accepted, poem.rule, poem.rule_version) == (False, "score_gate", GATE_VERSION)
    assert "heuristic_quality v" in poem.reason and "< minimum 0.6" in poem.reason
    assert water.accepted
    assert [(v.accepted, v.rule) for v in water.instance_verdicts] == [
        (True, "all"),
        (False, "score_gate"),
    ]
    with database.transaction() as s:
        stored = commit_iteration(s, run=run, owner="me", lease_seconds=60, outcome=outcome)
    pipeline.absorb(stored)
    kept = next(t for t in pipeline.machine_tasks if t.instruction == WATER)
    assert [i.output for i in kept.instances] == [GOOD]  # the gated one is not sampled later
    with database.sessions() as s:
        stored_run = s.get(Run, run_id)
        assert stored_run is not None and stored_run.rejected_by_rule["score_gate"] == 1
        task = s.scalars(select(Task).where(Task.instruction == POEM)).one()
        assert (task.status, task.reject_rule) == ("rejected", "score_gate")
        assert task.reject_rule_version == GATE_VERSION
        loop = s.scalars(select(Instance).where(Instance.output == LOOP)).one()
        assert (loop.status, loop.reject_rule) == ("rejected", "score_gate")
        assert loop.reject_rule_version == GATE_VERSION
        # The score that decided is stored beside the rejection.
        loop_score = s.scalars(
            select(Score).where(Score.instance_id == loop.id, Score.scorer == "heuristic_quality")
        ).one()
        assert loop_score.value is not None and loop_score.value < 0.6


@pytest.mark.parametrize(
    "gate,scorers",
    [
        ({"heuristic_quality": 0.5}, ["refusal"]),  # gated scorer never runs
        ({"llm_judge": 3.0}, ["heuristic_quality"]),
        ({"refusal": 0.5}, ["refusal"]),  # higher is a refusal: no minimum makes sense
    ],
)
def test_a_gate_that_could_never_act_is_refused(gate: dict[str, float], scorers: list[str]) -> None:
    with pytest.raises(pydantic.ValidationError, match="score_gate"):
        RunConfig.model_validate({"seed_set": "s", "scorers": scorers, "score_gate": gate})
