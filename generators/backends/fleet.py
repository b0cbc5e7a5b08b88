"""Several OpenAI-compatible servers behind one backend: least-outstanding dispatch, failover.

Each request goes to the server with the fewest requests in flight among those not cooling
down; a server that failed (connection error, timeout, 5xx) cools down for ``cooldown_s`` and
is then tried again by the next request that picks it (re-admission needs no separate probe),
and a retry avoids the server that just failed when another exists.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

from generators.errors import ConfigError

BaseUrls = str | Sequence[str]


def server_roots(base_url: BaseUrls) -> list[str]:
    """Server roots from base URLs written either way OpenAI clients write them.

    Args:
        base_url: one URL, several separated by commas, or a list of URLs. A trailing ``/v1``
            (the OpenAI SDK's convention, e.g. ``http://vllm:8000/v1``) and trailing slashes
            are dropped, since the backend adds ``/v1/completions`` itself.

    Returns:
        The roots, in order, without duplicates, e.g. ``["http://vllm:8000"]``.

    Raises:
        ConfigError: no URL, or one that is not ``http(s)://host[:port][/path]``.
    """
    parts = base_url.split(",") if isinstance(base_url, str) else list(base_url)
    roots: list[str] = []
    for part in parts:
        url = str(part).strip().rstrip("/")
        url = url.removesuffix("/v1").rstrip("/")
        split = urlsplit(url)
        if split.scheme not in ("http", "https") or not split.netloc:
            raise ConfigError(f"openai: base URL {part!r} is not http(s)://host[:port]")
        if url not in roots:
            roots.append(url)
    if not roots:
        raise ConfigError("openai: no base URL given")
    return roots


class ServerFleet:
    """Chooses a server per request and remembers which are busy or failing.

    Args:
        roots: server roots (see :func:`server_roots`).
        cooldown_s: how long a failed server is passed over while others are available.
        clock: monotonic seconds (injected by tests).
    """

    def __init__(
        self,
        roots: list[str],
        *,
        cooldown_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.roots = roots
        self._cooldown_s = cooldown_s
        self._clock = clock
        self._outstanding = [0] * len(roots)
        self._down_until = [0.0] * len(roots)
        self._next = 0  # rotates ties, so an idle fleet still spreads a batch
        self._lock = threading.Lock()

    def acquire(self, avoid: int | None = None) -> int:
        """Pick a server and count a request in flight on it; pair with :meth:`release`."""
        with self._lock:
            now = self._clock()
            order = [(self._next + k) % len(self.roots) for k in range(len(self.roots))]
            choices = [i for i in order if i != avoid] or order
            healthy = [i for i in choices if self._down_until[i] <= now] or choices
            server = min(healthy, key=lambda i: self._outstanding[i])
            self._outstanding[server] += 1
            self._next = (server + 1) % len(self.roots)
            return server

    def release(self, server: int, *, failed: bool) -> None:
        """The request on ``server`` ended; a failure starts its cool-down, a success ends it."""
        with self._lock:
            self._outstanding[server] -= 1
            self._down_until[server] = self._clock() + self._cooldown_s if failed else 0.0

    def outstanding(self) -> list[int]:
        """Requests in flight per server, in root order."""
        with self._lock:
            return list(self._outstanding)
