"""bench/service.py's worker part at tiny sizes on a scripted server: it runs end to end and its
figures have the right shape (what they measure means nothing without a model)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def test_worker_part_runs_on_a_scripted_server(tmp_path: Path) -> None:
    result = tmp_path / "service.json"
    command = [
        sys.executable, str(ROOT / "bench" / "service.py"), "--skip-api",
        "--backend", "scripted", "--pools", "200", "--iterations", "2", "--result", str(result),
    ]  # fmt: skip
    done = subprocess.run(
        command,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    data = json.loads(result.read_text())
    (row,) = data["rows"]
    assert (row["part"], row["pool_machine_tasks"], row["iterations"]) == ("worker", 200, 2)
    assert row["claim_open_pipeline_s"] > 0 and row["mean_accepted"] > 0
    assert 0 < row["mean_inference_s"] < row["mean_wall_s"]
    assert 0 < row["non_inference_share"] < 1
    assert "scripted" in row["note"]
    assert data["goals"] == []  # no goal is read off a run without a model
