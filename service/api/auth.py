"""API key checks on the event loop: verified keys are remembered for a few seconds.

Every request needs its key checked; asking the database each time doubled the cost of a read.
A verified key is kept for `api_key_cache_seconds`, so a revoked key stops working on every
API process within that time. Unknown keys are never cached: a key created a moment ago works
at once. A lookup reads on the API's asyncio engine, on the event loop: no worker thread whose
GIL would stall the loop when a remembered key expires under load.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cachetools import TTLCache

from service.storage.db import AsyncEngine, read_async
from service.storage.keys import hash_key, read_api_key


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's id (idempotency records are per key), name and scopes."""

    id: int
    name: str
    scopes: tuple[str, ...]
    # The viewer's last logout with this key (sessions issued before it are over), or None.
    viewer_logout_at: datetime | None = None


class KeyVerifier:
    """Maps a presented key to its Principal, through a short-lived cache.

    Used only from the event loop thread, so the cache needs no lock.
    """

    def __init__(self, ttl_seconds: float, max_keys: int = 10_000) -> None:
        self._cache: TTLCache[str, Principal] | None = (
            TTLCache(maxsize=max_keys, ttl=ttl_seconds) if ttl_seconds > 0 else None
        )

    async def verify(self, engine: AsyncEngine, plaintext: str) -> Principal | None:
        """The key's Principal, or None for an unknown or revoked key.

        Raises:
            DatabaseUnavailable: the database cannot be reached.
        """
        return await self.verify_digest(engine, hash_key(plaintext))

    async def verify_digest(self, engine: AsyncEngine, digest: str) -> Principal | None:
        """`verify` for a key known by its stored sha256 (the viewer's session holds that).

        Raises:
            DatabaseUnavailable: the database cannot be reached.
        """
        if self._cache is not None and (hit := self._cache.get(digest)) is not None:
            return hit
        key = await read_async(engine, lambda conn: read_api_key(conn, digest))
        if key is None or key["revoked_at"] is not None:
            return None
        principal = Principal(
            id=key["id"],
            name=key["name"],
            scopes=tuple(key["scopes"]),
            viewer_logout_at=key["viewer_logout_at"],
        )
        if self._cache is not None:
            self._cache[digest] = principal
        return principal

    def forget(self, digest: str) -> None:
        """Drop the key with this sha256 from this process's cache (after a change to its row);
        other processes see the change when their entry expires."""
        if self._cache is not None:
            self._cache.pop(digest, None)
