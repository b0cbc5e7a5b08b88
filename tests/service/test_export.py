"""Dataset export: layout, byte reproducibility, crash safety, decontamination, stable splits.

Every test runs on SQLite and PostgreSQL (the `database` fixture).
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from dataformats import jsonl
from filters.decontamination import Decontaminator, load_eval_jsonl
from service.errors import Conflict, InvalidInput, LeaseLost, NotFound
from service.export import (
    ExportSpec,
    build_version,
    create_version,
    diff_versions,
    get_version,
    list_datasets,
    start_version,
    version_info,
)
from service.export import writers as export_writers
from service.seed_files import parse_seed_file
from service.storage.datasets import import_eval_set, list_eval_sets
from service.storage.db import Database
from service.storage.export_jobs import claim_export, fail_version, finish_version
from service.storage.models import (
    DatasetItem,
    DatasetVersion,
    Generation,
    Instance,
    Run,
    Score,
    SeedSet,
    Task,
    utcnow,
)
from service.storage.seeds import import_seed_set
from tests.conftest import shared_data

DATA_FILES = [
    f"{split}.{fmt}.{ext}"
    for split in ("train", "validation")
    for fmt in ("messages", "alpaca")
    for ext in ("jsonl", "parquet")
]
_ids = itertools.count(1)


class Factory:
    """Builds seed sets, runs, generations, tasks, instances and scores with the ORM."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.seed_set = SeedSet(
            name=f"factory-{next(_ids)}",
            content_hash="a" * 64,
            source_format="self_instruct",
            task_count=0,
        )
        session.add(self.seed_set)
        session.flush()

    def run(self) -> Run:
        run = Run(
            seed_set_id=self.seed_set.id,
            config={"filters": {"rouge_l": 0.7}},
            config_hash=hashlib.sha256(str(next(_ids)).encode()).hexdigest(),
            policy_version="policy-1",
            target_tasks=10,
        )
        self.session.add(run)
        self.session.flush()
        return run

    def generation(self, run: Run, *, model: str = "smollm2-135m") -> Generation:
        gen = Generation(
            id=f"gen{next(_ids)}",
            run_id=run.id,
            stage="instructions",
            backend="transformers",
            model_name=model,
            model_path="/models/x",
            model_hash="b" * 64,
            engine="transformers",
            engine_version="4.56.0",
            template_name="instructions",
            template_version="1",
            template_sha256="c" * 64,
            prompt="p",
            prompt_sha256="d" * 64,
            chat_wrapped=False,
            few_shot_ids=[],
            sampling={"temperature": 0.7},
            completion="c",
            finish_reason="stop",
            prompt_tokens=1,
            completion_tokens=1,
            latency_s=0.1,
            retry_log=[],
        )
        self.session.add(gen)
        self.session.flush()
        return gen

    def task(
        self,
        instruction: str,
        instances: Iterable[tuple[str, str]] = (("", "An answer."),),
        *,
        run: Run | None = None,
        status: str = "accepted",
        is_classification: bool = False,
        generation: Generation | None = None,
        scores: Iterable[tuple[int | None, str, float | None]] = (),
    ) -> Task:
        """A task; scores are (instance idx or None for the task, scorer, value)."""
        task = Task(
            origin="machine" if run is not None else "seed",
            seed_set_id=self.seed_set.id,
            run_id=run.id if run is not None else None,
            generation_id=generation.id if generation is not None else None,
            instruction=instruction,
            is_classification=is_classification,
            status=status,
        )
        self.session.add(task)
        self.session.flush()
        rows = [
            Instance(task_id=task.id, idx=i, input=inp, output=out)
            for i, (inp, out) in enumerate(instances)
        ]
        self.session.add_all(rows)
        self.session.flush()
        for idx, scorer, value in scores:
            self.session.add(
                Score(
                    task_id=task.id,
                    instance_id=rows[idx].id if idx is not None else None,
                    scorer=scorer,
                    scorer_version="1",
                    value=value,
                    details={},
                )
            )
        self.session.flush()
        return task


