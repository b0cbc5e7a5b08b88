"""The long schemathesis run: every operation, positive and negative, and linked sequences,
on SQLite and PostgreSQL.

Runs ``tests/service/test_api_fuzz.py``'s two fuzz tests: ``test_no_input_is_a_server_error``
with ``FUZZ_EXAMPLES`` examples per operation and mode (100 by default; the suite's bounded run
uses 25), and the stateful ``test_linked_sequences_are_never_a_server_error`` with
``FUZZ_SCENARIOS`` sequences of up to ``FUZZ_STEPS`` calls (the examples count and 20 by
default; the suite uses 15 and 8). Then it sums what each case sent and saw. Goals: 0 responses
5xx, 0 undocumented statuses and 0 responses off their documented schema.

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
FILE = "tests/service/test_api_fuzz.py"
TESTS = [
    f"{FILE}::test_no_input_is_a_server_error",
    f"{FILE}::test_linked_sequences_are_never_a_server_error",
]
STEPS = 20


def main(examples: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tally = Path(tmp) / "tally.jsonl"
        env = {**os.environ, "FUZZ_EXAMPLES": str(examples), "FUZZ_TALLY": str(tally)}
        env |= {"FUZZ_SCENARIOS": str(examples), "FUZZ_STEPS": str(STEPS)}
        env["PYTHONPATH"] = str(ROOT)
        started = time.perf_counter()
        pytest = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *TESTS]
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
        "stateful_scenarios_per_database": examples,
        "stateful_steps_max": STEPS,
        "stateful_requests": sum(r["requests"] for r in rows if r["mode"] == "stateful"),
        "stateful_stopped_early": [
            r["database"] for r in rows if r["mode"] == "stateful" and r.get("stopped_early")
        ],
        "stateful_actions_followed": {
            r["database"]: r.get("links", {}) for r in rows if r["mode"] == "stateful"
        },
        "failures_by_check": failures,
        "pytest_exit_code": outcome.returncode,
        "seconds": round(elapsed, 1),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }
    write_result(RESULT, rows, goals, env_info)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100)
