"""The embedding near-duplicate rule: paraphrases ROUGE-L misses, distinct tasks kept."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from filters.embeddings import DEFAULT_MODEL, INT8_MODEL, SentenceEncoder
from filters.errors import ConfigError, DuplicateKeyError, InvalidInputError
from filters.near_duplicates import NearDuplicateIndex
from filters.semantic_duplicates import (
    RULE_NAME,
    RULE_VERSION,
    SemanticDuplicateConfig,
    SemanticDuplicateIndex,
    default_threshold,
)

pytestmark = pytest.mark.embeddings

# (kept text, reworded paraphrase, cosine with all-MiniLM-L6-v2): ROUGE-L is 0.15-0.62 for
# every pair, so the paper's rule (> 0.7) keeps all of them.
PARAPHRASES = [
    ("Give three tips for staying healthy.", "What are three ways to stay healthy?", 0.8826),
    (
        'Write a sentence that ends with the word "published".',
        'Compose a sentence whose final word is "published".',
        0.944,
    ),
    (
        "I am planning a 7-day trip to Seattle. Can you make a detailed plan for me?",
        "Help me organize a week-long itinerary for visiting Seattle.",
        0.826,
    ),
    ("Find the four smallest perfect numbers.", "Which are the first four perfect numbers?", 0.847),
]


@pytest.mark.parametrize("index", ["hnsw", "exact"])
@pytest.mark.parametrize(("kept", "paraphrase", "cosine"), PARAPHRASES)
def test_paraphrase_rouge_misses_is_rejected_with_nearest_and_cosine(
    encoder: SentenceEncoder, index: str, kept: str, paraphrase: str, cosine: float
) -> None:
    rouge = NearDuplicateIndex()
    rouge.add("7", kept)
    assert rouge.check_batch([("new:0", paraphrase)])[0].accepted

    semantic = SemanticDuplicateIndex(encoder, index=index)
    semantic.add_many([("7", kept), ("8", "Translate the sentence into French.")])
    (verdict,) = semantic.check_batch([("new:0", paraphrase)])
    assert not verdict.accepted
    assert (verdict.rule, verdict.rule_version) == (RULE_NAME, RULE_VERSION)
    assert verdict.nearest_id == "7"
    assert verdict.similarity == pytest.approx(cosine, abs=1e-3)
    assert "cosine" in verdict.reason and "'7'" in verdict.reason and "the pool" in verdict.reason


def test_distinct_seed_tasks_are_all_kept(
    encoder: SentenceEncoder, seed_tasks: list[dict[str, Any]]
) -> None:
    semantic = SemanticDuplicateIndex(encoder)
    verdicts = semantic.check_batch([(t["id"], t["instruction"]) for t in seed_tasks])
    rejected = [(v.nearest_id, v.similarity) for v in verdicts if not v.accepted]
    assert rejected == []
    assert len(semantic) == len(seed_tasks)
    # an acceptance still records the nearest text seen and its cosine
    assert verdicts[1].nearest_id == seed_tasks[0]["id"] and verdicts[1].similarity is not None


def test_earlier_candidate_of_the_batch_counts(encoder: SentenceEncoder) -> None:
    kept, paraphrase, _ = PARAPHRASES[0]
    semantic = SemanticDuplicateIndex(encoder)
    semantic.add_many([("1", "Translate the sentence into French.")])
    first, second, third = semantic.check_batch(
        [("new:0", kept), ("new:1", "Name three rivers in Africa."), ("new:2", paraphrase)],
        add_accepted=False,
    )
    assert first.accepted and second.accepted
    assert not third.accepted and third.nearest_id == "new:0"
    assert "earlier candidate" in third.reason
    assert len(semantic) == 1  # add_accepted=False leaves the pool alone
    semantic.check_batch([("new:0", kept), ("new:2", paraphrase)])
    assert "new:0" in semantic and "new:2" not in semantic


def test_threshold_decides_strictly_above(encoder: SentenceEncoder) -> None:
    kept, paraphrase, _ = PARAPHRASES[0]
    vectors = encoder.encode([kept, paraphrase])
    cosine = float(vectors[0] @ vectors[1])
    for threshold, accepted in ((cosine - 1e-4, False), (min(cosine + 1e-4, 1.0), True)):
        semantic = SemanticDuplicateIndex(encoder, threshold=threshold, index="exact")
        semantic.add_vectors(["a"], vectors[:1])
        assert semantic.check_batch([("b", paraphrase)], vectors=vectors[1:])[0].accepted is (
            accepted
        )


def test_empty_pool_and_empty_batch(encoder: SentenceEncoder) -> None:
    semantic = SemanticDuplicateIndex(encoder)
    assert semantic.nearest("anything") == (None, 0.0)
    assert semantic.check_batch([]) == []
    (verdict,) = semantic.check_batch([("a", "Write a poem.")])
    assert verdict.accepted and verdict.nearest_id is None and verdict.similarity is None


def test_an_index_without_a_threshold_takes_its_encoders_measured_one(
    encoder: SentenceEncoder,
) -> None:
    assert encoder.name == DEFAULT_MODEL  # fp32 MiniLM, still selectable by name
    assert SemanticDuplicateIndex(encoder).threshold == default_threshold(encoder.name) == 0.8
    assert default_threshold(INT8_MODEL) == 0.775


def test_bad_input_raises(encoder: SentenceEncoder) -> None:
    semantic = SemanticDuplicateIndex(encoder)
    with pytest.raises(DuplicateKeyError):
        semantic.check_batch([("a", "x"), ("a", "y")])
    with pytest.raises(InvalidInputError):
        semantic.add_vectors(["a", "b"], np.zeros((1, encoder.dimension)))
    semantic.add_vectors(["a"], encoder.encode(["x"]))
    with pytest.raises(DuplicateKeyError):
        semantic.add_vectors(["a"], encoder.encode(["y"]))
    with pytest.raises(ConfigError):
        SemanticDuplicateIndex(encoder, threshold=0.0)
    with pytest.raises(ConfigError):
        SemanticDuplicateIndex(encoder, index="ivf")


def test_config_defaults_off_and_validates() -> None:
    config = SemanticDuplicateConfig()
    assert config.enabled is False and config.threshold is None and config.index == "hnsw"
    assert config.model == INT8_MODEL and RULE_VERSION == "2"  # the int8 encoder by default
    for bad in ({"threshold": 1.5}, {"index": "ivf"}, {"ef_search": 0}, {"unknown": 1}):
        with pytest.raises(ValidationError):
            SemanticDuplicateConfig(**bad)