def import_seeds(database: Database, name: str = "default") -> None:
    path = Path(__file__).resolve().parents[2] / "service" / "seeds" / "default_seed_tasks.jsonl"
    with database.transaction() as s:
        import_seed_set(s, name=name, seed_file=parse_seed_file(path.read_bytes()))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [record for _, record in jsonl.read_jsonl(path)]


def exported_task_ids(version_dir: Path) -> set[int]:
    return {
        int(row["task_id"])
        for split in ("train", "validation")
        for row in read_jsonl(version_dir / f"{split}.messages.jsonl")
    }


def test_real_seeds_export_in_the_fixed_layout(database: Database, tmp_path: Path) -> None:
    import_seeds(database)
    info = create_version(database, dataset="seeds", spec=ExportSpec(), datasets_dir=tmp_path)
    assert (info.version, info.status) == (1, "ready")
    vdir = tmp_path / "seeds" / "v1"
    assert info.path == vdir
    assert sorted(p.name for p in vdir.iterdir()) == sorted(
        [*DATA_FILES, "README.md", "manifest.json"]
    )
    manifest = json.loads((vdir / "manifest.json").read_text())
    assert manifest["dataset"] == "seeds" and manifest["version"] == 1
    assert manifest["content_hash"] == info.content_hash
    assert set(manifest["files"]) == {*DATA_FILES, "README.md"}
    for name, entry in manifest["files"].items():
        data = (vdir / name).read_bytes()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["bytes"] == len(data)
    lines = "".join(f"{n} {manifest['files'][n]['sha256']}\n" for n in sorted(DATA_FILES))
    assert info.content_hash == hashlib.sha256(lines.encode()).hexdigest()

    rows = read_jsonl(vdir / "train.messages.jsonl") + read_jsonl(
        vdir / "validation.messages.jsonl"
    )
    counts = manifest["counts"]
    assert (
        len(rows)
        == counts["examples"]
        == manifest["files"]["train.messages.jsonl"]["rows"]
        + manifest["files"]["validation.messages.jsonl"]["rows"]
    )
    assert counts["by_origin"] == {"seed": counts["tasks"]}
    with database.sessions() as s:
        assert counts["tasks"] == s.scalar(select(func.count()).select_from(Task))
        items = s.scalar(
            select(func.count())
            .select_from(DatasetItem)
            .where(DatasetItem.dataset_version_id == info.id)
        )
    assert items == len(rows)
    # A multi-turn seed exports its whole conversation as one example.
    multi = [r for r in rows if len(r["messages"]) > 2]
    assert multi and all(r["messages"][-1]["role"] == "assistant" for r in multi)
    single = next(r for r in rows if len(r["messages"]) == 2)
    assert [m["role"] for m in single["messages"]] == ["user", "assistant"]
    assert set(single) == {"id", "task_id", "task_type", "messages"}
    alpaca = read_jsonl(vdir / "train.alpaca.jsonl")[0]
    assert set(alpaca) == {"id", "task_id", "task_type", "instruction", "input", "output"}
    readme = (vdir / "README.md").read_text()
    assert readme.startswith("---\n") and "configs:" in readme and info.content_hash in readme


def test_user_message_joins_instruction_and_input(database: Database, tmp_path: Path) -> None:
    with database.transaction() as s:
        f = Factory(s)
        run = f.run()
        task = f.task("Translate to French.", [("Good morning", "Bonjour"), ("", "Salut")], run=run)
    create_version(
        database, dataset="d", spec=ExportSpec(validation_ratio=0), datasets_dir=tmp_path
    )
    rows = read_jsonl(tmp_path / "d" / "v1" / "train.messages.jsonl")
    assert rows == [
        {
            "id": f"{task.id}:0",
            "task_id": str(task.id),
            "task_type": "generation",
            "messages": [
                {"role": "user", "content": "Translate to French.\n\nGood morning"},
                {"role": "assistant", "content": "Bonjour"},
            ],
        },
        {
            "id": f"{task.id}:1",
            "task_id": str(task.id),
            "task_type": "generation",
            "messages": [
                {"role": "user", "content": "Translate to French."},
                {"role": "assistant", "content": "Salut"},
            ],
        },
    ]
    assert read_jsonl(tmp_path / "d" / "v1" / "validation.messages.jsonl") == []
    alpaca = read_jsonl(tmp_path / "d" / "v1" / "train.alpaca.jsonl")
    assert (
        alpaca[0]["instruction"] == "Translate to French." and alpaca[0]["input"] == "Good morning"
    )


