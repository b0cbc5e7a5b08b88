"""A preference run's iterations on both databases, its report section and its DPO export.

Scripted replies (this tests dispatch, judging in both orders, storage, the report's bias
figures and the export; the real-model path is tests/e2e/test_methods_model.py). Each prompt
gets three responses: a long good one, a poor one and a short good one. The judge prefers a
good response in the free-text forms a weak judge writes, calls two good ones a tie, and for
every third prompt always names the first response shown (position bias). The same run with a
logprob judge gets the same preferences as label probabilities instead of text."""

from __future__ import annotations

import math
import re
import shutil
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from filters.judge import LOGPROB_ANSWER_PREFIX, JudgeMode
from generators.backends.scripted import ScriptedBackend
from generators.preference import PreferenceConfig
from generators.types import Completion, SamplingParams
from service.errors import InvalidInput
from service.export.preference import export_preference_pairs
from service.reports.compute import build_run_report
from service.runs.config import RunConfig
from service.runs.pipeline import open_pipeline
from service.settings import Settings
from service.storage.db import Database
from service.storage.iterations import commit_iteration
from service.storage.models import Generation, Instance, PreferenceComparison, Run, Task
from service.storage.preference import read_comparisons
from tests.service.api_client import api_harness
from tests.service.scripted_run import claimed_run

RESPONSES = ("Good: a full answer in several plain words.", "Poor.", "Good: short.")
_JUDGED = re.compile(
    r"INSTRUCTION:\n(.*)\n\nINPUT:.*RESPONSE A:\n(.*)\n\nRESPONSE B:\n(.*)\n\n"
    r"(Reply|Answer) with",
    re.S,
)
_TEXT = {"A": "A", "A>B": "Response A is better.", "B>A": "I prefer **B**.", "=": "Both are equal."}
_P_A = {"A": 0.9, "A>B": 0.75, "B>A": 0.25, "=": 0.5}  # p(A) of a logprob judge; p(B) = 1 - it


def _replies() -> tuple[object, Counter[str]]:
    answered: Counter[str] = Counter()

    def reply(prompt: str) -> str | Completion:
        judged = _JUDGED.search(prompt)
        if judged is None:  # the response stage: the prompt is the task itself
            n = answered[prompt]
            answered[prompt] += 1
            return RESPONSES[n % len(RESPONSES)]
        instruction, a, b, asked = judged.groups()
        ga, gb = a.startswith("Good"), b.startswith("Good")
        # position bias on every third prompt: never consistent across the swap
        verdict = "A" if len(instruction) % 3 == 0 else "=" if ga == gb else "A>B" if ga else "B>A"
        if asked == "Reply":
            return _TEXT[verdict]
        assert prompt.endswith(LOGPROB_ANSWER_PREFIX)
        p = _P_A[verdict]
        top = {" A": math.log(p), " B": math.log(1 - p), " The": math.log(1e-3)}
        return Completion(" A" if p >= 0.5 else " B", "length", 10, 1, 0.0, top_logprobs=[top])

    return reply, answered


@pytest.fixture
def sqlite_db(sqlite_template: Path, tmp_path: Path) -> Database:
    path = tmp_path / "preference.db"
    shutil.copyfile(sqlite_template, path)
    return Database(f"sqlite:///{path}")


