"""The viewer's login: an API key in, a signed session cookie out, and a CSRF token per session.

The cookie carries the key's stored sha256 (never the key), when it was issued (epoch
milliseconds), an expiry and an HMAC-SHA256 of all three under the viewer's secret, so a cookie
cannot be made from a leaked database row alone. Every request looks the key up, as the REST
API does: a revoked key ends its sessions, and so does a logout, which records its time on the
key (`api_keys.viewer_logout_at`) so that a copy of the cookie kept after logout is no session
either; it ends every session of that key, in any browser. The cookie is HttpOnly,
SameSite=Strict and, over https, Secure.

CSRF: every state-changing form carries a token derived from the session (HMAC of the cookie
under the secret: the synchroniser-token pattern without server-side state, OWASP CSRF
Prevention Cheat Sheet, "Signed Double-Submit Cookie"). SameSite=Strict alone already keeps
other sites' forms from sending the cookie; the token also covers same-site subdomains.

Login CSRF (a foreign page logging the browser in under the attacker's own key, so what the user
then does lands in the attacker's view): the login form gets the same kind of token, bound to a
random pre-session nonce in its own short-lived cookie (`instructforge_login`, HttpOnly,
SameSite=Strict, path `/ui/login`), since no session exists yet to bind it to (OWASP CSRF
Prevention Cheat Sheet, "Login CSRF": pre-sessions).

The secret is `Settings.viewer_secret`, or else a random one kept in `<data_dir>/viewer-secret`
(mode 0600), shared by the API processes of one data directory.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

COOKIE = "instructforge_session"
SESSION_VERSION = "v2"
LOGIN_COOKIE = "instructforge_login"
LOGIN_LIFETIME_S = 3600


def load_secret(configured: str | None, data_dir: Path) -> bytes:
    """The signing secret: the configured one, else `<data_dir>/viewer-secret`, made once."""
    if configured:
        return configured.encode()
    path = data_dir / "viewer-secret"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another API process made it first
            pass
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32))
    return path.read_text().strip().encode()


def _mac(secret: bytes, *parts: str) -> str:
    digest = hmac.new(secret, "\n".join(parts).encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


@dataclass(frozen=True)
class Session:
    """A valid session: the key's sha256, when it was issued (epoch ms) and the CSRF token of
    its forms."""

    key_hash: str
    csrf: str
    issued_ms: int = 0

    def ended_by(self, logout: datetime | None) -> bool:
        """Whether a logout at `logout` (None: never) ended this session."""
        return logout is not None and self.issued_ms <= int(logout.timestamp() * 1000)


def issue(secret: bytes, key_hash: str, *, lifetime_s: int, now: float | None = None) -> str:
    """A cookie value for the key with this sha256, valid for `lifetime_s` seconds."""
    at = now if now is not None else time.time()
    issued, expires = str(int(at * 1000)), str(int(at + lifetime_s))
    mac = _mac(secret, key_hash, issued, expires)
    return ".".join((SESSION_VERSION, key_hash, issued, expires, mac))


def read(secret: bytes, cookie: str | None, *, now: float | None = None) -> Session | None:
    """The session of a cookie value, or None when it is missing, forged or expired."""
    if not cookie:
        return None
    parts = cookie.split(".")
    if len(parts) != 5 or parts[0] != SESSION_VERSION:
        return None
    _, key_hash, issued, expires, mac = parts
    if not hmac.compare_digest(mac, _mac(secret, key_hash, issued, expires)):
        return None
    if not issued.isdigit() or not expires.isdigit():
        return None
    if int(expires) < (now if now is not None else time.time()):
        return None
    return Session(key_hash=key_hash, csrf=_mac(secret, "csrf", cookie), issued_ms=int(issued))


def csrf_matches(session: Session, token: str | None) -> bool:
    """Whether a submitted form's token is this session's."""
    return token is not None and hmac.compare_digest(session.csrf, token)


def login_nonce() -> str:
    """A new pre-session nonce for the login form's cookie (192 random bits, URL-safe)."""
    return secrets.token_urlsafe(24)


def login_token(secret: bytes, nonce: str) -> str:
    """The login form's CSRF token for the pre-session `nonce`."""
    return _mac(secret, "login", nonce)


def login_token_matches(secret: bytes, nonce: str | None, token: str | None) -> bool:
    """Whether a submitted login form's token belongs to the browser's pre-session nonce."""
    if not nonce or token is None:
        return False
    return hmac.compare_digest(login_token(secret, nonce), token)
