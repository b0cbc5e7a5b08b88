"""API key checks on the event loop: verified keys are remembered for a few seconds.

Every request needs its key checked; asking the database each time doubled the cost of a read.
A verified key is kept for `api_key_cache_seconds`, so a revoked key stops working on every
API process within that time. Unknown keys are never cached: a key created a moment ago works
at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import anyio.to_thread
from cachetools import TTLCache

from service.storage.db import Database
from service.storage.keys import find_api_key, hash_key


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's id (idempotency records are per key), name and scopes."""

    id: int
    name: str
    scopes: tuple[str, ...]


class KeyVerifier:
    """Maps a presented key to its Principal, through a short-lived cache.

    Used only from the event loop thread, so the cache needs no lock.
    """

    def __init__(self, database: Database, ttl_seconds: float, max_keys: int = 10_000) -> None:
        self.database = database
        self._cache: TTLCache[str, Principal] | None = (
            TTLCache(maxsize=max_keys, ttl=ttl_seconds) if ttl_seconds > 0 else None
        )

    async def verify(self, plaintext: str) -> Principal | None:
        digest = hash_key(plaintext)
        if self._cache is not None and (hit := self._cache.get(digest)) is not None:
            return hit
        principal = await anyio.to_thread.run_sync(self._lookup, plaintext)
        if principal is not None and self._cache is not None:
            self._cache[digest] = principal
        return principal

    def _lookup(self, plaintext: str) -> Principal | None:
        with self.database.reads() as session:
            key = find_api_key(session, plaintext)
            if key is None:
                return None
            return Principal(id=key.id, name=key.name, scopes=tuple(key.scopes))
