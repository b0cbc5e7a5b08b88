"""An evol run's iterations on both databases (scripted replies: this tests dispatch, elimination,
storage and lineage; the real-model path is tests/e2e/test_methods_model.py)."""

from __future__ import annotations

import itertools
import json
import re
import zlib
from pathlib import Path

import pytest
from sqlalchemy import select

from generators.backends.scripted import ScriptedBackend
from generators.evol import EvolConfig
from generators.types import Completion, PoolTask
from service.errors import NotFound
from service.export import ExportSpec, create_version
from service.reports.compute import build_run_report
from service.runs.config import RunConfig
from service.runs.pipeline import RunPipeline, open_pipeline
from service.settings import Settings
from service.storage.db import Database
from service.storage.evolution import depth_histogram, lineage, lineage_depth
from service.storage.iterations import commit_iteration
from service.storage.models import Generation, Instance, Run, Task
from tests.service.scripted_run import claimed_run

_GIVEN = re.compile(r"#(?:The )?Given Prompt#:\n(.*)\n\n#(?:Rewritten|Created) Prompt#:", re.S)


_CALLS = itertools.count()


def reply(prompt: str) -> str | Completion:
    """Evolve by the parent's first word (a marker); answer by the task's marker.

    A plain parent is rewritten into new words (its words shuffled, two fresh numbers), so
    ROUGE-L against the parent stays low and the lineage can grow.
    """
    given = _GIVEN.search(prompt)
    if given is None:  # the answer stage: the evolved task itself
        if "REFUSE" in prompt:
            return "I'm sorry, but I cannot help with that."
        if "STUB" in prompt:
            return "Ok."
        return "Here is a careful answer in several words, step by step."
    parent = given.group(1).split("\n")[0]
    kind = parent.split()[0]
    if kind == "SAME":
        return parent
    if kind == "COPY":
        return f"#Rewritten Prompt#: {parent} as the given prompt asks, in detail."
    if kind == "DUP":
        return "Describe the water cycle for a ten year old, in three short paragraphs."
    n = next(_CALLS)
    if kind in ("REFUSE", "STUB", "GOOD"):  # ROUGE-L 0.7 between two of a kind: kept
        # (no "<word> <n>:" at the start: that is a list-number label, rejected as such)
        return f"{kind} case list {n + 1} facts about the number {7 * n} {n}"
    shuffled = sorted(parent.split(), key=lambda w: zlib.crc32(f"{n}:{w}".encode()))
    return f"Case {n} {n + 7919}: {' '.join(shuffled)}"


def _config(**evol: object) -> RunConfig:
    return RunConfig(
        seed_set="default",
        method="evol",
        evol=EvolConfig(**{"parents_per_iteration": 24, **evol}),  # type: ignore[arg-type]
        target_tasks=100,
    )


def _pipeline(database: Database, run_id: int) -> tuple[Run, RunPipeline]:
    pipeline = open_pipeline(
        database, run_id, settings=Settings(), backend_for=lambda _: ScriptedBackend(reply)
    )
    with database.sessions() as s:
        run = s.get(Run, run_id)
        assert run is not None
    return run, pipeline


def _step(database: Database, run: Run, pipeline: RunPipeline, n: int) -> None:
    outcome = pipeline.step(n)
    with database.transaction() as s:
        stored = commit_iteration(s, run=run, owner="me", lease_seconds=60, outcome=outcome)
    pipeline.absorb(stored)


def test_evol_run_links_parents_and_lineage_deepens(database: Database) -> None:
    config = _config()
    run_id = claimed_run(database, config)
    run, pipeline = _pipeline(database, run_id)
    for n in (1, 2, 3):
        _step(database, run, pipeline, n)
    with database.sessions() as s:
        tasks = list(s.scalars(select(Task).where(Task.run_id == run_id).order_by(Task.id)))
        accepted = [t for t in tasks if t.status == "accepted"]
        assert accepted and all(t.parent_task_id is not None and t.operation for t in tasks)
        generations = {g.id: g for g in s.scalars(select(Generation))}
        for task in tasks:
            evolution = generations[task.generation_id]
            assert evolution.stage == "evolution"
            assert evolution.template_name == f"evol_{task.operation}"
            assert evolution.few_shot_ids == [str(task.parent_task_id)]
        for task in accepted:
            assert generations[task.instances_generation_id].stage == "answer"
        # Accepted evolved tasks join the pool, so later iterations evolve them again.
        deepest = max(accepted, key=lambda t: lineage_depth(s, t.id))
        chain = lineage(s, deepest.id)
        assert len(chain) >= 3 and chain[0].task_id == deepest.id
        assert [a.distance for a in chain] == list(range(len(chain)))
        root = s.get(Task, chain[-1].task_id)
        assert root is not None and root.origin == "seed" and chain[-1].operation is None
        seed = s.scalars(select(Task).where(Task.origin == "seed")).first()
        assert seed is not None and lineage_depth(s, seed.id) == 0
        histogram = depth_histogram(s, run_id)
        assert sum(histogram.values()) == len(accepted) and min(histogram) == 1
        assert max(histogram) == lineage_depth(s, deepest.id) >= 2
        with pytest.raises(NotFound):
            lineage(s, 10**9)


