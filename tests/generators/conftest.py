"""Shared fixtures for the generators tests: the seed pool and the embedded model."""

from __future__ import annotations

from pathlib import Path

import pytest

from generators.seed_tasks import read_seed_tasks
from generators.types import PoolTask

REPO = Path(__file__).resolve().parents[2]
SEED_FILE = REPO.parent / "shared" / "data" / "self_instruct_seed_tasks.jsonl"


@pytest.fixture(scope="session")
def seed_pool() -> list[PoolTask]:
    """The paper's 175 seed tasks (../shared/data beside the checkout)."""
    if not SEED_FILE.is_file():
        pytest.fail(f"missing test data {SEED_FILE}: the checkout needs ../shared/data beside it")
    return read_seed_tasks(SEED_FILE)


@pytest.fixture(scope="session")
def machine_pool() -> list[PoolTask]:
    """A few machine tasks, some classification."""
    return [
        PoolTask(f"machine_{i}", f"Machine task {i}: rewrite the sentence.", i % 2 == 0, "machine")
        for i in range(5)
    ]


@pytest.fixture(scope="session")
def model_dir(embedded_model_dir: Path) -> Path:
    """The embedded SmolLM2-135M model directory (tests/conftest.py prepares it once)."""
    return embedded_model_dir
