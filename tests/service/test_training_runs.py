"""`instructforge train`'s database side: NAME@VERSION to a ready version, and the training
run recorded against it. Runs on SQLite and PostgreSQL (the `database` fixture)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from service.errors import InvalidInput, NotFound
from service.export import ExportSpec, create_version, start_version
from service.storage.db import Database
from service.storage.models import TrainingRun
from service.training import parse_dataset_ref, record_training_run, resolve_version
from tests.service.test_export import import_seeds
from trainer.loop import TrainResult


@pytest.mark.parametrize(
    ("ref", "parsed"),
    [("d@3", ("d", 3)), ("d@v3", ("d", 3)), ("d", ("d", None)), ("d@latest", ("d", None))],
)
def test_dataset_refs(ref: str, parsed: tuple[str, int | None]) -> None:
    assert parse_dataset_ref(ref) == parsed


@pytest.mark.parametrize("ref", ["@1", "d@x", "d@-1", "d@1.5"])
def test_bad_dataset_refs(ref: str) -> None:
    with pytest.raises(InvalidInput):
        parse_dataset_ref(ref)


def test_resolve_picks_ready_versions_only(database: Database, tmp_path: Path) -> None:
    import_seeds(database)
    with pytest.raises(NotFound):
        resolve_version(database, "d")
    v1 = create_version(database, dataset="d", spec=ExportSpec(), datasets_dir=tmp_path)
    v2 = create_version(database, dataset="d", spec=ExportSpec(), datasets_dir=tmp_path)
    queued = start_version(database, dataset="d", spec=ExportSpec())  # v3, never built
    assert resolve_version(database, "d") == (v2.id, v2.path)
    assert resolve_version(database, "d@latest") == (v2.id, v2.path)
    assert resolve_version(database, "d@1") == (v1.id, v1.path)
    for missing in (f"d@{queued.version}", "d@9", "other", "other@1"):
        with pytest.raises(NotFound):
            resolve_version(database, missing)


def test_a_training_run_is_linked_to_its_version(database: Database, tmp_path: Path) -> None:
    import_seeds(database)
    version = create_version(database, dataset="d", spec=ExportSpec(), datasets_dir=tmp_path)
    out = tmp_path / "model"
    out.mkdir()
    (out / "training_manifest.json").write_bytes(b'{"x": 1}\n')
    manifest = {
        "base_model": {"name": "smollm2", "hash": "h" * 64},
        "config": {"lr": 1e-4},
        "config_hash": "c" * 64,
    }
    result = TrainResult(output_dir=out, manifest=manifest, metrics={"loss": 1.25, "at": out})
    run_id = record_training_run(database, dataset_version_id=version.id, result=result)
    with database.sessions() as s:
        row = s.get(TrainingRun, run_id)
        assert row is not None
        assert (row.dataset_version_id, row.status, row.output_dir) == (
            version.id,
            "completed",
            str(out),
        )
        assert (row.base_model, row.base_model_hash, row.config_hash) == (
            "smollm2",
            "h" * 64,
            "c" * 64,
        )
        assert row.config == {"lr": 1e-4} and row.finished_at is not None
        assert row.metrics == {"loss": 1.25, "at": str(out)}  # stored as JSON
        assert row.manifest_sha256 == hashlib.sha256(b'{"x": 1}\n').hexdigest()
