"""Fixtures for trainer tests: a tiny tokenizer and Llama built on the spot, a dataset version."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.trainer.builders import (
    build_tiny_model,
    build_tokenizer,
    corpus_for,
    toy_rows,
    write_dataset_version,
)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
pytest.importorskip("torch", reason="the trainer needs torch")
pytest.importorskip("transformers", reason="the trainer needs transformers")


@pytest.fixture(scope="session")
def rows() -> list[dict[str, Any]]:
    """The toy training rows."""
    return toy_rows(12)


@pytest.fixture(scope="session")
def tokenizer(rows: list[dict[str, Any]]) -> Any:
    """A ChatML tokenizer with its own pad token."""
    return build_tokenizer(corpus_for(rows))


@pytest.fixture(scope="session")
def model_dir(tokenizer: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved tiny random Llama with the tokenizer."""
    return build_tiny_model(tokenizer, tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture
def dataset_dir(rows: list[dict[str, Any]], tmp_path: Path) -> Path:
    """A dataset version: the toy rows for training, four of them for validation."""
    return write_dataset_version(tmp_path / "datasets", "toy", 1, rows, rows[:4])