def test_same_spec_gives_the_same_bytes(database: Database, tmp_path: Path) -> None:
    import_seeds(database)
    with database.transaction() as s:
        f = Factory(s)
        run = f.run()
        gen = f.generation(run)
        for i in range(30):
            f.task(
                f"Machine task {i}: list {i} prime numbers.",
                run=run,
                generation=gen,
                scores=[(None, "quality", i / 30)],
            )
    spec = ExportSpec(min_scores={"quality": 0.2}, validation_ratio=0.3, split_seed=7)
    first = create_version(database, dataset="r", spec=spec, datasets_dir=tmp_path)
    second = create_version(database, dataset="r", spec=spec, datasets_dir=tmp_path)
    assert second.version == 2
    assert first.content_hash == second.content_hash
    for name in DATA_FILES:
        assert (tmp_path / "r" / "v1" / name).read_bytes() == (
            tmp_path / "r" / "v2" / name
        ).read_bytes()
    m1, m2 = (json.loads((tmp_path / "r" / v / "manifest.json").read_text()) for v in ("v1", "v2"))
    for key in ("spec_hash", "counts", "score_distributions", "lineage"):
        assert m1[key] == m2[key]
    assert m1["lineage"]["models"][0]["model_name"] == "smollm2-135m"
    assert m1["lineage"]["runs"][0]["policy_version"] == "policy-1"
    assert m1["score_distributions"]["quality"]["count"] == m1["counts"]["by_origin"]["machine"]
    assert m1["counts"]["rejected"]["by_reason"] == {"min_score:quality": 6}
    # A different split seed is another spec and moves tasks.
    other = create_version(
        database, dataset="r", spec=spec.model_copy(update={"split_seed": 8}), datasets_dir=tmp_path
    )
    assert other.content_hash != first.content_hash


