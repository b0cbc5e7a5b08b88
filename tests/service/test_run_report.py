"""The run report on constructed runs: rows inserted directly, every number known in advance."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from generators.backends.scripted import ScriptedBackend
from service.export.build import create_version
from service.export.spec import ExportSpec
from service.reports.collapse import StopRules, check_stop_rules
from service.reports.compute import build_run_report
from service.reports.dataset import DIVERSITY_PNG, VERBS_PNG, YIELD_PNG
from service.reports.schema import RunReport
from service.runs.config import RunConfig
from service.runs.worker import Worker
from service.settings import Settings
from service.storage.db import Database
from service.storage.embeddings import store_task_embeddings
from service.storage.models import (
    Instance,
    ParseFailure,
    Run,
    Score,
    Task,
)
from service.storage.runs import add_event, recent_events
from tests.service.api_client import api_harness
from tests.service.scripted_run import queued_run, reply
from tests.service.test_export import Factory

SEEDS = ("Write a poem about the sea.", "List three fruits.")


def _generation(
    f: Factory,
    run: Run,
    iteration: int,
    stage: str,
    tokens: tuple[int, int],
    shots: Sequence[str] = (),
) -> str:
    gen = f.generation(run)
    gen.iteration, gen.stage, gen.few_shot_ids = iteration, stage, list(shots)
    gen.prompt_tokens, gen.completion_tokens = tokens
    f.session.flush()
    return gen.id


def _task(
    f: Factory,
    run: Run,
    iteration: int,
    text: str,
    gens: tuple[str, ...],
    *,
    rule: str | None = None,
    is_cls: bool | None = None,
) -> int:
    task = f.task(text, (), run=run, status="rejected" if rule else "accepted")
    task.iteration, task.is_classification = iteration, is_cls
    task.generation_id = gens[0]
    task.classification_generation_id = gens[1] if len(gens) > 1 else None
    task.instances_generation_id = gens[2] if len(gens) > 2 else None
    task.reject_rule = rule
    f.session.flush()
    return task.id


def _scored_instance(
    f: Factory, task_id: int, idx: int, chars: int, judge: float | None, refused: float
) -> None:
    inst = Instance(task_id=task_id, idx=idx, input="", output="x" * chars)
    f.session.add(inst)
    f.session.flush()
    judged = {"rubric_sha256": "abc"} if judge is not None else {"error": "no score"}
    for scorer, version, value, details in (
        ("llm_judge", "v2", judge, judged),
        ("refusal", "2", refused, {}),
    ):
        f.session.add(
            Score(
                task_id=task_id,
                instance_id=inst.id,
                scorer=scorer,
                scorer_version=version,
                value=value,
                details=details,
            )
        )


def constructed_run(database: Database) -> int:
    """Two iterations with known tokens, rejections, few-shot ids, judge and refusal scores."""
    with database.transaction() as s:
        f = Factory(s)
        seed_ids = [str(f.task(text, ()).id) for text in SEEDS]
        run = f.run()
        # Iteration 1: one completion gives 4 tasks; another fails to parse.
        g1 = _generation(f, run, 1, "instructions", (100, 40), seed_ids)
        bad = _generation(f, run, 1, "instructions", (100, 20), seed_ids)
        s.add(
            ParseFailure(
                generation_id=bad,
                run_id=run.id,
                stage="instructions",
                reason="no instructions found",
                excerpt="",
            )
        )
        c1 = _generation(f, run, 1, "classification", (10, 2))
        i1 = _generation(f, run, 1, "instances", (30, 20))
        t1 = _task(f, run, 1, "Describe a rainy day in the city.", (g1, c1, i1), is_cls=False)
        _task(f, run, 1, "Write a poem about the sea!", (g1,), rule="near_duplicate")
        _task(f, run, 1, "Draw a picture of a cat.", (g1,), rule="unsuitable_keyword")
        c2 = _generation(f, run, 1, "classification", (10, 2))
        i2 = _generation(f, run, 1, "instances", (30, 10))
        _task(f, run, 1, "Tell me.", (g1, c2, i2), rule="instances")
        _scored_instance(f, t1, 0, 100, 2.0, 0.0)
        _scored_instance(f, t1, 1, 300, 4.0, 1.0)
        # Iteration 2: the prompt holds one seed and one machine task.
        g2 = _generation(f, run, 2, "instructions", (100, 40), [seed_ids[0], str(t1)])
        c3 = _generation(f, run, 2, "classification", (10, 2))
        i3 = _generation(f, run, 2, "instances", (30, 20))
        text = "Describe a rainy day in the city at night."
        t5 = _task(f, run, 2, text, (g2, c3, i3), is_cls=True)
        _task(f, run, 2, "Describe a rainy day in the city.", (g2,), rule="near_duplicate")
        _scored_instance(f, t5, 0, 200, 3.0, 0.0)
        _scored_instance(f, t5, 1, 50, None, 0.0)
        run.iteration = 2
        return run.id


def test_yield_counts_and_tokens_per_rule(database: Database) -> None:
    run_id = constructed_run(database)
    with database.sessions() as s:
        report = build_run_report(s, run_id)
    total = report.yield_
    assert (total.candidates, total.accepted, total.rejected) == (6, 2, 4)
    assert total.rejected_by_stage == {"heuristics": 1, "instances": 1, "near_duplicates": 2}
    assert total.parse_failures_by_reason == {"no instructions found": 1}
    assert (total.prompt_tokens, total.completion_tokens) == (420, 156)
    assert (total.prompt_tokens_per_accepted, total.completion_tokens_per_accepted) == (210, 78)
    by_rule = {
        r.rule: (r.stage, r.rejected, r.prompt_tokens, r.completion_tokens)
        for r in total.rejected_by_rule
    }
    assert by_rule == {
        # A quarter of iteration 1's completion, half of iteration 2's.
        "near_duplicate": ("near_duplicates", 2, 75, 30),
        "unsuitable_keyword": ("heuristics", 1, 25, 10),
        # A quarter of the instruction call plus its own classification and instance calls.
        "instances": ("instances", 1, 65, 22),
    }
    first, second = report.iterations
    assert (first.iteration, first.yield_.candidates, first.yield_.prompt_tokens) == (1, 4, 280)
    assert first.yield_.parse_failures_by_reason == {"no instructions found": 1}
    assert (second.yield_.candidates, second.yield_.accepted, second.yield_.completion_tokens) == (
        2,
        1,
        62,
    )
    assert second.yield_.parse_failures_by_reason == {}


def test_diversity_and_collapse_radar(database: Database) -> None:
    run_id = constructed_run(database)
    with database.sessions() as s:
        report = build_run_report(s, run_id)
    d = report.diversity
    # 16 tokens, 9 distinct; 14 bigrams, 8 distinct.
    assert (d.instructions, d.distinct_1, d.distinct_2) == (2, 9 / 16, 8 / 14)
    assert d.classification_share == 0.5
    # Root verb and object: both accepted instructions give (describe, rainy).
    assert (d.verb_noun_parsed, d.verb_noun_pairs, d.distinct_verbs) == (2, 1, 1)
    assert d.top20_verb_share == 1.0 and d.top_verbs == [("describe", 2)]
    # No vectors stored: the semantic rule never ran.
    assert (d.embedding_model, d.embedded, d.embedding_mean_distance) == (None, 0, None)
    assert d.embedding_clusters is None
    r1, r2 = (it.collapse for it in report.iterations)
    assert (r1.machine_share_in_prompts, r2.machine_share_in_prompts) == (0.0, 0.5)
    # The keyword rejection never reached the duplicate check.
    assert (r1.near_duplicate_rate, r2.near_duplicate_rate) == (1 / 3, 0.5)
    # ROUGE-L F = 2 LCS / (m + n): "a ... the" against the first seed.
    assert r1.similarity_to_seeds == pytest.approx(4 / 13)
    assert r2.similarity_to_seeds == pytest.approx(4 / 15)
    assert (r1.similarity_to_previous, r2.similarity_to_previous) == (None, pytest.approx(14 / 16))
    assert (r1.novel_bigram_share, r2.novel_bigram_share) == (1.0, 2 / 8)
    assert (r1.judge_mean, r2.judge_mean) == (3.0, 3.0)
    # The seeds give (write, poem) and (list, fruits); (describe, rainy) is new once.
    assert (r1.verb_noun_growth, r2.verb_noun_growth) == (1, 0)


def _unit(*xs: float) -> np.ndarray:
    v = np.array(xs, dtype=np.float32)
    return v / np.linalg.norm(v)


def test_verb_noun_and_embedding_diversity_from_stored_rows(database: Database) -> None:
    """Known answers: three accepted tasks over two iterations, vectors stored by hand."""
    run_id = constructed_run(database)
    with database.transaction() as s:
        run = s.get(Run, run_id)
        assert run is not None
        f = Factory(s)
        g = _generation(f, run, 2, "instructions", (0, 0))
        t6 = _task(f, run, 2, "Write a poem about the moon.", (g,))
        tasks = list(s.scalars(select(Task).where(Task.run_id == run_id).order_by(Task.id)))
        t1, t5 = (t.id for t in tasks if t.status == "accepted" and t.id != t6)
        rejected = next(t.id for t in tasks if t.status == "rejected")
        # t1 and t5: cosine 0.9 (distance 0.1, one cluster at radius 0.2); t6 orthogonal.
        vectors = {t1: _unit(1, 0, 0), t5: _unit(0.9, 0.19**0.5, 0), t6: _unit(0, 0, 1)}
        store_task_embeddings(s, "m@1/e1", vectors.items())
        store_task_embeddings(s, "m@1/e1", [(rejected, _unit(0, 1, 0))])  # not counted
        store_task_embeddings(s, "other@2/e1", [(t1, _unit(0, 1, 0))])  # the minority model
    with database.sessions() as s:
        report = build_run_report(s, run_id)
    d = report.diversity
    assert (d.embedding_model, d.embedded, d.embedding_cluster_radius) == ("m@1/e1", 3, 0.2)
    # Pair distances 0.1, 1, 1: mean 0.7. Clusters: {t1, t5}, {t6}.
    assert d.embedding_mean_distance == pytest.approx(2.1 / 3, abs=1e-6)
    assert d.embedding_clusters == 2
    assert (d.verb_noun_parsed, d.verb_noun_pairs, d.distinct_verbs) == (3, 2, 2)
    assert d.top20_verb_share == 1.0 and d.top_verbs == [("describe", 2), ("write", 1)]
    first, second = report.iterations
    assert (first.diversity.embedded, first.diversity.embedding_mean_distance) == (1, None)
    assert first.diversity.embedding_clusters == 1
    assert second.diversity.embedded == 2 and second.diversity.embedding_clusters == 2
    assert second.diversity.embedding_mean_distance == pytest.approx(1.0, abs=1e-6)
    # (write, poem) is a seed's pair and (describe, rainy) was seen in iteration 1.
    assert second.collapse.verb_noun_growth == 0


def test_judge_audit_and_refusals(database: Database) -> None:
    run_id = constructed_run(database)
    probe = {
        "probe_set": "refusal_probes.v1",
        "probe_set_sha256": "f" * 64,
        "over_refusal_rate": 0.25,
        "under_refusal_rate": 0.0,
        "benign_count": 4,
        "benign_refused": 1,
        "harmful_count": 2,
        "harmful_answered": 0,
        "patterns_version": "2",
        "results": [],
    }
    with database.transaction() as s:
        add_event(s, run_id, "refusal_probe", "probe", probe)
    with database.sessions() as s:
        report = build_run_report(s, run_id)
    judge = report.judge
    assert judge is not None
    assert (judge.scored, judge.parse_failures, judge.parse_failure_rate) == (4, 1, 0.25)
    assert judge.length_spearman == pytest.approx(1.0)
    assert (judge.rubric_versions, judge.rubric_sha256) == (["v2"], ["abc"])
    lc = judge.length_controlled
    assert lc is not None
    # Scores 2, 3, 4 at 100, 200, 300 characters: slope 0.01 a character, all become 3.
    assert lc.slope_per_1k_chars == pytest.approx(10.0)
    assert lc.mean_abs_change == pytest.approx(2 / 3)
    assert lc.changed_share == pytest.approx(2 / 3)
    refusals = report.refusals
    assert (refusals.outputs_scored, refusals.outputs_refused) == (4, 1)
    assert refusals.refused_share == 0.25
    assert refusals.probe is not None and refusals.probe.over_refusal_rate == 0.25


def test_a_run_without_judge_has_no_audit(database: Database) -> None:
    with database.transaction() as s:
        run_id = Factory(s).run().id
    with database.sessions() as s:
        report = build_run_report(s, run_id)
    assert report.judge is None and report.iterations == []
    assert report.yield_.prompt_tokens_per_accepted is None
    assert report.refusals.refused_share is None and report.refusals.probe is None


def test_stop_rule_pauses_the_run_with_its_reason(database: Database) -> None:
    # The scripted reply repeats an instruction, so every iteration has a near-duplicate.
    config = RunConfig.model_validate(
        {
            "seed_set": "default",
            "target_tasks": 1000,
            "bootstrap": {"prompts_per_iteration": 1},
            "stop_rules": {"near_duplicate_rate_above": 0.1, "for_iterations": 2},
        }
    )
    run_id = queued_run(database, config)
    worker = Worker(
        settings=Settings(),
        database=database,
        backend_factory=lambda _c, _s: ScriptedBackend(reply),
    )
    worker.run_forever(once=True)
    with database.sessions() as s:
        run = s.get(Run, run_id)
        assert run is not None and run.status == "paused" and run.iteration == 2
        event = next(e for e in recent_events(s, run_id) if e.kind == "stop_rule")
        report = build_run_report(s, run_id)
    assert event.message.startswith("stop rule v1: near_duplicate_rate above 0.1 in iterations 1-2")
    assert report.stop_reason == event.message
    assert sorted(event.data["radars"]) == ["1", "2"]


def test_rest_report_is_the_computed_report(db_url: str, tmp_path: Path) -> None:
    with api_harness(db_url, tmp_path) as api:
        run_id = constructed_run(api.database)
        got = api.client.get(f"/v1/runs/{run_id}/report", headers=api.headers("read"))
        missing = api.client.get("/v1/runs/999999/report", headers=api.headers("read"))
        anonymous = api.client.get(f"/v1/runs/{run_id}/report")
        with api.database.sessions() as s:
            computed = build_run_report(s, run_id)
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["yield"]["accepted"] == 2 and body["yield"]["prompt_tokens_per_accepted"] == 210
    assert [it["iteration"] for it in body["iterations"]] == [1, 2]
    assert body["iterations"][1]["collapse"]["machine_share_in_prompts"] == 0.5
    assert body["judge"]["parse_failure_rate"] == 0.25
    assert (missing.status_code, anonymous.status_code) == (404, 401)
    assert RunReport.model_validate(body) == computed  # the document reads back whole


def test_export_puts_the_report_in_manifest_and_card(database: Database, tmp_path: Path) -> None:
    run_id = constructed_run(database)
    spec = ExportSpec(validation_ratio=0)
    first = create_version(database, dataset="rep", spec=spec, datasets_dir=tmp_path)
    second = create_version(database, dataset="rep", spec=spec, datasets_dir=tmp_path)
    v1, v2 = (tmp_path / "rep" / v for v in ("v1", "v2"))
    assert first.status == second.status == "ready"
    manifest = json.loads((v1 / "manifest.json").read_text())
    (report,) = manifest["run_reports"]["runs"]
    assert (report["run_id"], report["yield"]["accepted"]) == (run_id, 2)
    assert report["judge"]["parse_failure_rate"] == 0.25
    plots = manifest["run_reports"]["plots"]
    assert plots == [YIELD_PNG, DIVERSITY_PNG, VERBS_PNG]
    for name in plots:
        data = (v1 / name).read_bytes()
        assert data.startswith(b"\x89PNG") and data == (v2 / name).read_bytes()
        assert manifest["files"][name]["sha256"] == hashlib.sha256(data).hexdigest()
    card = (v1 / "README.md").read_text()
    assert "## Run reports" in card
    assert f"| {run_id} | near_duplicate | near_duplicates | 2 | 75 | 30 |" in card
    assert f"| {run_id} | 2 | 1 | 1 | 0.500 | 0.250 |" in card
    assert f"![report_diversity]({DIVERSITY_PNG})" in card
    assert f"![report_top_verbs]({VERBS_PNG})" in card
    # Verb-noun pairs, new pairs, top-20 share per iteration and for the run (no vectors).
    assert f"| {run_id} | 1 | 1 | 1 | 1 | - | - |" in card
    assert f"| {run_id} | 2 | 1 | 0 | 1 | - | - |" in card
    assert f"| {run_id} | all | 1 | - | 1 | - | - |" in card


def test_stop_rule_check_reads_the_last_iterations_alone(database: Database) -> None:
    run_id = constructed_run(database)
    rules = StopRules(near_duplicate_rate_above=0.4, for_iterations=1)
    with database.sessions() as s:
        found = check_stop_rules(s, run_id, rules)
        full = build_run_report(s, run_id)
        assert check_stop_rules(s, run_id, StopRules(near_duplicate_rate_above=0.5)) is None
    assert found is not None
    why, evidence = found
    assert why == "stop rule v1: near_duplicate_rate above 0.4 in iterations 2-2 (0.500)"
    # Computed from iteration 2's calls and scores only, it equals the full report's radar.
    assert evidence["radars"] == {"2": full.iterations[1].collapse.model_dump()}
