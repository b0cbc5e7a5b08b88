"""bench/scale.py at tiny sizes: the pool part and the worker part run end to end, and the
result file has the shape the bench convention asks for (the figures mean nothing here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]


def test_scale_bench_smoke(tmp_path: Path) -> None:
    result = tmp_path / "scale.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "scale.py"), "--smoke", "--result", str(result)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    data = json.loads(result.read_text())
    pool = [r for r in data["rows"] if r["part"] == "pool"]
    workers = [r for r in data["rows"] if r["part"] == "workers"]
    assert [r["pool_machine_tasks"] for r in pool] == [2000]
    # About half the candidates are paraphrases of pool tasks: the rule must reject some of
    # them and accept the new instructions.
    assert 0 < pool[0]["rejected"] < pool[0]["candidates"]
    assert pool[0]["claim_s"] > 0 and pool[0]["redis_memory_mb"] > 0
    assert {(r["workers"], r["runs"]) for r in workers} == {(1, 1), (2, 1), (2, 2)}
    assert all(r["accepted"] > 0 and 0 < r["db_share"] < 1 for r in workers)
    assert all("scripted" in r["inference"] for r in workers)
    assert {g["name"] for g in data["goals"]} == {"claim_2000_s", "per_candidate_ms_2000"}
