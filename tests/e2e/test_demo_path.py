"""The demo's path as a test: real embedded model, REST, worker, export, a short SFT run."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import MODEL_CACHE, REPO_ROOT
from tests.e2e.export_check import export_junk

pytestmark = [pytest.mark.model, pytest.mark.slow]


def test_demo_end_to_end(tmp_path: Path, embedded_model_dir: Path) -> None:
    env = {
        **os.environ,
        "INSTRUCTFORGE_DATABASE_URL": f"sqlite:///{tmp_path / 'demo.db'}",
        "INSTRUCTFORGE_DATA_DIR": str(tmp_path),
        "INSTRUCTFORGE_DATASETS_DIR": str(tmp_path / "datasets"),
        "INSTRUCTFORGE_MODELS_DIR": str(tmp_path / "models"),
        "INSTRUCTFORGE_MODEL_CACHE_DIR": str(MODEL_CACHE),
        "INSTRUCTFORGE_DEMO_TARGET": "3",
        "INSTRUCTFORGE_DEMO_TRAIN_STEPS": "2",
        "INSTRUCTFORGE_DEMO_BACKEND": os.environ.get("INSTRUCTFORGE_DEMO_BACKEND", "transformers"),
        "HF_HUB_OFFLINE": "1",
    }
    # Its own process group: on a timeout the demo's API, worker and trainer die with it
    # (subprocess.run would kill the demo alone and leave them running on the suite's cores).
    demo = subprocess.Popen(
        [sys.executable, "-m", "service.demo"],
        env=env,
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = demo.communicate(timeout=1500)
    except BaseException:
        os.killpg(demo.pid, signal.SIGKILL)  # not reaped yet: its pid still names the group
        demo.wait()
        raise
    assert demo.returncode == 0, stdout[-4000:] + stderr[-4000:]

    vdir = tmp_path / "datasets" / "demo" / "v1"
    manifest = json.loads((vdir / "manifest.json").read_text())
    db = sqlite3.connect(tmp_path / "demo.db")
    # Every machine example traces to the generation call that wrote its instruction.
    rows = [json.loads(line) for line in (vdir / "train.messages.jsonl").read_text().splitlines()]
    rows += [
        json.loads(line) for line in (vdir / "validation.messages.jsonl").read_text().splitlines()
    ]
    task_ids = {int(r["task_id"]) for r in rows}
    lineage = db.execute(
        "SELECT task_id, origin, generation_id, template_sha256, model_hash "
        "FROM v_dataset_lineage WHERE dataset = 'demo' AND version = 1"
    ).fetchall()
    assert {r[0] for r in lineage} == task_ids
    machine = [r for r in lineage if r[1] == "machine"]
    assert machine, "the run's tasks did not reach the dataset"
    assert all(r[2] and r[3] and r[4] for r in machine)
    # The demo runs the embedding rule, so every accepted machine task has a stored vector and
    # the report's embedding diversity is computed, not "no stored vectors".
    unembedded = db.execute(
        "SELECT COUNT(*) FROM tasks t WHERE t.origin = 'machine' AND t.status = 'accepted' "
        "AND NOT EXISTS (SELECT 1 FROM task_embeddings e WHERE e.task_id = t.id)"
    ).fetchone()[0]
    assert unembedded == 0
    assert "no stored vectors" not in stdout
    # Issue 15: no list-number residue, echoed output or truncated single instance, by plain
    # checks independent of the rules that should have kept them out.
    junk = export_junk(vdir, tmp_path / "demo.db")
    assert junk == {"list_number": [], "echo": [], "label_residue": [], "truncated_single": []}

    model_dir = tmp_path / "models" / "demo-v1"
    training = json.loads((model_dir / "training_manifest.json").read_text())
    assert training["dataset"]["name"] == "demo" and training["dataset"]["version"] == 1
    assert training["dataset"]["content_hash"] == manifest["content_hash"]
    (version_id,) = db.execute("SELECT id FROM dataset_versions WHERE version = 1").fetchone()
    assert (
        db.execute(
            "SELECT COUNT(*) FROM training_runs WHERE dataset_version_id = ?", (version_id,)
        ).fetchone()[0]
        == 1
    )
    assert (model_dir / "validation_curve.png").exists()
