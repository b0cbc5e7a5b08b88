"""Semantic near-duplicates: reject a text whose embedding is too close to one already kept.

ROUGE-L (:mod:`filters.near_duplicates`) only sees shared words, so a paraphrase with other
words ("Give three tips for staying healthy." / "What are three ways to stay healthy?",
ROUGE-L 0.31, cosine 0.88) passes it. This optional rule embeds each candidate with a sentence
encoder (:mod:`filters.embeddings`; by default all-MiniLM-L6-v2 quantised to int8,
:data:`DEFAULT_ENCODER`) and rejects it when the cosine
similarity to the nearest pool text, or to an earlier accepted candidate of the same batch, is
strictly above the threshold. The pool sits in a FAISS HNSW graph (inner product on unit
vectors = cosine); ``bench/semantic_dedup.py`` measured it against an exact search and usearch
and reports its recall and cost per candidate at 10k and 100k.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Annotated, Literal

import numpy as np
from pydantic import ConfigDict, Field
from pydantic.dataclasses import dataclass as validated_dataclass

from filters.embeddings import DEFAULT_MODEL, INT8_MODEL, STATIC_MODEL, SentenceEncoder
from filters.errors import ConfigError, DuplicateKeyError, InvalidInputError
from filters.types import Verdict, similarity_verdict

RULE_NAME = "semantic_duplicate"
# Mean-pooled unit vectors, cosine > threshold. "1": all-MiniLM-L6-v2 (torch, fp32) at 0.8 by
# default; "2": all-MiniLM-L6-v2-int8 (one text per forward pass) at its own 0.775 by default.
RULE_VERSION = "2"
RULE = (RULE_NAME, RULE_VERSION, "cosine")
# The encoder of a run that names none: fp32 MiniLM's int8 quantisation, the one that meets
# the cost goal (under 5 CPU ms per candidate at a 100k pool; fp32 MiniLM: 11.7) with
# the same recall and false rejects (bench/semantic_dedup.py). fp32 MiniLM stays selectable.
DEFAULT_ENCODER = INT8_MODEL
# fp32 MiniLM's measured threshold (bench/semantic_dedup.py), also used for a model that was
# never measured: no Self-Instruct seed task is above 0.775 to its nearest other seed (distinct
# tasks by design), while reworded paraphrases reach 0.8-0.95; above 0.75 2.3% of the seeds
# would be rejected. The bench sweeps the threshold.
DEFAULT_THRESHOLD = 0.8
# Each encoder's cosines sit on their own scale, so each has its measured threshold (the lowest
# of the bench's curve with at most 1% false rejects on distinct tasks). The static encoder's
# distinct seeds reach 0.89 to each other (0.775 with MiniLM): 0.9, where it finds 79% of rule
# paraphrases and none of the hand rewordings (MiniLM at 0.8: 96% and 9%).
# The int8 encoder, one text per forward pass (measured 2026-12-01, same sets, real 10k and
# 100k pool vectors): distinct seeds reach 0.775 to each other; at 0.775 it finds 96% of rule
# paraphrases and 15.6% of hand rewordings, false rejects 0 (seeds) and 0.008 (user vs seeds);
# at 100k it costs 2.46 CPU ms per candidate (embedding 2.19, HNSW 0.27; ROUGE-L 0.39).
DEFAULT_THRESHOLDS = {DEFAULT_MODEL: DEFAULT_THRESHOLD, STATIC_MODEL: 0.9, INT8_MODEL: 0.775}


def default_threshold(model: str) -> float:
    """The measured threshold of a model; :data:`DEFAULT_THRESHOLD` for a model not measured."""
    return DEFAULT_THRESHOLDS.get(model, DEFAULT_THRESHOLD)


HNSW_NEIGHBOURS = 32  # FAISS's M: links per node; 32 is its documented default trade-off
HNSW_EF_CONSTRUCTION = 64


@validated_dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class SemanticDuplicateConfig:
    """The per-run setting of the embedding near-duplicate rule; off unless enabled.

    Attributes:
        enabled: Run the rule (after the ROUGE-L rule, on its survivors).
        threshold: Reject when the cosine similarity to the nearest kept text is above this;
            None: the model's measured threshold (:func:`default_threshold`: 0.775 for
            all-MiniLM-L6-v2-int8, 0.8 for all-MiniLM-L6-v2, 0.9 for its static distillation).
        model: The embedding model: ``"all-MiniLM-L6-v2-int8"`` (:data:`DEFAULT_ENCODER`:
            MiniLM quantised for onnxruntime, prepared once by ``instructforge model prepare``,
            which ``make demo`` runs; about 2 CPU ms a text), ``"all-MiniLM-L6-v2"`` (the
            packaged fp32 MiniLM run by torch: 5-6 CPU ms a text, same recall),
            ``"all-MiniLM-L6-v2-static"`` (the static distillation, prepared once by
            ``instructforge model prepare --static-encoder``: about 20 times cheaper per text
            than int8, lower paraphrase recall) or a local folder (never downloaded).
        index: ``"hnsw"`` (approximate, FAISS HNSW) or ``"exact"`` (FAISS flat, every pair).
        ef_search: HNSW candidates explored per query; higher finds more, costs more.
    """

    enabled: bool = False
    threshold: Annotated[float, Field(gt=0.0, le=1.0)] | None = None
    model: Annotated[str, Field(min_length=1, max_length=1000)] = DEFAULT_ENCODER
    index: Literal["hnsw", "exact"] = "hnsw"
    ef_search: Annotated[int, Field(ge=1, le=4096)] = 64


class SemanticDuplicateIndex:
    """A pool of embedded texts that answers "does this say what a kept text already says?".

    Args:
        encoder: Embeds texts into unit vectors (:func:`filters.embeddings.load_encoder`).
        threshold: Reject when cosine similarity is strictly above this, in (0, 1]; None: the
            encoder's measured threshold (:func:`default_threshold` of ``encoder.name``).
        index: ``"hnsw"`` or ``"exact"``, see :class:`SemanticDuplicateConfig`.
        ef_search: HNSW search breadth.

    Raises:
        ConfigError: On a threshold outside (0, 1] or an unknown index kind.
    """

    def __init__(
        self,
        encoder: SentenceEncoder,
        *,
        threshold: float | None = None,
        index: str = "hnsw",
        ef_search: int = 64,
    ) -> None:
        """Create an empty pool; see the class docstring."""
        import faiss  # a compiled library: loaded only when the optional rule is used

        if threshold is None:
            threshold = default_threshold(encoder.name)
        if not 0.0 < threshold <= 1.0:
            raise ConfigError(f"threshold must be in (0, 1], got {threshold}")
        self._index: faiss.IndexHNSWFlat | faiss.IndexFlatIP
        if index == "hnsw":
            hnsw = faiss.IndexHNSWFlat(
                encoder.dimension, HNSW_NEIGHBOURS, faiss.METRIC_INNER_PRODUCT
            )
            hnsw.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
            hnsw.hnsw.efSearch = ef_search
            self._index = hnsw
        elif index == "exact":
            self._index = faiss.IndexFlatIP(encoder.dimension)
        else:
            raise ConfigError(f"index must be hnsw or exact, got {index!r}")
        self.encoder = encoder
        self.threshold = threshold
        self._keys: list[str] = []  # FAISS numbers vectors 0, 1, ...: key of each
        self._members: set[str] = set()

    @classmethod
    def from_config(
        cls, config: SemanticDuplicateConfig, encoder: SentenceEncoder
    ) -> SemanticDuplicateIndex:
        """An empty index with a run's settings (``config.model`` must be ``encoder``'s)."""
        threshold = config.threshold
        if threshold is None:
            threshold = default_threshold(config.model)
        return cls(encoder, threshold=threshold, index=config.index, ef_search=config.ef_search)

    def __len__(self) -> int:
        """Number of texts in the pool."""
        return len(self._keys)

    def __contains__(self, key: object) -> bool:
        """Whether ``key`` is in the pool."""
        return key in self._members

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors of ``texts``, shape ``(len(texts), dimension)``, float32."""
        return self.encoder.encode(texts)

    def add_many(self, items: Iterable[tuple[str, str]]) -> None:
        """Embed and add ``(key, text)`` pairs; keys already in the pool are skipped."""
        pairs = [(k, t) for k, t in items if k not in self._members]
        self.add_vectors([k for k, _ in pairs], self.embed([t for _, t in pairs]))

    def add_vectors(self, keys: Sequence[str], vectors: np.ndarray) -> None:
        """Add pre-computed unit vectors (e.g. from a cache) under ``keys``.

        Raises:
            InvalidInputError: ``vectors`` is not ``(len(keys), dimension)``.
            DuplicateKeyError: A key is already in the pool or repeated.
        """
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.shape != (len(keys), self.encoder.dimension):
            raise InvalidInputError(
                f"vectors of shape {vectors.shape} for {len(keys)} keys "
                f"of dimension {self.encoder.dimension}"
            )
        if len(set(keys)) != len(keys) or self._members.intersection(keys):
            raise DuplicateKeyError("keys must be new to the pool and unique")
        if not keys:
            return
        self._index.add(vectors)
        self._keys.extend(keys)
        self._members.update(keys)

    def search(self, vectors: np.ndarray) -> list[tuple[str | None, float]]:
        """The nearest pool key and its cosine for each row of ``vectors``.

        Returns:
            ``(key, cosine)`` per row; ``(None, 0.0)`` when the pool is empty.
        """
        if not self._keys or not len(vectors):
            return [(None, 0.0)] * len(vectors)
        sims, ids = self._index.search(np.ascontiguousarray(vectors, dtype=np.float32), 1)
        return [
            (self._keys[i], float(s)) if i >= 0 else (None, 0.0)
            for i, s in zip(ids[:, 0], sims[:, 0], strict=True)
        ]

    def nearest(self, text: str) -> tuple[str | None, float]:
        """``(key, cosine)`` of the pool text most similar to ``text``, or ``(None, 0.0)``."""
        return self.search(self.embed([text]))[0]

    def check_batch(
        self,
        candidates: Sequence[tuple[str, str]],
        *,
        add_accepted: bool = True,
        vectors: np.ndarray | None = None,
    ) -> list[Verdict]:
        """Decide each candidate against the pool and the earlier accepted candidates.

        Args:
            candidates: ``(key, text)`` pairs.
            add_accepted: Add the accepted candidates to the pool afterwards.
            vectors: Their embeddings, if already computed (else they are embedded here).

        Returns:
            One verdict per candidate, in order, rule ``"semantic_duplicate"``; a rejection
            names the nearest key and its cosine; an acceptance carries the best one seen.

        Raises:
            DuplicateKeyError: If a key appears twice in ``candidates``.
        """
        keys = [k for k, _ in candidates]
        if len(set(keys)) != len(keys):
            raise DuplicateKeyError("candidate keys must be unique within a batch")
        if vectors is None:
            vectors = self.embed([t for _, t in candidates])
        in_pool = self.search(vectors)
        # A batch is small: every pair of it, exactly, costs less than indexing it.
        in_batch = vectors @ vectors.T
        accepted: list[int] = []
        verdicts = []
        for i, (pool_key, pool_sim) in enumerate(in_pool):
            nearest, sim, where = pool_key, pool_sim, "the pool"
            if accepted:
                j = accepted[int(np.argmax(in_batch[i, accepted]))]
                if pool_key is None or in_batch[i, j] > pool_sim:
                    nearest, sim = keys[j], float(in_batch[i, j])
                    where = "an earlier candidate of this batch"
            verdicts.append(similarity_verdict(RULE, self.threshold, (nearest, sim), where))
            if verdicts[-1].accepted:
                accepted.append(i)
        if add_accepted:
            self.add_vectors([keys[i] for i in accepted], vectors[accepted])
        return verdicts
