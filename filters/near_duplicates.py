"""Near-duplicate detection: MinHash LSH finds candidates, exact ROUGE-L decides.

The Self-Instruct rule rejects a new instruction whose ROUGE-L F-measure against any pool
instruction exceeds 0.7; done exhaustively that is quadratic. Here a MinHash LSH index over
unigram shingles proposes a few candidates per query (tuned so that it finds the pairs the
rule rejects) and the exact ROUGE-L (:mod:`filters.rouge`) is computed on those only, so a
rejection is always the paper's rule. The index can live in memory or in Redis (shared by
several workers) and can be rebuilt from signatures stored with the tasks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
from datasketch import MinHashLSH
from pydantic import ConfigDict, Field
from pydantic.dataclasses import dataclass as validated_dataclass

from filters.errors import ConfigError, DuplicateKeyError, IndexStorageError
from filters.rouge import Encoded, TokenEncoder, rouge_l_many, rouge_tokenize
from filters.signatures import MinHasher
from filters.types import Verdict

RULE_NAME = "near_duplicate"
RULE_VERSION = "1"
DEFAULT_NUM_PERM = 256
# Bands of 5 rows: the LSH S-curve is steep enough that pairs with unigram Jaccard >= 0.55
# (every ROUGE-L > 0.7 pair measured on Alpaca) collide in some band, while unrelated
# instructions sharing stopwords rarely do, so candidates per query grow slowly with the pool.
DEFAULT_ROWS_PER_BAND = 5
PAPER_THRESHOLD = 0.7  # Self-Instruct: reject above ROUGE-L 0.7 against the pool

TextLookup = Callable[[Sequence[str]], Mapping[str, str]]


@validated_dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class NearDuplicateConfig:
    """The per-run setting of the near-duplicate rule; a run's configuration embeds it.

    Attributes:
        threshold: Reject when ROUGE-L F-measure against the pool is strictly above this.
    """

    threshold: Annotated[float, Field(gt=0.0, le=1.0)] = PAPER_THRESHOLD


@dataclass
class _Prepared:
    """A tokenized, encoded and hashed text on its way into or against the index."""

    key: str
    tokens: list[str]
    code: Encoded
    minhash: Any


class NearDuplicateIndex:
    """A pool of texts that answers "is this a near-duplicate of something already here?".

    Args:
        threshold: Reject when ROUGE-L F-measure is strictly above this (paper: 0.7).
        num_perm: MinHash permutations.
        lsh_threshold: Jaccard threshold from which datasketch derives the bands; used only
            when ``lsh_params`` is not given. When both are None, bands of 5 rows are used.
        lsh_params: Explicit ``(bands, rows)``.
        seed: MinHash seed; stored signatures must have been made with the same seed.
        storage_config: datasketch storage config; ``{"type": "redis", "basename": b"...",
            "redis": {...}}`` shares the index through Redis. The texts needed for the exact
            re-check are then kept in the Redis hash ``basename + b"_texts"``.
        text_lookup: Optional callable mapping keys to texts, used instead of storing texts
            in Redis (e.g. backed by the database).

    Raises:
        ConfigError: On thresholds outside [0, 1] or LSH parameters that do not fit.
    """

    def __init__(
        self,
        *,
        threshold: float = PAPER_THRESHOLD,
        num_perm: int = DEFAULT_NUM_PERM,
        lsh_threshold: float | None = None,
        lsh_params: tuple[int, int] | None = None,
        seed: int = 1,
        storage_config: dict[str, Any] | None = None,
        text_lookup: TextLookup | None = None,
    ) -> None:
        """Create an empty index (or attach to a shared Redis one); see the class docstring."""
        if not 0.0 <= threshold <= 1.0:
            raise ConfigError(f"threshold must be in [0, 1], got {threshold}")
        if lsh_params is None and lsh_threshold is None:
            lsh_params = (num_perm // DEFAULT_ROWS_PER_BAND, DEFAULT_ROWS_PER_BAND)
        self.threshold = threshold
        self._hasher = MinHasher(num_perm=num_perm, seed=seed)
        self._storage_config = storage_config or {"type": "dict"}
        try:
            self._lsh = self._new_lsh(self._storage_config, lsh_threshold, lsh_params)
        except ValueError as exc:
            raise ConfigError(f"bad LSH settings: {exc}") from exc
        self._lsh_threshold = lsh_threshold
        self.bands, self.rows = self._lsh.b, self._lsh.r
        self._encoder = TokenEncoder()
        self._codes: dict[str, Encoded] = {}  # the pool (dict mode) or a cache (Redis mode)
        self._text_lookup = text_lookup
        self._redis = None
        self._texts_key = b""
        if self._storage_config.get("type") == "redis":
            import redis  # only needed for a shared index

            self._redis = redis.Redis(**self._storage_config.get("redis", {}))
            self._texts_key = self._storage_config["basename"] + b"_texts"

    def _new_lsh(
        self,
        storage_config: dict[str, Any],
        lsh_threshold: float | None,
        lsh_params: tuple[int, int] | None,
    ) -> MinHashLSH:
        """Build the datasketch index with the resolved banding."""
        return MinHashLSH(
            threshold=lsh_threshold if lsh_threshold is not None else 0.5,
            num_perm=self._hasher.num_perm,
            params=lsh_params,
            storage_config=storage_config,
        )

    def __len__(self) -> int:
        """Number of keys in the pool (shared pool in Redis mode)."""
        if self._redis is not None:
            return int(self._redis.hlen(self._texts_key))
        return len(self._codes)

    def __contains__(self, key: object) -> bool:
        """Whether ``key`` is in the pool."""
        if not isinstance(key, str):
            return False
        if key in self._codes:
            return True
        return self._redis is not None and bool(self._redis.hexists(self._texts_key, key))

    def signature(self, text: str) -> bytes:
        """MinHash signature of one text, as bytes to store with the task.

        Args:
            text: The text (an instruction).

        Returns:
            Signature bytes accepted by :meth:`add` and :meth:`add_many`.
        """
        return self.signatures([text])[0]

    def signatures(self, texts: list[str]) -> list[bytes]:
        """Signatures of many texts, computed in one batch.

        Args:
            texts: The texts.

        Returns:
            One signature per text, in order.
        """
        minhashes = self._hasher.minhashes([rouge_tokenize(t) for t in texts])
        return [self._hasher.to_bytes(m) for m in minhashes]

    def add(self, key: str, text: str, signature: bytes | None = None) -> None:
        """Add one text to the pool (a key already present is left as it is).

        Args:
            key: Unique id (e.g. the task id).
            text: The text; needed for the exact re-check.
            signature: Stored signature; computed from ``text`` when None.

        Raises:
            SignatureError: If ``signature`` was made with other settings.
        """
        self.add_many([(key, text, signature)])

    def add_many(self, items: Iterable[tuple[str, str, bytes | None]]) -> None:
        """Add many texts, e.g. to rebuild the index from signatures stored with tasks.

        Items whose signature is given are not re-hashed. Keys already present (or repeated
        within ``items``) are added once, so a rebuild after a crash is idempotent.

        Args:
            items: ``(key, text, signature or None)`` triples.

        Raises:
            SignatureError: If a signature was made with other settings.
        """
        fresh: dict[str, tuple[str, bytes | None]] = {}
        for key, text, signature in items:
            fresh.setdefault(key, (text, signature))
        present = self._present(list(fresh))
        todo = [(k, t, s) for k, (t, s) in fresh.items() if k not in present]
        prepared = self._prepare(todo)
        self._insert(prepared, {k: t for k, t, _ in todo})

    def _present(self, keys: list[str]) -> set[str]:
        """The subset of ``keys`` already in the pool."""
        found = {k for k in keys if k in self._codes}
        rest = [k for k in keys if k not in found]
        if self._redis is not None and rest:
            flags = self._redis.hmget(self._texts_key, rest)
            found.update(k for k, v in zip(rest, flags, strict=True) if v is not None)
        return found

    def _insert(self, prepared: list[_Prepared], texts: Mapping[str, str]) -> None:
        """Store texts first, then LSH entries, so any key a query finds has its text."""
        if not prepared:
            return
        if self._redis is not None:
            stored = {p.key: ("" if self._text_lookup else texts[p.key]) for p in prepared}
            keys = list(stored)
            for start in range(0, len(keys), 5000):
                chunk = {k: stored[k] for k in keys[start : start + 5000]}
                self._redis.hset(self._texts_key, mapping=chunk)
        with self._lsh.insertion_session() as session:
            for p in prepared:
                # A text without tokens has ROUGE-L 0 with everything: it can never be a
                # duplicate, so it is kept out of the LSH buckets.
                if p.tokens:
                    session.insert(p.key, p.minhash, check_duplication=False)
        for p in prepared:
            self._codes[p.key] = p.code

    def _codes_for(self, keys: list[str]) -> list[Encoded]:
        """Encoded texts of pool keys, fetched from Redis or ``text_lookup`` when not cached.

        Raises:
            IndexStorageError: If a key's text cannot be found.
        """
        missing = [k for k in keys if k not in self._codes]
        if missing:
            if self._text_lookup is not None:
                found = dict(self._text_lookup(missing))
            elif self._redis is not None:
                raw = self._redis.hmget(self._texts_key, missing)
                found = {k: v.decode() for k, v in zip(missing, raw, strict=True) if v is not None}
            else:
                found = {}
            lost = [k for k in missing if k not in found]
            if lost:
                raise IndexStorageError(f"no text for pool keys {lost[:5]} (of {len(lost)})")
            for k in missing:
                self._codes[k] = self._encoder.encode(rouge_tokenize(found[k]))
        return [self._codes[k] for k in keys]

    def _best(
        self, code: Encoded, keys: list[str], codes: list[Encoded]
    ) -> tuple[str | None, float]:
        """Highest ROUGE-L among ``keys`` (None when all are 0); ties go to the smallest key."""
        if not keys:
            return None, 0.0
        scores = rouge_l_many(code, codes)
        top = float(scores.max())
        if top <= 0.0:
            return None, 0.0
        best = min(k for k, s in zip(keys, scores.tolist(), strict=True) if s == top)
        return best, top

    def _prepare(self, candidates: Sequence[tuple[str, ...]]) -> list[_Prepared]:
        """Tokenize, encode and hash candidates (stored signatures are parsed, not recomputed)."""
        tokens = [rouge_tokenize(c[1]) for c in candidates]
        to_hash = [i for i, c in enumerate(candidates) if len(c) < 3 or c[2] is None]
        hashed = self._hasher.minhashes([tokens[i] for i in to_hash]) if to_hash else []
        computed = dict(zip(to_hash, hashed, strict=True))
        return [
            _Prepared(
                c[0],
                tokens[i],
                self._encoder.encode(tokens[i]),
                computed[i] if i in computed else self._hasher.from_bytes(c[2]),
            )
            for i, c in enumerate(candidates)
        ]

    def _pool_candidates(self, p: _Prepared) -> list[str]:
        """Pool keys sharing an LSH band with ``p`` (never ``p`` itself)."""
        if not p.tokens:
            return []
        return [k for k in self._lsh.query(p.minhash) if k != p.key]

    def nearest(self, text: str) -> tuple[str | None, float]:
        """The most similar pool text among the LSH candidates.

        Args:
            text: The query text.

        Returns:
            ``(key, ROUGE-L F)`` of the best candidate, or ``(None, 0.0)`` when LSH proposes
            none (then no pool text is likely to exceed the threshold).
        """
        p = self._prepare([("", text)])[0]
        keys = self._pool_candidates(p)
        return self._best(p.code, keys, self._codes_for(keys))

    def check_batch(
        self, candidates: Sequence[tuple[str, ...]], *, add_accepted: bool = True
    ) -> list[Verdict]:
        """Decide each candidate against the pool and the earlier accepted candidates.

        Args:
            candidates: ``(key, text)`` pairs, or ``(key, text, signature)`` triples when the
                caller already computed signatures (they are then not recomputed).
            add_accepted: Add accepted candidates to the pool afterwards.

        Returns:
            One verdict per candidate, in order. Rejections have rule ``"near_duplicate"``,
            the nearest key and its ROUGE-L; acceptances carry the best similarity seen.

        Raises:
            DuplicateKeyError: If a key appears twice in ``candidates``.
            IndexStorageError: If a shared pool lacks a candidate's text.
        """
        keys = [c[0] for c in candidates]
        if len(set(keys)) != len(keys):
            raise DuplicateKeyError("candidate keys must be unique within a batch")
        prepared = self._prepare(candidates)
        accepted: list[_Prepared] = []
        verdicts = []
        for p in prepared:
            verdict = self._decide(p, accepted)
            verdicts.append(verdict)
            if verdict.accepted:
                accepted.append(p)
        if add_accepted:
            texts = {c[0]: c[1] for c in candidates}
            present = self._present([p.key for p in accepted])
            self._insert([p for p in accepted if p.key not in present], texts)
        return verdicts

    def _decide(self, p: _Prepared, accepted: list[_Prepared]) -> Verdict:
        """Verdict for one prepared candidate against the pool and the batch so far.

        Earlier accepted candidates of the batch are compared exactly, all of them: a batch
        is small and the C++ LCS over it costs less than querying a second LSH index.
        """
        pool_keys = self._pool_candidates(p)
        pool_id, pool_sim = self._best(p.code, pool_keys, self._codes_for(pool_keys))
        earlier = [a for a in accepted if a.tokens] if p.tokens else []
        batch_id, batch_sim = self._best(
            p.code, [a.key for a in earlier], [a.code for a in earlier]
        )
        in_batch = batch_id is not None and (pool_id is None or batch_sim > pool_sim)
        nearest, sim = (batch_id, batch_sim) if in_batch else (pool_id, pool_sim)
        if nearest is not None and sim > self.threshold:
            where = "an earlier candidate of this batch" if in_batch else "the pool"
            return Verdict(
                accepted=False,
                rule=RULE_NAME,
                rule_version=RULE_VERSION,
                reason=f"ROUGE-L {sim:.3f} > {self.threshold} against {nearest!r} in {where}",
                nearest_id=nearest,
                similarity=sim,
            )
        return Verdict(
            True, RULE_NAME, RULE_VERSION, "", nearest, sim if nearest is not None else None
        )


def exhaustive_nearest(
    code: Encoded, pool_keys: Sequence[str], pool_codes: Sequence[Encoded]
) -> tuple[str | None, float]:
    """Exact nearest by ROUGE-L over a whole pool (the quadratic baseline, in C++).

    Args:
        code: Encoded query.
        pool_keys: Keys of the pool.
        pool_codes: Encoded pool texts from the same :class:`TokenEncoder`.

    Returns:
        ``(key, F)`` of the best match (first on ties), or ``(None, 0.0)`` for an empty pool.
    """
    if not pool_keys:
        return None, 0.0
    scores = rouge_l_many(code, pool_codes)
    i = int(np.argmax(scores))
    return pool_keys[i], float(scores[i])