def _config(prompts: int, judge_mode: JudgeMode = "text") -> RunConfig:
    return RunConfig(
        seed_set="default",
        method="preference",
        target_tasks=100,
        preference=PreferenceConfig(
            prompts_per_iteration=prompts,
            responses_per_prompt=3,
            response_sampling=SamplingParams(temperature=0.9, top_p=0.95, max_tokens=32),
            min_margin=1.0,
            judge_mode=judge_mode,
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


@pytest.mark.parametrize("judge_mode", ["text", "logprob"])
def test_preference_run_stores_responses_comparisons_and_report(
    database: Database, tmp_path: Path, judge_mode: JudgeMode
) -> None:
    run_id = _run(database, _config(prompts=6, judge_mode=judge_mode), iterations=2)
    margin = 1.0 if judge_mode == "text" else 1.5  # 3 * (0.75 - 0.25)
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
            assert row.judge_mode == judge_mode
            assert all((x["label_logprobs"] is None) == (judge_mode == "text") for x in row.replies)
        for task in fair:
            outcomes = [(r.outcome, r.margin, r.length_only) for r in by_task[task.id]]
            # (0, 1): good beats poor; (0, 2): two good ones tie; (1, 2): good beats poor
            assert outcomes == [
                ("kept", pytest.approx(margin), False),
                ("tie", None, False),
                ("kept", pytest.approx(margin), False),
            ]
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
    if judge_mode == "text":
        assert audit.replies_by_form == {
            "comparative": 4 * len(fair),  # "Response A is better." in each good-first order
            "choice": 4 * len(fair),
            "tie": 4 * len(fair),
            "bare": 12 * len(biased),
        }
    else:
        assert audit.replies_by_form == {"logprob": 12 * 12}
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
    # One step: TRL reads the export as it is (its loss at the reference model is log 2);
    # training on such rows is test_preference_trl's business.
    logged = dpo_smoke(
        tmp_path / "pairs" / form / "train.jsonl", embedded_model_dir, tmp_path, steps=1
    )
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


def test_rest_pages_through_a_runs_preference_pairs(db_url: str, tmp_path: Path) -> None:
    with api_harness(db_url, tmp_path) as api:
        run_id = _run(api.database, _config(prompts=6, judge_mode="logprob"), iterations=1)
        headers = api.headers("read")
        with api.database.sessions() as s:
            kept = [r.id for r in read_comparisons(s, run_id, outcome="kept")]
            every = [r.id for r in read_comparisons(s, run_id)]
            accepted = s.scalars(
                select(Task.id).where(Task.run_id == run_id, Task.status == "accepted")
            ).all()

        def walk(query: str) -> list[dict[str, object]]:
            items: list[dict[str, object]] = []
            cursor: str | None = ""
            pages = 0
            while cursor is not None:
                got = api.client.get(
                    f"/v1/runs/{run_id}/preference-pairs?limit=2&cursor={cursor}{query}",
                    headers=headers,
                )
                assert got.status_code == 200, got.text
                items += got.json()["items"]
                cursor, pages = got.json()["next_cursor"], pages + 1
            assert pages == max(1, -(-len(items) // 2))
            return items

        pairs = walk("")
        assert [p["id"] for p in pairs] == kept and len(kept) == 2 * len(accepted) > 0
        assert all(p["outcome"] == "kept" and p["chosen"] in (1, 2) for p in pairs)
        first = pairs[0]
        assert first["judge_mode"] == "logprob" and first["margin"] == pytest.approx(1.5)
        chosen = first["response_1"] if first["chosen"] == 1 else first["response_2"]
        assert chosen.startswith("Good") and len(first["replies"]) == 4
        assert first["replies"][0]["label_logprobs"] == pytest.approx(
            {"A": math.log(0.75), "B": math.log(0.25)}
        ) or first["replies"][0]["label_logprobs"] == pytest.approx(
            {"A": math.log(0.25), "B": math.log(0.75)}
        )
        assert [p["id"] for p in walk("&outcome=all")] == every
        ties = walk("&outcome=tie")
        assert ties and all(p["outcome"] == "tie" and p["chosen"] is None for p in ties)
        get = api.client.get
        assert get("/v1/runs/999999/preference-pairs", headers=headers).status_code == 404
        assert get(f"/v1/runs/{run_id}/preference-pairs").status_code == 401
        bad = get(f"/v1/runs/{run_id}/preference-pairs?outcome=won", headers=headers)
        assert bad.status_code == 422
        bad = get(f"/v1/runs/{run_id}/preference-pairs?cursor=zz", headers=headers)
        assert bad.status_code == 422 and bad.json()["code"] == "invalid_input"


def test_a_dpo_training_run_is_recorded_against_its_preference_run(
    database: Database, tmp_path: Path
) -> None:
    from service.storage.training_runs import get_training_run, list_training_runs
    from service.training import preference_run_of, record_training_run
    from trainer.loop import TrainResult

    run_id = _run(database, _config(prompts=3, judge_mode="logprob"), iterations=1)
    with database.sessions() as s:
        export_preference_pairs(s, run_id, tmp_path / "pairs", validation_ratio=0.0)
    assert preference_run_of(tmp_path / "pairs") == run_id
    assert preference_run_of(tmp_path) is None  # pairs made elsewhere: no manifest
    out = tmp_path / "model"
    out.mkdir()
    metrics = {"val_loss": 0.6, "val_reward_margin": 0.25, "val_reward_accuracy": 0.75}
    result = TrainResult(output_dir=out, manifest={"config": {"method": "dpo"}}, metrics=metrics)
    ids = [
        record_training_run(
            database, dataset_version_id=None, result=result, method="dpo", preference_run_id=ref
        )
        for ref in (run_id, 999_999)  # the second names a run this database never had
    ]
    with database.sessions() as s:
        rows = {r.run.id: r for r in list_training_runs(s)}
        mine = get_training_run(s, ids[0])
        assert (mine.dataset, mine.dataset_version) == (None, None)
        assert (mine.run.method, mine.run.preference_run_id) == ("dpo", run_id)
        assert mine.run.metrics == metrics and mine.run.status == "completed"
        assert rows[ids[1]].run.preference_run_id is None


def test_export_holds_only_pairs_of_accepted_prompts(database: Database, tmp_path: Path) -> None:
    """A prompt turned ``over_target`` (or rejected by any rule after judging) keeps its stored
    comparisons for the report, but none of its pairs reach the export: the run stops with
    exactly its target of prompts, and so does its dataset."""
    config = _config(prompts=6).model_copy(update={"target_tasks": 2})
    run_id = _run(database, config, iterations=1)
    with database.sessions() as s:
        statuses = Counter(
            (t.status, t.reject_rule) for t in s.scalars(select(Task).where(Task.run_id == run_id))
        )
        assert statuses[("accepted", None)] == 2
        assert statuses[("rejected", "over_target")] >= 1  # fair prompts past the target
        kept = read_comparisons(s, run_id, outcome="kept")
        assert len(kept) > 2 * 2  # the over_target prompts' pairs are stored
        manifest = export_preference_pairs(s, run_id, tmp_path / "pairs", validation_ratio=0.0)
        report = build_run_report(s, run_id)
    assert manifest["pairs"] == {"train": 4, "validation": 0}  # 2 accepted prompts x 2 pairs
    assert report.preference is not None and report.preference.comparisons == 18


@pytest.mark.parametrize(
    ("poor", "refused"),
    [
        ("I'm sorry, but I can't help with that.", 1),  # a refusal, English
        ("Lo siento, pero no puedo ayudar con eso.", 0),  # not an English refusal pattern
        ("Poor poor poor poor poor poor poor poor poor poor poor.", 0),  # degenerate
    ],
)
def test_preference_responses_are_scored_like_instances(
    database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, poor: str, refused: int
) -> None:
    """Each response gets the run's text scorers, so the report counts refusals among them
    (a refusal a judge prefers is the bias to watch) instead of showing 0/0."""
    monkeypatch.setattr(
        "tests.service.test_preference_pipeline.RESPONSES", (RESPONSES[0], poor, RESPONSES[2])
    )
    run_id = _run(database, _config(prompts=6), iterations=1)
    with database.sessions() as s:
        report = build_run_report(s, run_id)
    assert report.refusals.outputs_scored == 18  # 6 prompts x 3 responses, accepted or not
    assert report.refusals.outputs_refused == 6 * refused


def test_a_score_gate_keeps_gated_responses_out_of_the_export(
    database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A response the run's score gate rejects is stored rejected by ``score_gate``; the pairs
    it is in stay in the report's comparisons but never reach the DPO export."""
    degenerate = "poor " * 12
    monkeypatch.setattr(
        "tests.service.test_preference_pipeline.RESPONSES",
        (RESPONSES[0], degenerate.strip(), RESPONSES[2]),
    )
    config = _config(prompts=6).model_copy(update={"score_gate": {"heuristic_quality": 0.5}})
    run_id = _run(database, RunConfig.model_validate(config.model_dump()), iterations=1)
    with database.sessions() as s:
        tasks = list(s.scalars(select(Task).where(Task.run_id == run_id)))
        fair = [t for t in tasks if t.status == "accepted"]
        assert fair
        gated = list(
            s.scalars(
                select(Instance).where(Instance.reject_rule == "score_gate").order_by(Instance.id)
            )
        )
        assert [i.idx for i in gated] == [1] * len(fair)  # the gate acts on accepted prompts
        kept = read_comparisons(s, run_id, outcome="kept")
        assert len(kept) == 2 * len(fair)  # each good response beats the degenerate one
        manifest = export_preference_pairs(s, run_id, tmp_path / "pairs", validation_ratio=0.0)
    assert manifest["pairs"] == {"train": 0, "validation": 0}  # every kept pair holds it
