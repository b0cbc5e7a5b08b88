"""Near-duplicate detection: an exact token-overlap index finds candidates, ROUGE-L decides.

The Self-Instruct rule rejects a new instruction whose ROUGE-L F-measure against any pool
instruction exceeds 0.7; done exhaustively that is quadratic. Here an inverted token index
(:mod:`filters.candidates`) proposes the few pool texts whose token overlap and length can
still pass the threshold - a superset of every pool text the rule rejects on, so nothing is
missed - and the exact ROUGE-L (:mod:`filters.rouge`) is computed on those only, so every
decision is the paper's rule. Where the pool lives is a :class:`PoolStorage`: in this
process (:class:`MemoryPool`, the default), or anywhere a caller implements the protocol
(the service keeps one in Redis, shared by its workers: ``service.runs.shared_index``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated, Protocol

import numpy as np
from pydantic import ConfigDict, Field
from pydantic.dataclasses import dataclass as validated_dataclass

from filters.candidates import TokenOverlapIndex
from filters.errors import ConfigError, DuplicateKeyError
from filters.rouge import Encoded, TokenEncoder, rouge_l_many, rouge_tokenize
from filters.signatures import MinHasher
from filters.types import Verdict, similarity_verdict

RULE_NAME = "near_duplicate"
# 1: MinHash LSH candidates on rouge-score's [a-z0-9]+ tokens (it missed about 1% of
# paraphrases at F in (0.7, 0.8]). 2 was two changes made side by side: filters.rouge tokens
# version 2 (the same on ASCII; Chinese, Japanese, Thai... by character, other scripts by
# word), and candidates from an exact token-overlap index. 3: both together. 4: tokens
# version 3 (Myanmar and Tai Tham vowel signs no longer dropped).
RULE_VERSION = "4"
RULE = (RULE_NAME, RULE_VERSION, "ROUGE-L")
DEFAULT_NUM_PERM = 256
PAPER_THRESHOLD = 0.7  # Self-Instruct: reject above ROUGE-L 0.7 against the pool


@validated_dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class NearDuplicateConfig:
    """The per-run setting of the near-duplicate rule; a run's configuration embeds it.

    Attributes:
        threshold: Reject when ROUGE-L F-measure against the pool is strictly above this.
    """

    threshold: Annotated[float, Field(gt=0.0, le=1.0)] = PAPER_THRESHOLD


@dataclass
class PoolEntry:
    """A tokenized and encoded text on its way into or against the pool.

    Attributes:
        key: The text's key (a task id) in the pool.
        tokens: Its ROUGE-L tokens (:func:`filters.rouge.rouge_tokenize`).
        code: Its tokens encoded by the storage (:meth:`PoolStorage.encode_many`).
    """

    key: str
    tokens: list[str]
    code: Encoded


class PoolStorage(Protocol):
    """Where a :class:`NearDuplicateIndex` keeps its pool, and how it finds candidates there.

    An implementation returns, for a query, every pool text whose ROUGE-L F may exceed the
    threshold it was made for (a superset: :func:`filters.candidates.probe_size` and
    :func:`filters.candidates.may_pass` give the exact bound), encoded with its own
    :meth:`encode_many` so the index can compute the exact ROUGE-L against the query.
    """

    def __len__(self) -> int:
        """Number of keys in the pool."""
        ...

    def encode_many(self, token_lists: Sequence[Sequence[str]]) -> list[Encoded]:
        """The codes of token lists, comparable with each other and with the codes the next
        :meth:`candidates` call returns."""
        ...

    def present(self, keys: Sequence[str]) -> set[str]:
        """The subset of ``keys`` already in the pool."""
        ...

    def add(self, entries: Sequence[PoolEntry]) -> None:
        """Add entries whose keys are not in the pool (the caller checked :meth:`present`)."""
        ...

    def candidates(self, queries: Sequence[Sequence[str]]) -> list[list[tuple[str, Encoded]]]:
        """Per query (a token list), the ``(key, code)`` of each pool text that may pass."""
        ...


class MemoryPool:
    """A pool held in this process: a :class:`TokenOverlapIndex` and the encoded texts.

    Args:
        threshold: ROUGE-L F threshold the candidates are sought for.
    """

    def __init__(self, threshold: float) -> None:
        """Create an empty pool; see the class docstring."""
        self._encoder = TokenEncoder()
        self._candidates = TokenOverlapIndex(threshold)
        # The pool by member number of the token index, and back.
        self._members: list[str] = []
        # Codes in an object array (grown by doubling) so candidates are gathered in C.
        self._member_codes = np.empty(1024, dtype=object)
        self._member_of: dict[str, int] = {}

    def __len__(self) -> int:
        """Number of keys in the pool."""
        return len(self._members)

    def encode_many(self, token_lists: Sequence[Sequence[str]]) -> list[Encoded]:
        """The codes of token lists (this process's token ids)."""
        return [self._encoder.encode(tokens) for tokens in token_lists]

    def present(self, keys: Sequence[str]) -> set[str]:
        """The subset of ``keys`` already in the pool."""
        return {k for k in keys if k in self._member_of}

    def add(self, entries: Sequence[PoolEntry]) -> None:
        """Add entries (keys not yet in the pool)."""
        for p in entries:
            self._member_of[p.key] = self._candidates.add(p.tokens)
            member = len(self._members)
            self._members.append(p.key)
            if member == len(self._member_codes):
                grown = np.empty(2 * member, dtype=object)
                grown[:member] = self._member_codes
                self._member_codes = grown
            self._member_codes[member] = p.code

    def candidates(self, queries: Sequence[Sequence[str]]) -> list[list[tuple[str, Encoded]]]:
        """Per query, the pool texts that may pass the threshold, as ``(key, code)``."""
        out = []
        for tokens in queries:
            members = self._candidates.candidates(tokens)
            codes = self._member_codes[members].tolist()
            out.append([(self._members[m], c) for m, c in zip(members, codes, strict=True)])
        return out


class NearDuplicateIndex:
    """A pool of texts that answers "is this a near-duplicate of something already here?".

    Args:
        threshold: Reject when ROUGE-L F-measure is strictly above this (paper: 0.7).
        num_perm: MinHash permutations of the signatures made by :meth:`signatures`.
        seed: MinHash seed; stored signatures given back must have been made with it.
        storage: Where the pool lives; a :class:`MemoryPool` for ``threshold`` when None.
            A storage shared by several indexes (processes) gives each of them the pool
            every one of them added.

    Raises:
        ConfigError: On a threshold outside [0, 1].
        SignatureError: On MinHash settings that cannot be stored.
    """

    def __init__(
        self,
        *,
        threshold: float = PAPER_THRESHOLD,
        num_perm: int = DEFAULT_NUM_PERM,
        seed: int = 1,
        storage: PoolStorage | None = None,
    ) -> None:
        """Create an empty index (or one over a given storage); see the class docstring."""
        if not 0.0 <= threshold <= 1.0:
            raise ConfigError(f"threshold must be in [0, 1], got {threshold}")
        self.threshold = threshold
        self._hasher = MinHasher(num_perm=num_perm, seed=seed)
        self.storage: PoolStorage = storage if storage is not None else MemoryPool(threshold)

    def __len__(self) -> int:
        """Number of keys in the pool."""
        return len(self.storage)

    def __contains__(self, key: object) -> bool:
        """Whether ``key`` is in the pool."""
        return isinstance(key, str) and bool(self.storage.present([key]))

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
        after a crash is idempotent.

        Args:
            items: ``(key, text, signature or None)`` triples.

        Raises:
            SignatureError: If a signature was made with other settings.
        """
        self.storage.add(self.prepare_new(items))

    def prepare(self, items: Iterable[tuple[str, str, bytes | None]]) -> list[PoolEntry]:
        """``items`` tokenized and encoded for this index's storage (a key repeated: once).

        Args:
            items: ``(key, text, signature or None)`` triples.

        Returns:
            Entries in the order given, ready for :meth:`PoolStorage.add`.

        Raises:
            SignatureError: If a signature was made with other settings.
        """
        fresh: dict[str, tuple[str, bytes | None]] = {}
        for key, text, signature in items:
            fresh.setdefault(key, (text, signature))
        return self._prepare([(k, t, s) for k, (t, s) in fresh.items()])

    def prepare_new(self, items: Iterable[tuple[str, str, bytes | None]]) -> list[PoolEntry]:
        """As :meth:`prepare`, for the keys the pool lacks only."""
        entries = self.prepare(items)
        present = self.storage.present([e.key for e in entries])
        return [e for e in entries if e.key not in present]

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
    ) -> list[PoolEntry]:
        """Tokenize and encode candidates; signatures given with them are validated only.

        Raises:
            SignatureError: If a given signature was made with other settings.
        """
        for c in candidates:
            # A signature from older shingles is harmless now that matching needs none.
            if len(c) > 2 and c[2] is not None and not self._hasher.is_stale(c[2]):
                self._hasher.check(c[2])
        tokens = [rouge_tokenize(c[1]) for c in candidates]
        codes = self.storage.encode_many(tokens) if candidates else []
        return [PoolEntry(c[0], t, k) for c, t, k in zip(candidates, tokens, codes, strict=True)]

    def _best_in_pool(
        self, p: PoolEntry, found: list[tuple[str, Encoded]]
    ) -> tuple[str | None, float]:
        """Nearest pool text to ``p`` among its candidates (never ``p`` itself), and its ROUGE-L."""
        others = [(k, c) for k, c in found if k != p.key]
        return self._best(p.code, [c for _, c in others], lambda j: others[j][0])

    def nearest(self, text: str) -> tuple[str | None, float]:
        """The most similar pool text among those that could pass the threshold.

        Args:
            text: The query text.

        Returns:
            ``(key, ROUGE-L F)`` of the best candidate, or ``(None, 0.0)`` when no pool text
            has the token overlap and length to exceed the threshold (then none does).

        Raises:
            IndexStorageError: If a shared pool's storage fails.
        """
        p = self._prepare([("", text)])[0]
        return self._best_in_pool(p, self.storage.candidates([p.tokens])[0])

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
            IndexStorageError: If a shared pool's storage fails.
        """
        keys = [c[0] for c in candidates]
        if len(set(keys)) != len(keys):
            raise DuplicateKeyError("candidate keys must be unique within a batch")
        prepared = self._prepare(candidates)
        # One storage call per batch: a shared storage answers it in a few round trips.
        found = self.storage.candidates([p.tokens for p in prepared]) if prepared else []
        accepted: list[PoolEntry] = []
        verdicts = []
        for p, pool in zip(prepared, found, strict=True):
            verdict = self._decide(p, pool, accepted)
            verdicts.append(verdict)
            if verdict.accepted:
                accepted.append(p)
        if add_accepted and accepted:
            present = self.storage.present([p.key for p in accepted])
            self.storage.add([p for p in accepted if p.key not in present])
        return verdicts

    def _decide(
        self, p: PoolEntry, pool: list[tuple[str, Encoded]], accepted: list[PoolEntry]
    ) -> Verdict:
        """Verdict for one prepared candidate against the pool and the batch so far.

        Earlier accepted candidates of the batch are compared exactly, all of them: a batch
        is small and the C++ LCS over it costs less than indexing them.
        """
        pool_id, pool_sim = self._best_in_pool(p, pool)
        earlier = [a for a in accepted if a.tokens] if p.tokens else []
        batch_id, batch_sim = self._best(
            p.code, [a.code for a in earlier], lambda j: earlier[j].key
        )
        in_batch = batch_id is not None and (pool_id is None or batch_sim > pool_sim)
        nearest, sim = (batch_id, batch_sim) if in_batch else (pool_id, pool_sim)
        where = "an earlier candidate of this batch" if in_batch else "the pool"
        return similarity_verdict(RULE, self.threshold, (nearest, sim), where)
