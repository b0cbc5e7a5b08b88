"""MinHash signatures over ROUGE tokens, and their byte form for storage next to a task.

The service stores one with every task (the ``tasks.minhash`` column). Since rule version 2
the near-duplicate index finds candidates with an exact token index
(:mod:`filters.candidates`) and does not need them; it still accepts and validates stored
ones so that existing callers and rows keep working. The bytes carry a small header (format,
permutation scheme, number of permutations, seed, shingle scheme) so that a signature made
with other settings is refused instead of silently matching nothing.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import numpy as np
from datasketch import LeanMinHash, MinHash

from filters.errors import SignatureError

# Shingles are the set of ROUGE unigrams (filters.rouge.rouge_tokenize). Measured on Alpaca
# instructions, unigram sets with bands of 5 rows keep every pair that ROUGE-L > 0.7 rejects
# while bigrams lose 5-10% of them (one edited word breaks two bigrams).
# 1: unigrams of tokens version 1 ([a-z0-9]+ only). 2: unigrams of tokens version 2 (any
# script); equal to 1 on ASCII text, but a stored signature does not say whether its text was.
# 3: unigrams of tokens version 3 (Myanmar and Tai Tham vowel signs kept).
SHINGLE_SCHEME = 3
_SCHEME = "affine32"
_MAGIC = b"IFMH"
_HEADER = struct.Struct("<4sBBHIB")  # magic, format, scheme, num_perm, seed, shingles
_FORMAT = 1
_SCHEME_CODES = {"affine32": 1}


def shingles(tokens: Sequence[str]) -> list[bytes]:
    """The shingle set of a tokenized text, as the bytes MinHash hashes.

    Args:
        tokens: ROUGE tokens of the text.

    Returns:
        Distinct unigrams, UTF-8 encoded, in first-seen order.
    """
    return [t.encode() for t in dict.fromkeys(tokens)]


class MinHasher:
    """Compute, serialise and parse MinHash signatures with fixed settings.

    Args:
        num_perm: Number of permutations (signature length).
        seed: Seed of the permutations; signatures with other seeds cannot be compared.
    """

    def __init__(self, *, num_perm: int, seed: int) -> None:
        """Create a hasher; see the class docstring for the arguments."""
        if not 2 <= num_perm <= 0xFFFF:
            raise SignatureError(f"num_perm must be in [2, 65535], got {num_perm}")
        if not 0 <= seed <= 0xFFFFFFFF:
            raise SignatureError(f"seed must fit in 32 bits, got {seed}")
        self.num_perm = num_perm
        self.seed = seed

    def minhashes(self, token_lists: Sequence[Sequence[str]]) -> list[LeanMinHash]:
        """MinHashes of many tokenized texts, each computed with datasketch's ``update_batch``.

        One MinHash object is reset and reused: copying a MinHash per text (what
        ``MinHash.bulk`` does) re-validates its permutations and cost more than the hashing.

        Args:
            token_lists: One token list per text.

        Returns:
            One LeanMinHash per text, in order.
        """
        sketch = MinHash(num_perm=self.num_perm, seed=self.seed, scheme=_SCHEME)
        out = []
        for tokens in token_lists:
            sketch.clear()
            sketch.update_batch(shingles(tokens))
            out.append(LeanMinHash(seed=self.seed, hashvalues=sketch.hashvalues, scheme=_SCHEME))
        return out

    def to_bytes(self, minhash: MinHash) -> bytes:
        """Serialise a MinHash: header, then hash values as uint32 little-endian.

        Args:
            minhash: A MinHash made by this hasher.

        Returns:
            The signature bytes (13 + 4 * num_perm bytes).
        """
        header = _HEADER.pack(
            _MAGIC, _FORMAT, _SCHEME_CODES[_SCHEME], self.num_perm, self.seed, SHINGLE_SCHEME
        )
        values: bytes = minhash.hashvalues.astype("<u4").tobytes()
        return header + values

    def is_stale(self, signature: bytes) -> bool:
        """Whether a signature matches these settings but was made from older shingles.

        Such a signature (e.g. stored before the tokens learnt non-Latin scripts) cannot be
        compared with new ones; the caller re-hashes its text instead of parsing it.

        Args:
            signature: Bytes from :meth:`to_bytes`, possibly of an older release.

        Returns:
            True when only the shingle scheme differs from the current one.
        """
        if len(signature) < _HEADER.size:
            return False
        magic, fmt, scheme, num_perm, seed, shingle = _HEADER.unpack_from(signature)
        expected = (_MAGIC, _FORMAT, _SCHEME_CODES[_SCHEME], self.num_perm, self.seed)
        return (magic, fmt, scheme, num_perm, seed) == expected and shingle < SHINGLE_SCHEME

    def from_bytes(self, signature: bytes) -> LeanMinHash:
        """Parse signature bytes back into a MinHash without re-hashing any text.

        Args:
            signature: Bytes from :meth:`to_bytes`.

        Returns:
            A LeanMinHash.

        Raises:
            SignatureError: If the bytes are malformed or were made with other settings.
        """
        return LeanMinHash(seed=self.seed, hashvalues=self.check(signature), scheme=_SCHEME)

    def check(self, signature: bytes) -> np.ndarray:
        """Validate signature bytes against this hasher's settings.

        Args:
            signature: Bytes from :meth:`to_bytes`.

        Returns:
            The hash values (uint32 array of length ``num_perm``).

        Raises:
            SignatureError: If the bytes are malformed or were made with other settings.
        """
        if len(signature) < _HEADER.size:
            raise SignatureError(f"signature too short ({len(signature)} bytes)")
        magic, fmt, scheme, num_perm, seed, shingle = _HEADER.unpack_from(signature)
        expected = (_MAGIC, _FORMAT, _SCHEME_CODES[_SCHEME], self.num_perm, self.seed)
        if (magic, fmt, scheme, num_perm, seed) != expected or shingle != SHINGLE_SCHEME:
            raise SignatureError(
                "signature made with other settings: "
                f"format={fmt} scheme={scheme} num_perm={num_perm} seed={seed} "
                f"shingles={shingle}; this index uses num_perm={self.num_perm} "
                f"seed={self.seed} shingles={SHINGLE_SCHEME}"
            )
        body = signature[_HEADER.size :]
        if len(body) != 4 * self.num_perm:
            raise SignatureError(
                f"signature body has {len(body)} bytes, expected {4 * self.num_perm}"
            )
        return np.frombuffer(body, dtype="<u4").astype(np.uint32)
