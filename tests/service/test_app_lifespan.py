"""What an API process sets for its life and gives back at shutdown: the collector's state."""

from __future__ import annotations

import gc
from pathlib import Path

from service.app import GC_YOUNG_THRESHOLD
from tests.service.api_client import api_harness


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
