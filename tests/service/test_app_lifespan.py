"""What an API process sets for its life and gives back at shutdown: the collector's state."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.app import GC_YOUNG_THRESHOLD
from tests.service.api_client import api_harness


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """The heap as in a fresh process: nothing frozen (the test session freezes its own, see
    tests/conftest.py); frozen again afterwards."""
    gc.unfreeze()
    try:
        yield
    finally:
        gc.collect()
        gc.freeze()


@pytest.mark.usefixtures("unfrozen")
def test_serving_raises_the_young_threshold_freezes_startup_and_restores_both(
    db_url: str, tmp_path: Path
) -> None:
    before = gc.get_threshold()
    assert before[0] != GC_YOUNG_THRESHOLD
    with api_harness(db_url, tmp_path) as api:
        assert api.client.get("/healthz").status_code == 200
        assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, *before[1:])
        assert gc.get_freeze_count() > 0  # what startup had imported is out of the walk
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_a_host_that_froze_its_heap_keeps_its_freeze(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A host that froze its heap itself (a pre-fork server, the test session) keeps that
    freeze: the app neither collects nor freezes at start-up, nor unfreezes at shutdown."""
    gc.collect()
    gc.freeze()
    calls: list[str] = []
    for name in ("collect", "freeze", "unfreeze"):
        monkeypatch.setattr(gc, name, lambda *_, name=name: calls.append(name))
    before = gc.get_threshold()
    with api_harness(db_url, tmp_path) as api:
        assert api.client.get("/healthz").status_code == 200
        assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, *before[1:])
    assert gc.get_threshold() == before
    assert calls == [] and gc.get_freeze_count() > 0