def test_elimination_rejects_each_failed_evolution(database: Database) -> None:
    run_id = claimed_run(database, _config(parents_per_iteration=1))
    run, pipeline = _pipeline(database, run_id)
    # One parent of each failure kind, every in-depth operation, evolved from those parents only.
    kinds = ("SAME", "COPY", "REFUSE", "STUB", "GOOD", "DUP")
    pipeline.seed_tasks = [
        PoolTask(seed.id, f"{kind} {seed.instruction}", False, "seed")
        for kind, seed in zip(kinds, pipeline.seed_tasks, strict=False)
    ]
    kind_of = {t.id: t.instruction.split()[0] for t in pipeline.seed_tasks}
    pipeline.config = pipeline.config.model_copy(
        update={"evol": EvolConfig(parents_per_iteration=60, parent_pool="seed")}
    )
    outcome = pipeline.step(1)
    rules: dict[str, list[str]] = {}
    for task in outcome.tasks:
        verdict = task.verdict
        rule = "accepted" if verdict.accepted else verdict.rule
        rules.setdefault(kind_of[task.candidate.parent_id or ""], []).append(rule)
    assert set(rules) == set(kinds)
    assert set(rules["SAME"]) == {"evol_no_new_information"}
    assert set(rules["COPY"]) == {"evol_copies_prompt"}
    assert set(rules["REFUSE"]) == {"evol_answer_refusal"}
    assert set(rules["STUB"]) == {"evol_answer_too_short"}
    assert set(rules["GOOD"]) == {"accepted"}
    # The run's near-duplicate rule runs too: one copy of the same evolution is kept.
    assert rules["DUP"] == ["accepted"] + ["near_duplicate"] * (len(rules["DUP"]) - 1)
    assert len(rules["DUP"]) > 1
    for task in outcome.tasks:
        if task.verdict.rule.startswith("evol_answer"):
            assert [v.rule for v in task.instance_verdicts] == [task.verdict.rule]
    with database.transaction() as s:
        commit_iteration(s, run=run, owner="me", lease_seconds=60, outcome=outcome)
    with database.sessions() as s:
        stored = s.get(Run, run_id)
        assert stored is not None
        assert {"evol_no_new_information", "evol_copies_prompt"} <= set(stored.rejected_by_rule)


def test_self_instruct_stays_the_default_method() -> None:
    config = RunConfig(seed_set="default")
    assert config.method == "self_instruct"
    with pytest.raises(ValueError):
        RunConfig(seed_set="default", method="magic")  # type: ignore[arg-type]


FOLLOW_UPS = [
    "Could you explain the second part in more detail?",
    "Please rewrite it using only short, plain words.",
    "That part is wrong: fix the grammar of the ending.",
    "Now add a title and sign it with a made-up name.",
    "Make the whole thing shorter, under ten words.",
    "Which idea in it matters most, and why?",
    "I'm sorry, but I can't help with that.",  # answered with a refusal: ends the conversation
]


def multiturn_reply(prompt: str) -> str:
    """A user turn or an answer from the lists, by a counter; a refusal stays a refusal."""
    n = next(_CALLS)
    if prompt.rstrip().endswith("User:"):
        return FOLLOW_UPS[n % len(FOLLOW_UPS)]
    if prompt.rstrip().endswith("I'm sorry, but I can't help with that.\n\nAssistant:"):
        return "I'm sorry, but I cannot help with that."
    return f"Answer {n}: " + " ".join(f"word{n}x{k}" for k in range(6))


def multiturn_run(database: Database, system_prompt: str, *, semantic: bool = False) -> int:
    """One iteration of a scripted multiturn run (12 conversations) committed; its id.
    `semantic`: with the embedding near-duplicate rule on (as the demo runs it)."""
    config = RunConfig(
        seed_set="default",
        method="multiturn",
        bootstrap={"prompts_per_iteration": 12},  # type: ignore[arg-type]
        multiturn={"system_prompt": system_prompt},  # type: ignore[arg-type]
        semantic_duplicates={"enabled": semantic},  # type: ignore[arg-type]
    )
    run_id = claimed_run(database, config)
    pipeline = open_pipeline(
        database,
        run_id,
        settings=Settings(),
        backend_for=lambda _: ScriptedBackend(multiturn_reply),
    )
    with database.sessions() as s:
        run = s.get(Run, run_id)
        assert run is not None
    _step(database, run, pipeline, 1)
    return run_id


