"""Near-duplicate detection: an exact token-overlap index finds candidates, ROUGE-L decides.

The Self-Instruct rule rejects a new instruction whose ROUGE-L F-measure against any pool
instruction exceeds 0.7; done exhaustively that is quadratic. Here an inverted token index
(:mod:`filters.candidates`) proposes the few pool texts whose token overlap and length can
still pass the threshold - a superset of every pool text the rule rejects on, so nothing is
missed - and the exact ROUGE-L (:mod:`filters.rouge`) is computed on those only, so every
decision is the paper's rule. The pool lives in memory, or is shared by several workers
through Redis (texts plus an append-only log of keys that each worker replays into its own
index).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
from pydantic import ConfigDict, Field
from pydantic.dataclasses import dataclass as validated_dataclass

from filters.candidates import TokenOverlapIndex
from filters.errors import ConfigError, DuplicateKeyError, IndexStorageError
from filters.rouge import Encoded, TokenEncoder, rouge_l_many, rouge_tokenize
from filters.signatures import MinHasher
from filters.types import Verdict, similarity_verdict

RULE_NAME = "near_duplicate"
# 1: MinHash LSH candidates on rouge-score's [a-z0-9]+ tokens (it missed about 1% of
# paraphrases at F in (0.7, 0.8]). 2 was two changes made side by side: filters.rouge tokens
# version 2 (the same on ASCII; Chinese, Japanese, Thai... by character, other scripts by
# word), and candidates from an exact token-overlap index. 3: both together.
RULE_VERSION = "3"
RULE = (RULE_NAME, RULE_VERSION, "ROUGE-L")
DEFAULT_NUM_PERM = 256
_REDIS_CHUNK = 5000
PAPER_THRESHOLD = 0.7  # Self-Instruct: reject above ROUGE-L 0.7 against the pool

TextLookup = Callable[[Sequence[str]], Mapping[str, str]]


def _text(value: bytes | str) -> str:
    """A Redis reply as text (bytes unless the client was made with decode_responses)."""
    return value.decode() if isinstance(value, bytes) else value


@validated_dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class NearDuplicateConfig:
    """The per-run setting of the near-duplicate rule; a run's configuration embeds it.

    Attributes:
        threshold: Reject when ROUGE-L F-measure against the pool is strictly above this.
    """

    threshold: Annotated[float, Field(gt=0.0, le=1.0)] = PAPER_THRESHOLD


@dataclass
class _Prepared:
    """A tokenized and encoded text on its way into or against the index."""

    key: str
    tokens: list[str]
    code: Encoded


class NearDuplicateIndex:
    """A pool of texts that answers "is this a near-duplicate of something already here?".

    Args:
        threshold: Reject when ROUGE-L F-measure is strictly above this (paper: 0.7).
        num_perm: MinHash permutations of the signatures made by :meth:`signatures`.
        seed: MinHash seed; stored signatures given back must have been made with it.
        storage_config: ``{"type": "dict"}`` (default) keeps the pool in memory;
            ``{"type": "redis", "basename": b"...", "redis": {...}}`` shares it through
            Redis: texts in the hash ``basename + b"_texts"`` and keys, in the order added,
            in the list ``basename + b"_keys"``, which every index attached to the same
            basename replays into its own token index before it answers.
        text_lookup: Optional callable mapping keys to texts, used instead of storing texts
            in Redis (e.g. backed by the database).

    Raises:
        ConfigError: On a threshold outside [0, 1] or an unknown storage type.
        SignatureError: On MinHash settings that cannot be stored.
    """

    def __init__(
        self,
        *,
        threshold: float = PAPER_THRESHOLD,
        num_perm: int = DEFAULT_NUM_PERM,
        seed: int = 1,
        storage_config: dict[str, Any] | None = None,
        text_lookup: TextLookup | None = None,
    ) -> None:
        """Create an empty index (or attach to a shared Redis one); see the class docstring."""
        if not 0.0 <= threshold <= 1.0:
            raise ConfigError(f"threshold must be in [0, 1], got {threshold}")
        storage_config = storage_config or {"type": "dict"}
        if storage_config.get("type") not in ("dict", "redis"):
            raise ConfigError(f"storage type must be dict or redis, got {storage_config!r}")
        self.threshold = threshold
        self._hasher = MinHasher(num_perm=num_perm, seed=seed)
        self._encoder = TokenEncoder()
        self._candidates = TokenOverlapIndex(threshold)
        # The pool as indexed here, by member number of the token index, and back.
        self._members: list[str] = []
        # Codes in an object array (grown by doubling) so candidates are gathered in C.
        self._member_codes = np.empty(1024, dtype=object)
        self._member_of: dict[str, int] = {}
        self._text_lookup = text_lookup
        self._redis = None
        self._texts_key = self._log_key = b""
        self._replayed = 0  # entries of the Redis key log already indexed here
        if storage_config["type"] == "redis":
            import redis  # only needed for a shared index

            self._redis = redis.Redis(**storage_config.get("redis", {}))
            self._texts_key = storage_config["basename"] + b"_texts"
            self._log_key = storage_config["basename"] + b"_keys"

    def __len__(self) -> int:
        """Number of keys in the pool (shared pool in Redis mode)."""
        if self._redis is not None:
            return int(self._redis.hlen(self._texts_key))
        return len(self._members)

    def __contains__(self, key: object) -> bool:
        """Whether ``key`` is in the pool."""
        if not isinstance(key, str):
            return False
        if key in self._member_of:
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

        The index itself no longer needs them (it finds candidates from tokens); they are
        kept so that callers storing them with tasks keep working.

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
            text: The text.
            signature: Stored signature, validated but not needed.

        Raises:
            SignatureError: If ``signature`` was made with other settings.
        """
        self.add_many([(key, text, signature)])

    def add_many(self, items: Iterable[tuple[str, str, bytes | None]]) -> None:
        """Add many texts, e.g. to rebuild the index from the tasks stored for a run.

        Keys already present (or repeated within ``items``) are added once, so a rebuild
        after a crash is idempotent. In Redis mode a key already shared but not yet indexed
        here is indexed from the text given, without writing to Redis.

        Args:
            items: ``(key, text, signature or None)`` triples.

        Raises:
            SignatureError: If a signature was made with other settings.
        """
        fresh: dict[str, tuple[str, bytes | None]] = {}
        for key, text, signature in items:
            if key not in self._member_of:
                fresh.setdefault(key, (text, signature))
        prepared = self._prepare([(k, t, s) for k, (t, s) in fresh.items()])
        self._insert(prepared, {k: t for k, (t, _) in fresh.items()})

    def _shared(self, keys: list[str]) -> set[str]:
        """The subset of ``keys`` already in the Redis texts hash."""
        if self._redis is None or not keys:
            return set()
        flags = self._redis.hmget(self._texts_key, keys)
        return {k for k, v in zip(keys, flags, strict=True) if v is not None}

    def _insert(self, prepared: list[_Prepared], texts: Mapping[str, str]) -> None:
        """Index texts here, and share the ones Redis lacks: texts first, then the key log,
        so that a key any worker replays from the log has its text."""
        if not prepared:
            return
        if self._redis is not None:
            shared = self._shared([p.key for p in prepared])
            keys = [p.key for p in prepared if p.key not in shared]
            for start in range(0, len(keys), _REDIS_CHUNK):
                chunk = keys[start : start + _REDIS_CHUNK]
                stored = {k: ("" if self._text_lookup else texts[k]) for k in chunk}
                # redis-py's stubs key the mapping by their whole encodable union (dict keys
                # are invariant), which a dict[str, str] cannot be declared as.
                self._redis.hset(self._texts_key, mapping=stored)  # type: ignore[arg-type]
                self._redis.rpush(self._log_key, *chunk)
        for p in prepared:
            self._index_here(p)

    def _index_here(self, p: _Prepared) -> None:
        """Add one prepared text to this process's token index."""
        self._member_of[p.key] = self._candidates.add(p.tokens)
        member = len(self._members)
        self._members.append(p.key)
        if member == len(self._member_codes):
            grown = np.empty(2 * member, dtype=object)
            grown[:member] = self._member_codes
            self._member_codes = grown
        self._member_codes[member] = p.code

    def _replay(self) -> None:
        """Index the keys other workers added to the shared pool since the last replay.

        Raises:
            IndexStorageError: If a key's text cannot be found.
        """
        if self._redis is None:
            return
        logged = self._redis.lrange(self._log_key, self._replayed, -1)
        keys = [k for k in dict.fromkeys(_text(b) for b in logged) if k not in self._member_of]
        if keys:
            texts = self._texts_for(keys)
            for p in self._prepare([(k, texts[k]) for k in keys]):
                self._index_here(p)
        self._replayed += len(logged)

    def _texts_for(self, keys: list[str]) -> dict[str, str]:
        """Texts of shared keys, from ``text_lookup`` or the Redis hash.

        Raises:
            IndexStorageError: If a key's text cannot be found.
        """
        if self._text_lookup is not None:
            found = dict(self._text_lookup(keys))
        else:
            assert self._redis is not None
            raw = self._redis.hmget(self._texts_key, keys)
            found = {k: _text(v) for k, v in zip(keys, raw, strict=True) if v is not None}
        lost = [k for k in keys if k not in found]
        if lost:
            raise IndexStorageError(f"no text for pool keys {lost[:5]} (of {len(lost)})")
        return found

    @staticmethod
    def _best(
        code: Encoded, codes: list[Encoded], key_of: Callable[[int], str]
    ) -> tuple[str | None, float]:
        """Highest ROUGE-L among ``codes`` and its key (None when all are 0).

        Keys are looked up only for the best scores: ties go to the smallest key.
        """
        if not codes:
            return None, 0.0
        scores = rouge_l_many(code, codes)
        top = float(scores.max())
        if top <= 0.0:
            return None, 0.0
        return min(key_of(int(i)) for i in np.flatnonzero(scores == top)), top

    def _prepare(
        self, candidates: Sequence[tuple[str, str] | tuple[str, str, bytes | None]]
    ) -> list[_Prepared]:
        """Tokenize and encode candidates; signatures given with them are validated only.

        Raises:
            SignatureError: If a given signature was made with other settings.
        """
        for c in candidates:
            # A signature from older shingles is harmless now that matching needs none.
            if len(c) > 2 and c[2] is not None and not self._hasher.is_stale(c[2]):
                self._hasher.check(c[2])
        out = []
        for c in candidates:
            tokens = rouge_tokenize(c[1])
            out.append(_Prepared(c[0], tokens, self._encoder.encode(tokens)))
        return out

    def _pool_candidates(self, p: _Prepared) -> list[int]:
        """Members indexed here that may pass the threshold against ``p`` (never ``p``)."""
        members = self._candidates.candidates(p.tokens)
        itself = self._member_of.get(p.key)
        return members if itself is None else [i for i in members if i != itself]

    def _best_in_pool(self, p: _Prepared) -> tuple[str | None, float]:
        """Nearest pool text to ``p`` among the candidates, and its ROUGE-L."""
        members = self._pool_candidates(p)
        codes = self._member_codes[members].tolist()
        return self._best(p.code, codes, lambda j: self._members[members[j]])

    def nearest(self, text: str) -> tuple[str | None, float]:
        """The most similar pool text among those that could pass the threshold.

        Args:
            text: The query text.

        Returns:
            ``(key, ROUGE-L F)`` of the best candidate, or ``(None, 0.0)`` when no pool text
            has the token overlap and length to exceed the threshold (then none does).

        Raises:
            IndexStorageError: If a shared pool lacks the text of a key to replay.
        """
        p = self._prepare([("", text)])[0]
        self._replay()
        return self._best_in_pool(p)

    def check_batch(
        self,
        candidates: Sequence[tuple[str, str] | tuple[str, str, bytes | None]],
        *,
        add_accepted: bool = True,
    ) -> list[Verdict]:
        """Decide each candidate against the pool and the earlier accepted candidates.

        Args:
            candidates: ``(key, text)`` pairs, or ``(key, text, signature)`` triples (a
                signature is only validated: the decision uses the text's tokens).
            add_accepted: Add accepted candidates to the pool afterwards.

        Returns:
            One verdict per candidate, in order. Rejections have rule ``"near_duplicate"``,
            the nearest key and its ROUGE-L; acceptances carry the best similarity seen.

        Raises:
            DuplicateKeyError: If a key appears twice in ``candidates``.
            IndexStorageError: If a shared pool lacks the text of a key to replay.
        """
        keys = [c[0] for c in candidates]
        if len(set(keys)) != len(keys):
            raise DuplicateKeyError("candidate keys must be unique within a batch")
        prepared = self._prepare(candidates)
        self._replay()  # once per batch: one Redis round trip, not one per candidate
        accepted: list[_Prepared] = []
        verdicts = []
        for p in prepared:
            verdict = self._decide(p, accepted)
            verdicts.append(verdict)
            if verdict.accepted:
                accepted.append(p)
        if add_accepted:
            texts = {c[0]: c[1] for c in candidates}
            self._insert([p for p in accepted if p.key not in self._member_of], texts)
        return verdicts

    def _decide(self, p: _Prepared, accepted: list[_Prepared]) -> Verdict:
        """Verdict for one prepared candidate against the pool and the batch so far.

        Earlier accepted candidates of the batch are compared exactly, all of them: a batch
        is small and the C++ LCS over it costs less than indexing them.
        """
        pool_id, pool_sim = self._best_in_pool(p)
        earlier = [a for a in accepted if a.tokens] if p.tokens else []
        batch_id, batch_sim = self._best(
            p.code, [a.code for a in earlier], lambda j: earlier[j].key
        )
        in_batch = batch_id is not None and (pool_id is None or batch_sim > pool_sim)
        nearest, sim = (batch_id, batch_sim) if in_batch else (pool_id, pool_sim)
        where = "an earlier candidate of this batch" if in_batch else "the pool"
        return similarity_verdict(RULE, self.threshold, (nearest, sim), where)
