"""Per-server Prometheus metrics from the openai backend's plain counters."""

from __future__ import annotations

import httpx
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from generators.backends.openai import OpenAIBackend
from generators.types import SamplingParams
from service.backend_metrics import BackendServersCollector

SAMPLING = SamplingParams(temperature=0.0, top_p=1.0, max_tokens=8, seed=1)


def handler(request: httpx.Request) -> httpx.Response:
    """Server a answers; server b refuses every connection (a dead box)."""
    if request.url.host == "b.test":
        raise httpx.ConnectError("refused", request=request)
    if request.method == "GET":
        return httpx.Response(200, json={"data": []})
    if request.url.path == "/v1/chat/completions":
        return httpx.Response(400)
    return httpx.Response(
        200,
        json={
            "choices": [{"text": "x", "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 3},
        },
    )


def scrape(backend: OpenAIBackend | None) -> dict[str, float]:
    registry = CollectorRegistry()
    registry.register(BackendServersCollector(lambda: [backend]))
    text = generate_latest(registry).decode()
    return {
        f"{s.name}{sorted(s.labels.items())}": s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_each_server_has_its_series_and_a_dead_one_reads_down() -> None:
    backend = OpenAIBackend(
        "http://a.test,http://b.test",
        model="m",
        transport=httpx.MockTransport(handler),
        sleep=lambda s: None,
        max_concurrency=2,
    )
    out = backend.generate([f"p{i}" for i in range(6)], SAMPLING)
    assert all(c.finish_reason == "stop" and c.server == "http://a.test" for c in out)
    m = scrape(backend)
    a, b = [("server", "http://a.test")], [("server", "http://b.test")]
    assert m[f"instructforge_backend_server_up{a}"] == 1.0
    assert m[f"instructforge_backend_server_up{b}"] == 0.0  # out since discovery
    assert m[f"instructforge_backend_server_requests_total{a}"] == 6
    assert m[f"instructforge_backend_server_errors_total{a}"] == 0
    assert m[f"instructforge_backend_server_in_flight{a}"] == 0
    completion = [("kind", "completion"), ("server", "http://a.test")]
    assert m[f"instructforge_backend_server_tokens_total{completion}"] == 18
    assert m[f"instructforge_backend_server_latency_seconds_count{a}"] == 6
    inf = [("le", "+Inf"), ("server", "http://a.test")]
    assert m[f"instructforge_backend_server_latency_seconds_bucket{inf}"] == 6
    assert m[f"instructforge_backend_server_tokens_per_second{a}"] > 0
    assert m[f"instructforge_backend_server_probe_failures_total{b}"] == 1
    backend.close()


def test_no_server_backend_means_no_series() -> None:
    assert not any(k.startswith("instructforge_backend") for k in scrape(None))
