"""The long schemathesis run: every operation, positive and negative, on SQLite and PostgreSQL.

Runs ``tests/service/test_api_fuzz.py::test_no_input_is_a_server_error`` with
``FUZZ_EXAMPLES`` examples per operation and mode (100 by default; the suite's bounded run
uses 25), then sums what each case sent and saw. Goals: 0 responses 5xx, 0 undocumented
statuses and 0 responses off their documented schema.

Run: python bench/fuzz.py [examples]   (writes bench/results/fuzz.json; needs PostgreSQL)
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from result_file import goal, write_result  # bench/ is on sys.path

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "bench" / "results" / "fuzz.json"
TEST = "tests/service/test_api_fuzz.py::test_no_input_is_a_server_error"


def main(examples: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tally = Path(tmp) / "tally.jsonl"
        env = {**os.environ, "FUZZ_EXAMPLES": str(examples), "FUZZ_TALLY": str(tally)}
        env["PYTHONPATH"] = str(ROOT)
        started = time.perf_counter()
        pytest = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", TEST]
        outcome = subprocess.run(pytest, cwd=ROOT, env=env, check=False)
        elapsed = time.perf_counter() - started
        rows = [json.loads(line) for line in tally.read_text().splitlines()]
    failures: dict[str, int] = {}
    for row in rows:
        for title, count in row["failures"].items():
            failures[title] = failures.get(title, 0) + count
    schema = sum(v for k, v in failures.items() if "schema" in k.lower())
    status = sum(v for k, v in failures.items() if "status code" in k.lower())
    goals = [
        goal("status_5xx", sum(r["status_5xx"] for r in rows), 0, "lower"),
        goal("undocumented_status", status, 0, "lower"),
        goal("schema_mismatches", schema, 0, "lower"),
        goal("cases_failed", sum(1 for r in rows if r["failures"]), 0, "lower"),
        # A case that raised inside the app (a 500 the test client re-raises) writes no tally
        # row, so the run's own verdict counts too.
        goal("pytest_failed", int(outcome.returncode != 0), 0, "lower"),
    ]
    env_info = {
        "examples_per_operation_and_mode": examples,
        "requests_sent": sum(r["requests"] for r in rows),
        "failures_by_check": failures,
        "pytest_exit_code": outcome.returncode,
        "seconds": round(elapsed, 1),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }
    write_result(RESULT, rows, goals, env_info)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100)