def test_crash_mid_write_leaves_no_version(
    database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import_seeds(database)
    real_write = export_writers.JsonlSink.write
    calls = itertools.count()

    def failing_write(self: export_writers.JsonlSink, record: dict[str, Any]) -> None:
        if next(calls) == 40:
            raise OSError("disk full (simulated)")
        real_write(self, record)

    monkeypatch.setattr(export_writers.JsonlSink, "write", failing_write)
    with pytest.raises(OSError, match="simulated"):
        create_version(database, dataset="c", spec=ExportSpec(), datasets_dir=tmp_path)
    assert list((tmp_path / "c").iterdir()) == []  # no v1, no temporary directory
    with database.sessions() as s:
        row = s.scalar(select(DatasetVersion))
        assert row is not None and (row.version, row.status) == (1, "failed")
        assert "simulated" in (row.error or "")
        assert s.scalar(select(func.count()).select_from(DatasetItem)) == 0
    monkeypatch.setattr(export_writers.JsonlSink, "write", real_write)
    info = create_version(database, dataset="c", spec=ExportSpec(), datasets_dir=tmp_path)
    assert (info.version, info.status) == (2, "ready")
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == ["v2"]


def test_crash_while_hashing_leaves_no_version(
    database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import_seeds(database)

    def broken(path: Path) -> str:
        raise RuntimeError("crash after the data files")

    monkeypatch.setattr(export_writers, "sha256_file", broken)
    with pytest.raises(RuntimeError):
        create_version(database, dataset="c", spec=ExportSpec(), datasets_dir=tmp_path)
    assert list((tmp_path / "c").iterdir()) == []
    with database.sessions() as s:
        assert s.scalar(select(DatasetVersion.status)) == "failed"


def test_a_dead_builders_version_is_rebuilt_by_the_next_claimer(
    database: Database, tmp_path: Path
) -> None:
    import_seeds(database)
    info = start_version(database, dataset="k", spec=ExportSpec(), owner="dead", lease_seconds=5)
    assert info.status == "building" and info.lease_owner == "dead"
    # What a builder killed mid-export leaves: a temporary directory, or a renamed vN whose
    # commit never came.
    (tmp_path / "k" / ".tmp-v1-x").mkdir(parents=True)
    (tmp_path / "k" / "v1").mkdir()
    (tmp_path / "k" / ".tmp-v11-other").mkdir()  # another version's: not touched
    with database.transaction() as s:
        assert claim_export(s, owner="live", lease_seconds=60) is None  # the lease still holds
        s.execute(update(DatasetVersion).values(lease_expires_at=utcnow() - timedelta(seconds=1)))
    with database.sessions() as s:
        shown = version_info(get_version(s, dataset="k", version=1), "k")
        assert (shown.status, shown.lease_owner) == ("queued", None)  # no live lease
    with database.transaction() as s:
        job = claim_export(s, owner="live", lease_seconds=60)
    assert job is not None and (job.version_id, job.dataset, job.version) == (info.id, "k", 1)
    with pytest.raises(LeaseLost):  # the dead builder can no longer build it
        build_version(database, version_id=info.id, datasets_dir=tmp_path, owner="dead")
    built = build_version(database, version_id=info.id, datasets_dir=tmp_path, owner="live")
    assert (built.version, built.status, built.lease_owner) == (1, "ready", None)
    assert sorted(p.name for p in (tmp_path / "k").iterdir()) == [".tmp-v11-other", "v1"]
    with database.transaction() as s:  # a ready version is never claimed again
        assert claim_export(s, owner="other", lease_seconds=60) is None


def test_a_stale_builder_cannot_fail_or_publish_a_retaken_version(
    database: Database, tmp_path: Path
) -> None:
    import_seeds(database)
    info = start_version(database, dataset="s", spec=ExportSpec(), owner="old", lease_seconds=5)
    with database.transaction() as s:
        s.execute(update(DatasetVersion).values(lease_expires_at=utcnow() - timedelta(seconds=1)))
        assert claim_export(s, owner="new", lease_seconds=60) is not None
    with database.transaction() as s:
        assert not fail_version(s, version_id=info.id, owner="old", error="late")
        with pytest.raises(LeaseLost):
            finish_version(
                s, version_id=info.id, owner="old", content_hash="x", counts={}, path="p"
            )
    with database.sessions() as s:
        row = s.get(DatasetVersion, info.id)
        assert row is not None and (row.status, row.lease_owner) == ("building", "new")


def _eval_items(n: int) -> list[Any]:
    data = shared_data("self_instruct_user_oriented_instructions.jsonl").read_bytes()
    return load_eval_jsonl(b"\n".join(data.split(b"\n")[:n]))


def test_decontamination_drops_exactly_the_matching_tasks(
    database: Database, tmp_path: Path
) -> None:
    items = _eval_items(40)
    with database.transaction() as s:
        import_eval_set(s, name="user-oriented", items=items)
        f = Factory(s)
        run = f.run()
        leaked = [  # copies of eval items, lightly edited
            f.task(item.instruction + " Please.", [(item.inputs[0], item.outputs[0])], run=run).id
            for item in items[:5]
        ]
        leaked.append(
            f.task("Reply briefly.", [(items[7].inputs[0], items[7].outputs[0])], run=run).id
        )
        clean = [
            f.task(f"Name {k} animals that live in the {place}.", [("", "cats")], run=run).id
            for k, place in enumerate(["sea", "desert", "forest", "arctic", "city", "jungle"])
        ]
    info = create_version(
        database, dataset="dc", spec=ExportSpec(eval_sets=["user-oriented"]), datasets_dir=tmp_path
    )
    vdir = tmp_path / "dc" / "v1"
    assert exported_task_ids(vdir) == set(clean)
    assert info.counts["decontaminated"] == {
        "total": len(leaked),
        "by_eval_set": {"user-oriented": len(leaked)},
    }
    manifest = json.loads((vdir / "manifest.json").read_text())
    dropped = manifest["lineage"]["decontamination"]["dropped"]
    assert sorted(d["task_id"] for d in dropped) == sorted(leaked)
    assert {d["nearest_id"] for d in dropped[:5]} == {item.id for item in items[:5]}
    # The library itself, run by hand over the same tasks, agrees task by task.
    checker = Decontaminator(items, threshold=0.7)
    with database.sessions() as s:
        for task in s.scalars(select(Task)):
            pairs = [
                (i.input, i.output)
                for i in s.scalars(select(Instance).where(Instance.task_id == task.id))
            ]
            assert checker.check_task(task.instruction, pairs).accepted == (task.id in clean)
    # Without the eval set everything is exported.
    plain = create_version(database, dataset="dc", spec=ExportSpec(), datasets_dir=tmp_path)
    assert plain.counts["tasks"] == len(leaked) + len(clean)


def test_eval_set_import_is_idempotent(database: Database) -> None:
    items = _eval_items(10)
    with database.transaction() as s:
        first = import_eval_set(s, name="e", items=items)
    with database.transaction() as s:
        again = import_eval_set(s, name="e", items=items)
        assert again.id == first.id and again.item_count == 10
        with pytest.raises(Conflict):
            import_eval_set(s, name="e", items=items[:3])
        assert [e.name for e in list_eval_sets(s)] == ["e"]
        with pytest.raises(InvalidInput):
            import_eval_set(s, name="empty", items=[])


def test_split_is_stable_when_tasks_are_added(database: Database, tmp_path: Path) -> None:
    with database.transaction() as s:
        f = Factory(s)
        run = f.run()
        for i in range(200):
            f.task(f"Old task {i}: explain idea number {i}.", run=run)
    spec = ExportSpec(validation_ratio=0.2)
    v1 = create_version(database, dataset="s", spec=spec, datasets_dir=tmp_path)
    with database.transaction() as s:
        f = Factory(s)
        run = f.run()
        for i in range(300):
            f.task(f"New task {i}: summarise text number {i}.", run=run)
    v2 = create_version(database, dataset="s", spec=spec, datasets_dir=tmp_path)

    def splits(version: int) -> dict[str, str]:
        out = {}
        for split in ("train", "validation"):
            for row in read_jsonl(tmp_path / "s" / f"v{version}" / f"{split}.messages.jsonl"):
                out[row["task_id"]] = split
        return out

    old, new = splits(1), splits(2)
    assert len(old) == 200 and len(new) == 500
    assert all(new[task] == split for task, split in old.items())
    assert 60 <= v2.counts["by_split"]["validation"]["tasks"] <= 140  # about 20% of 500
    assert v1.counts["by_split"]["validation"]["tasks"] > 0
    with database.sessions() as s:
        diff = diff_versions(s, dataset="s", old=1, new=2)
    assert diff.added_total == 300 and diff.removed_total == 0 and diff.unchanged_total == 200
    assert {str(t) for t in diff.added} == set(new) - set(old)


def test_sources_scores_caps_and_statuses(database: Database, tmp_path: Path) -> None:
    import_seeds(database, "seeds-a")
    with database.transaction() as s:
        f = Factory(s)
        run_a, run_b = f.run(), f.run()
        keep = f.task("Kept: high score.", run=run_a, scores=[(None, "judge", 0.9)])
        f.task("Dropped: low score.", run=run_a, scores=[(None, "judge", 0.1)])
        f.task("Dropped: never scored.", run=run_a)
        f.task("Dropped: rejected.", run=run_a, status="rejected", scores=[(None, "judge", 1.0)])
        mixed = f.task(
            "Kept with one instance.",
            [("a", "x"), ("b", "y")],
            run=run_a,
            scores=[(0, "judge", 0.95), (1, "judge", 0.2)],
        )
        cls = [
            f.task(f"Classify {i}.", run=run_a, is_classification=True, scores=[(None, "judge", 1)])
            for i in range(3)
        ]
        other_run = f.task("Other run.", run=run_b, scores=[(None, "judge", 1.0)])
        f.task("A human seed of the runs' seed set, never scored.")
    spec = ExportSpec(
        runs=[run_a.id],
        include_seeds=False,
        min_scores={"judge": 0.5},
        max_per_type={"classification": 2},
        validation_ratio=0,
    )
    info = create_version(database, dataset="m", spec=spec, datasets_dir=tmp_path)
    vdir = tmp_path / "m" / "v1"
    assert exported_task_ids(vdir) == {keep.id, mixed.id, cls[0].id, cls[1].id}
    assert other_run.id not in exported_task_ids(vdir)
    rows = read_jsonl(vdir / "train.alpaca.jsonl")
    assert [r["input"] for r in rows if r["task_id"] == str(mixed.id)] == ["a"]
    assert info.counts["rejected"]["by_reason"] == {
        "cap:classification": 1,
        "min_score:judge": 1,
        "missing_score:judge": 1,
    }
    assert info.counts["by_task_type"] == {"classification": 2, "generation": 2}
    # Seeds of the run's seed set come along when asked for, exempt from missing scores.
    with_seeds = create_version(
        database,
        dataset="m",
        spec=spec.model_copy(update={"include_seeds": True}),
        datasets_dir=tmp_path,
    )
    assert with_seeds.counts["by_origin"]["machine"] == 4
    assert with_seeds.counts["by_origin"]["seed"] == 1
    only_seeds = create_version(
        database,
        dataset="m2",
        spec=ExportSpec(seed_sets=["seeds-a"], runs=[]),
        datasets_dir=tmp_path,
    )
    assert only_seeds.counts["by_origin"] == {"seed": 69}


def test_bad_specs_are_refused_before_a_version_exists(database: Database, tmp_path: Path) -> None:
    for spec, error in [
        (ExportSpec(eval_sets=["nope"]), NotFound),
        (ExportSpec(seed_sets=["nope"]), NotFound),
        (ExportSpec(runs=[999]), NotFound),
    ]:
        with pytest.raises(error):
            create_version(database, dataset="b", spec=spec, datasets_dir=tmp_path)
    with pytest.raises(InvalidInput):
        create_version(database, dataset="../etc", spec=ExportSpec(), datasets_dir=tmp_path)
    with pytest.raises(ValueError):
        ExportSpec(formats=["parquet"])
    with pytest.raises(ValueError):
        ExportSpec(max_per_type={"poetry": 3})
    with database.sessions() as s:
        assert s.scalar(select(func.count()).select_from(DatasetVersion)) == 0
        assert list_datasets(s) == []


def test_formats_subset_and_listing(database: Database, tmp_path: Path) -> None:
    import_seeds(database)
    info = create_version(
        database, dataset="f", spec=ExportSpec(formats=["messages"]), datasets_dir=tmp_path
    )
    names = sorted(p.name for p in info.path.iterdir())  # type: ignore[union-attr]
    assert names == [
        "README.md",
        "manifest.json",
        "train.messages.jsonl",
        "validation.messages.jsonl",
    ]
    with database.sessions() as s:
        [summary] = list_datasets(s)
    assert (summary.name, summary.versions, summary.latest_ready) == ("f", 1, 1)


def test_spec_file_and_hash(tmp_path: Path) -> None:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps({"runs": [3, 1], "validation_ratio": 0.25}))
    spec = ExportSpec.from_file(path)
    assert spec.canonical()["runs"] == [1, 3]
    # Order of names does not change what is selected, so it does not change the hash.
    assert spec.spec_hash() == ExportSpec(runs=[1, 3], validation_ratio=0.25).spec_hash()
    assert spec.spec_hash() != ExportSpec(runs=[1, 3]).spec_hash()
    path.write_text(json.dumps({"validation_ratio": 1.5, "bogus": True}))
    with pytest.raises(InvalidInput, match="validation_ratio") as err:
        ExportSpec.from_file(path)
    assert "bogus" in str(err.value)
    with pytest.raises(InvalidInput):
        ExportSpec.from_file(tmp_path / "missing.json")