def test_multiturn_run_stores_conversations(database: Database, tmp_path: Path) -> None:
    run_id = multiturn_run(database, "You are a careful assistant.")
    with database.sessions() as s:
        tasks = list(s.scalars(select(Task).where(Task.run_id == run_id)))
        assert len(tasks) == 12
        accepted = [t for t in tasks if t.status == "accepted"]
        rejected = [t for t in tasks if t.status == "rejected"]
        assert accepted and rejected
        assert {t.reject_rule for t in rejected} <= {"turn_refusal", "turn_near_duplicate"}
        generations = {g.id: g for g in s.scalars(select(Generation))}
        for task in tasks:
            assert task.operation == "multiturn" and task.parent_task_id is not None
            turns = task.turns or []
            assert turns[0] == {"role": "system", "content": "You are a careful assistant."}
            assert turns[1]["content"] == task.instruction
            assert generations[task.generation_id].stage == "follow_up"
        for task in accepted:
            turns = task.turns or []
            roles = [m["role"] for m in turns]
            users = roles.count("user")
            assert 2 <= users <= 4 and roles == ["system"] + ["user", "assistant"] * users
            (answer,) = s.scalars(select(Instance).where(Instance.task_id == task.id))
            assert answer.output == turns[-1]["content"] and answer.status == "accepted"
            assert generations[answer.generation_id].stage == "answer"
        report = build_run_report(s, run_id)
    # Each accepted conversation's last answer is scored like an instance's output (before,
    # the report showed "refusals in outputs: 0/0"); refusing turns were rejected by rule.
    assert report.refusals.outputs_scored == len(accepted)
    assert report.refusals.outputs_refused == 0
    # Exported as `messages`: the system prompt, then every user and assistant turn.
    spec = ExportSpec(runs=[run_id], include_seeds=False, validation_ratio=0)
    create_version(database, dataset="talk", spec=spec, datasets_dir=tmp_path)
    rows = [
        json.loads(x) for x in (tmp_path / "talk/v1/train.messages.jsonl").read_text().splitlines()
    ]
    assert sorted(int(r["task_id"]) for r in rows) == sorted(t.id for t in accepted)
    by_id = {t.id: t for t in accepted}
    for row in rows:
        assert row["messages"] == by_id[int(row["task_id"])].turns


@pytest.mark.parametrize(
    ("first", "last", "answer", "good"),
    [
        # The first turn's count is no count for the last question (0.27 when scored under it).
        ("List five fruits.", "Which two of them are the sweetest?", "1. Mango\n2. Grape", True),
        ("Name four planets.", "Which one is the largest?", "Jupiter", True),
        # The last question said back is an echo (1.0 when scored under the first turn).
        ("List five fruits.", "Which two of them are the sweetest?",
         "Which two of them are the sweetest?", False),
        ("Name four planets.", "Explain why Mars looks red to us.",
         "Explain why Mars looks red to us.", False),
    ],
)  # fmt: skip
def test_a_conversations_last_answer_is_scored_under_the_turn_it_answers(
    first: str, last: str, answer: str, good: bool
) -> None:
    """Scorers see what the answer answers: the last user turn, not the first (the task's
    instruction); the LLM judge is given the same prompt (Candidate.prompt_of)."""
    from filters.types import Verdict
    from generators.types import Candidate, Instance
    from service.runs.pipeline import PendingTask

    turns = [
        {"role": "user", "content": first},
        {"role": "assistant", "content": "Apple, banana, cherry, mango and grape."},
        {"role": "user", "content": last},
        {"role": "assistant", "content": answer},
    ]
    cand = Candidate(first, "g", instances=[Instance("", answer)], turns=turns)
    assert cand.prompt_of(0) == (last, "")
    task = PendingTask("new:0", cand, b"", Verdict(True, "all", "1"))
    pipeline = RunPipeline.__new__(RunPipeline)
    pipeline.config = RunConfig(seed_set="default", method="multiturn")
    pipeline._score_outputs(task, [0])
    (value,) = [s.value for _, s in task.scores if s.scorer == "heuristic_quality"]
    assert value is not None and (value > 0.7 if good else value < 0.5)
