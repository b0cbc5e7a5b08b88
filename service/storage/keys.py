"""API keys: random secrets shown once, stored only as a sha256 hash, each with scopes."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.orm import Session

from service.errors import InvalidInput
from service.storage.models import ApiKey, utcnow

SCOPES = ("read", "write", "admin")
KEY_PREFIX = "ifk_"


def hash_key(plaintext: str) -> str:
    # A plain sha256 suffices: keys are 256-bit random, so there is nothing to brute-force.
    return hashlib.sha256(plaintext.encode()).hexdigest()


def create_api_key(session: Session, *, name: str, scopes: list[str]) -> tuple[ApiKey, str]:
    """Create a key; returns the row and the plaintext, which is never stored.

    Raises:
        InvalidInput: an unknown scope.
    """
    unknown = set(scopes) - set(SCOPES)
    if unknown or not scopes:
        raise InvalidInput(f"scopes must be a non-empty subset of {SCOPES}, got {scopes}")
    plaintext = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        name=name,
        prefix=plaintext[: len(KEY_PREFIX) + 6],
        key_hash=hash_key(plaintext),
        scopes=sorted(set(scopes)),
    )
    session.add(key)
    session.flush()
    return key, plaintext


def revoke_api_key(session: Session, key_id: int) -> bool:
    key = session.get(ApiKey, key_id)
    if key is None:
        return False
    key.revoked_at = utcnow()
    return True


def end_viewer_sessions(session: Session, key_id: int) -> None:
    """Log the viewer out of every session of this key: sessions issued before now are over."""
    key = session.get(ApiKey, key_id)
    if key is not None:
        key.viewer_logout_at = utcnow()


def list_api_keys(session: Session) -> list[ApiKey]:
    """Every key, revoked ones included, oldest first."""
    return list(session.scalars(select(ApiKey).order_by(ApiKey.id)))


_BY_HASH = select(
    ApiKey.id, ApiKey.name, ApiKey.scopes, ApiKey.revoked_at, ApiKey.viewer_logout_at
).where(ApiKey.key_hash == bindparam("key_hash"))


def read_api_key(conn: Connection, key_hash: str) -> dict[str, Any] | None:
    """The key stored with this hash (`id`, `name`, `scopes`, `revoked_at`: revoked or not,
    `viewer_logout_at`), or None."""
    row = conn.execute(_BY_HASH, {"key_hash": key_hash}).mappings().first()
    return dict(row) if row is not None else None


def has_scope(scopes: Iterable[str], scope: str) -> bool:
    """Whether a key with `scopes` may act with `scope`: admin implies write implies read."""
    rank = {s: i for i, s in enumerate(SCOPES)}
    return any(rank[s] >= rank[scope] for s in scopes if s in rank)
