"""Several OpenAI-compatible servers behind one backend: dispatch, health, per-server bounds.

Each request goes to the up server with the fewest requests in flight (ties rotate), never to
one already holding ``max_in_flight`` requests: the caller waits for a slot instead. A server
whose request failed (connection error, timeout, 5xx) is taken out; it comes back only through
a health probe (``/health``, else ``/v1/models``), tried first after ``probe_backoff_s`` and then
at doubling intervals up to ``max_probe_backoff_s``. While no server is up, requests go to the
down ones anyway (the request is the probe), so a single server behaves as it always did.

Counters are plain data (:class:`ServerStats`): the library never imports prometheus_client;
the service turns them into metrics.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from generators.errors import ConfigError

BaseUrls = str | Sequence[str]
# Request latency buckets in seconds (upper bounds); a request that never finishes is an error.
LATENCY_BUCKETS_S: tuple[float, ...] = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
RATE_WINDOW_S = 60.0  # tokens/s is measured over the last minute


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


@dataclass(frozen=True)
class ServerStats:
    """One server's counters since the fleet was built (a snapshot, safe to keep).

    Attributes:
        root: the server root, e.g. ``http://127.0.0.1:8000``.
        up: taken into dispatch (False from a failure until a probe succeeds).
        in_flight: requests sent and not yet answered.
        requests: requests answered or failed.
        errors: requests that failed (transport error, timeout, 5xx, malformed body).
        latency_bucket_counts: requests per bucket of :data:`LATENCY_BUCKETS_S`, plus one
            last bucket for slower ones (not cumulative).
        latency_sum_s: total seconds of answered and failed requests.
        prompt_tokens: prompt tokens of answered requests.
        completion_tokens: completion tokens of answered requests.
        tokens_per_s: completion tokens per second over the last :data:`RATE_WINDOW_S`.
        probes: health probes sent; probe_failures: those that failed.
    """

    root: str
    up: bool
    in_flight: int
    requests: int
    errors: int
    latency_bucket_counts: tuple[int, ...]
    latency_sum_s: float
    prompt_tokens: int
    completion_tokens: int
    tokens_per_s: float
    probes: int
    probe_failures: int


@dataclass
class _Server:
    root: str
    up: bool = True
    in_flight: int = 0
    requests: int = 0
    errors: int = 0
    latency_counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS_S) + 1))
    latency_sum_s: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    recent: collections.deque[tuple[float, int]] = field(default_factory=collections.deque)
    probes: int = 0
    probe_failures: int = 0
    failed_probes_in_a_row: int = 0
    next_probe_at: float = 0.0
    probing: bool = False


class ServerFleet:
    """Chooses a server per request and keeps each server's health and counters.

    Thread-safe; every method is short and does no I/O (probes are the caller's).

    Args:
        roots: server roots (see :func:`server_roots`).
        max_in_flight: requests in flight per server at most (>= 1).
        probe_backoff_s: wait before the first probe of a server taken out.
        max_probe_backoff_s: the longest wait between probes (doubling from the first).
        clock: monotonic seconds (injected by tests).
    """

    def __init__(
        self,
        roots: list[str],
        *,
        max_in_flight: int = 16,
        probe_backoff_s: float = 1.0,
        max_probe_backoff_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_in_flight < 1:
            raise ConfigError(f"openai: max_in_flight must be >= 1, got {max_in_flight}")
        self.roots = roots
        self.max_in_flight = max_in_flight
        self._probe_backoff_s = probe_backoff_s
        self._max_probe_backoff_s = max_probe_backoff_s
        self._clock = clock
        self._started = clock()
        self._servers = [_Server(root) for root in roots]
        self._next = 0  # rotates ties, so an idle fleet still spreads a batch
        self._changed = threading.Condition()

    def acquire(self, avoid: int | None = None) -> int:
        """Pick a server with a free slot and count a request on it, waiting for a free slot;
        pair with :meth:`release`.

        Up servers first; if none is up, the down ones (the request then probes). ``avoid``
        (the server that just failed) is passed over when another candidate exists.
        """
        with self._changed:
            while (server := self._pick(avoid)) is None:
                self._changed.wait()
            return server

    def _pick(self, avoid: int | None) -> int | None:
        count = len(self._servers)
        order = [(self._next + k) % count for k in range(count)]
        up = [i for i in order if self._servers[i].up]
        candidates = up or order
        candidates = [i for i in candidates if i != avoid] or candidates
        free = [i for i in candidates if self._servers[i].in_flight < self.max_in_flight]
        if not free:
            return None
        server = min(free, key=lambda i: self._servers[i].in_flight)
        self._servers[server].in_flight += 1
        self._next = (server + 1) % count
        return server

    def release(
        self,
        server: int,
        *,
        failed: bool,
        latency_s: float,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
    ) -> None:
        """The request on ``server`` ended: count it; a failure takes the server out."""
        now = self._clock()
        with self._changed:
            state = self._servers[server]
            state.in_flight -= 1
            state.requests += 1
            state.latency_sum_s += latency_s
            bucket = sum(1 for bound in LATENCY_BUCKETS_S if latency_s > bound)
            state.latency_counts[bucket] += 1
            if failed:
                state.errors += 1
                if state.up:
                    state.up = False
                    state.failed_probes_in_a_row = 0
                    state.next_probe_at = now + self._probe_backoff_s
            else:
                state.up = True  # it answered: whatever a probe would say, it is up
                state.prompt_tokens += prompt_tokens
                state.completion_tokens += completion_tokens
                state.recent.append((now, completion_tokens))
            self._changed.notify_all()

    def due_probe(self) -> int | None:
        """A down server whose probe is due, now claimed for probing; None when none is due.

        The caller probes it and reports with :meth:`probed`.
        """
        now = self._clock()
        with self._changed:
            for index, state in enumerate(self._servers):
                if not state.up and not state.probing and state.next_probe_at <= now:
                    state.probing = True
                    return index
            return None

    def probed(self, server: int, *, healthy: bool) -> None:
        """Record a probe of ``server``: healthy brings it back, else the next waits longer."""
        now = self._clock()
        with self._changed:
            state = self._servers[server]
            state.probing = False
            state.probes += 1
            if healthy:
                state.up = True
                state.failed_probes_in_a_row = 0
            else:
                state.up = False
                state.probe_failures += 1
                state.failed_probes_in_a_row += 1
                wait = self._probe_backoff_s * 2**state.failed_probes_in_a_row
                state.next_probe_at = now + min(wait, self._max_probe_backoff_s)
            self._changed.notify_all()

    def outstanding(self) -> list[int]:
        """Requests in flight per server, in root order."""
        with self._changed:
            return [state.in_flight for state in self._servers]

    def stats(self) -> list[ServerStats]:
        """Every server's counters, in root order."""
        now = self._clock()
        window = max(min(RATE_WINDOW_S, now - self._started), 1e-9)
        with self._changed:
            snapshot = []
            for state in self._servers:
                while state.recent and state.recent[0][0] < now - RATE_WINDOW_S:
                    state.recent.popleft()
                snapshot.append(
                    ServerStats(
                        root=state.root,
                        up=state.up,
                        in_flight=state.in_flight,
                        requests=state.requests,
                        errors=state.errors,
                        latency_bucket_counts=tuple(state.latency_counts),
                        latency_sum_s=state.latency_sum_s,
                        prompt_tokens=state.prompt_tokens,
                        completion_tokens=state.completion_tokens,
                        tokens_per_s=sum(n for _, n in state.recent) / window,
                        probes=state.probes,
                        probe_failures=state.probe_failures,
                    )
                )
            return snapshot
