"""The int8 encoder (all-MiniLM-L6-v2 quantised for onnxruntime): close to fp32, offline, fixed."""

from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pytest

from filters.embeddings import (
    INT8_MODEL,
    QUANTIZE_VERSION,
    STATIC_MODEL,
    OnnxSentenceEncoder,
    SentenceEncoder,
    int8_encoder_dir,
    load_encoder,
    prepare_int8_encoder,
)
from filters.errors import ConfigError
from filters.semantic_duplicates import (
    SemanticDuplicateConfig,
    SemanticDuplicateIndex,
    default_threshold,
)
from tests.conftest import MODEL_CACHE

pytestmark = pytest.mark.embeddings

# Reworded tasks (ROUGE-L below 0.7 for each pair) and distinct ones, as in the rule's tests.
PARAPHRASES = [
    ("Give three tips for staying healthy.", "What are three ways to stay healthy?"),
    (
        'Write a sentence that ends with the word "published".',
        'Compose a sentence whose final word is "published".',
    ),
    ("Find the four smallest perfect numbers.", "Which are the first four perfect numbers?"),
]


@pytest.fixture(scope="module")
def int8() -> SentenceEncoder:
    """Prepared once into the model cache (about 30 CPU seconds), then only loaded."""
    os.environ["HF_HUB_OFFLINE"] = "1"  # the export reads the installed wheel only
    prepare_int8_encoder(MODEL_CACHE)
    return load_encoder(INT8_MODEL, cache_dir=MODEL_CACHE)


def test_vectors_are_unit_rows_like_minilm(int8: SentenceEncoder) -> None:
    assert isinstance(int8, OnnxSentenceEncoder)
    vectors = int8.encode(["Give three tips for staying healthy.", "Écris un poème.", "日本"])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert int8.encode([]).shape == (0, 384)
    assert int8.max_seq_length == 256


def test_seed_task_vectors_are_close_to_fp32(
    int8: SentenceEncoder, encoder: SentenceEncoder, seed_tasks: list[dict[str, Any]]
) -> None:
    texts = [t["instruction"] for t in seed_tasks]
    cosines = (int8.encode(texts) * encoder.encode(texts)).sum(axis=1)
    assert len(texts) == 175 and float(cosines.min()) >= 0.97
    # A long input is cut at the same 256 tokens as MiniLM's, so it stays close too.
    long = [" ".join(texts)]
    assert float((int8.encode(long) @ encoder.encode(long).T)[0, 0]) >= 0.97


def test_a_text_gets_the_same_vector_alone_and_in_any_batch(int8: SentenceEncoder) -> None:
    """Bit for bit: dynamic quantisation scales activations by the whole input's range, so in a
    padded batch "short" moved to cosine 0.983 of itself alone; one text per forward pass makes
    a text's vector, and so every verdict on it, independent of what it is embedded with."""
    short = "short"
    mates = [
        "a longer sentence about cooking pasta at home, with garlic, olive oil and basil",
        "mid length text",
        "Écris un poème sur la mer.",
    ]
    alone = int8.encode([short])
    for batch in ([short, *mates], [*mates, short], [mates[0], short]):
        for batch_size in (1, 2, 64):
            together = int8.encode(batch, batch_size=batch_size)
            np.testing.assert_array_equal(together[batch.index(short)], alone[0])
    np.testing.assert_array_equal(
        int8.encode(mates, batch_size=64), np.vstack([int8.encode([m]) for m in mates])
    )


def test_prepare_is_deterministic(int8: SentenceEncoder, tmp_path: Path) -> None:
    again = prepare_int8_encoder(tmp_path)
    assert again == int8_encoder_dir(tmp_path) and again.name == f"{INT8_MODEL}-q{QUANTIZE_VERSION}"
    assert (again / "model-int8.onnx").read_bytes() == (
        int8.folder / "model-int8.onnx"
    ).read_bytes()
    marker = json.loads((again / "instructforge-quantize.json").read_text(encoding="utf-8"))
    # /e1.2: the pooling of every encoder (e1), one text per forward pass (.2)
    assert int8.model_id == f"{INT8_MODEL}@{marker['sha256'][:16]}/e1.2"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left


def test_model_id_is_its_own(int8: SentenceEncoder, encoder: SentenceEncoder) -> None:
    assert int8.model_id.startswith(f"{INT8_MODEL}@") and len(int8.model_id) <= 200
    assert int8.model_id != encoder.model_id  # its vectors are never mixed with fp32 MiniLM's
    assert int8.model_id.split("@")[0] != STATIC_MODEL


def test_loading_never_touches_the_network(
    int8: SentenceEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"network access: {args}")

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    loaded = load_encoder(INT8_MODEL, cache_dir=MODEL_CACHE)
    np.testing.assert_array_equal(loaded.encode(["Write a poem."]), int8.encode(["Write a poem."]))


def test_loading_never_prepares_a_missing_or_stale_folder(
    int8: SentenceEncoder, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match="--int8-encoder"):
        load_encoder(INT8_MODEL, cache_dir=tmp_path)
    with pytest.raises(ConfigError, match="cache directory"):
        load_encoder(INT8_MODEL)
    stale = int8_encoder_dir(tmp_path)
    shutil.copytree(int8.folder, stale)
    marker = stale / "instructforge-quantize.json"
    marker.write_text(json.dumps({"name": INT8_MODEL, "source": "q0+old"}), encoding="utf-8")
    with pytest.raises(ConfigError, match="not prepared"):
        load_encoder(INT8_MODEL, cache_dir=tmp_path)
    assert not (tmp_path / "model-int8.onnx").exists()


@pytest.mark.parametrize("index", ["hnsw", "exact"])
def test_the_rule_with_int8_rejects_paraphrases_and_keeps_distinct_tasks(
    int8: SentenceEncoder, seed_tasks: list[dict[str, Any]], index: Literal["hnsw", "exact"]
) -> None:
    config = SemanticDuplicateConfig(enabled=True, model=INT8_MODEL, index=index)
    semantic = SemanticDuplicateIndex.from_config(config, int8)
    assert semantic.threshold == default_threshold(INT8_MODEL)
    semantic.add_many([(str(i), kept) for i, (kept, _) in enumerate(PARAPHRASES)])
    verdicts = semantic.check_batch([(f"new:{i}", p) for i, (_, p) in enumerate(PARAPHRASES)])
    assert [v.nearest_id for v in verdicts] == ["0", "1", "2"]
    assert not any(v.accepted for v in verdicts)
    distinct = SemanticDuplicateIndex.from_config(config, int8)
    kept = distinct.check_batch([(t["id"], t["instruction"]) for t in seed_tasks])
    assert all(v.accepted for v in kept)
