"""Prometheus metrics per inference server, from the backends' own counters.

The generators library keeps its counters as plain data (``OpenAIBackend.server_stats()``,
:class:`generators.backends.fleet.ServerStats`) and never imports prometheus_client; this
collector reads them at scrape time on the worker's own metrics port (``worker_metrics_port``):
the API process holds no backend.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from itertools import accumulate

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from generators.backends.base import Backend
from generators.backends.fleet import LATENCY_BUCKETS_S, ServerStats

PREFIX = "instructforge_backend_server"


def fleet_stats(backends: Iterable[Backend | None]) -> list[ServerStats]:
    """Every server's counters of the backends that talk to servers (openai)."""
    stats: list[ServerStats] = []
    for backend in backends:
        read = getattr(backend, "server_stats", None)
        if callable(read):
            stats.extend(read())
    return stats


class BackendServersCollector(Collector):
    """One series per server: up, in flight, requests, errors, latency, tokens, tokens/s.

    Args:
        backends: returns the backends alive now (read at each scrape).
    """

    def __init__(self, backends: Callable[[], Iterable[Backend | None]]) -> None:
        self.backends = backends

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily | HistogramMetricFamily]:
        stats = fleet_stats(self.backends())
        label = ["server"]
        up = GaugeMetricFamily(f"{PREFIX}_up", "1 while the server is in dispatch", labels=label)
        busy = GaugeMetricFamily(f"{PREFIX}_in_flight", "Requests in flight", labels=label)
        requests = CounterMetricFamily(f"{PREFIX}_requests", "Requests ended", labels=label)
        errors = CounterMetricFamily(f"{PREFIX}_errors", "Requests failed", labels=label)
        tokens = CounterMetricFamily(
            f"{PREFIX}_tokens", "Tokens of answered requests", labels=["server", "kind"]
        )
        rate = GaugeMetricFamily(
            f"{PREFIX}_tokens_per_second", "Completion tokens/s over the last minute", labels=label
        )
        probes = CounterMetricFamily(f"{PREFIX}_probe_failures", "Failed probes", labels=label)
        latency = HistogramMetricFamily(
            f"{PREFIX}_latency_seconds", "Request latency", labels=label
        )
        for s in stats:
            up.add_metric([s.root], 1.0 if s.up else 0.0)
            busy.add_metric([s.root], s.in_flight)
            requests.add_metric([s.root], s.requests)
            errors.add_metric([s.root], s.errors)
            tokens.add_metric([s.root, "prompt"], s.prompt_tokens)
            tokens.add_metric([s.root, "completion"], s.completion_tokens)
            rate.add_metric([s.root], s.tokens_per_s)
            probes.add_metric([s.root], s.probe_failures)
            bounds = [str(b) for b in LATENCY_BUCKETS_S] + ["+Inf"]
            cumulative = list(accumulate(s.latency_bucket_counts))
            latency.add_metric(
                [s.root], list(zip(bounds, cumulative, strict=True)), s.latency_sum_s
            )
        yield from (up, busy, requests, errors, tokens, rate, probes, latency)


def serve_worker_metrics(
    port: int, backends: Callable[[], Iterable[Backend | None]], *, addr: str = "127.0.0.1"
) -> None:
    """Expose the worker's per-server metrics on ``http://addr:port/metrics`` (a thread)."""
    registry = CollectorRegistry()
    registry.register(BackendServersCollector(backends))
    start_http_server(port, addr=addr, registry=registry)
