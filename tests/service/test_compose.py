"""docker-compose.yml's own environment builds a backend that calls the right URLs.

Parsed with a YAML library (anchors and ``<<`` merges resolved as compose resolves them), so a
change to the compose file is tested as written.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from generators.backends import make_backend
from generators.types import SamplingParams
from service.runs.config import RunConfig
from service.runs.pipeline import backend_options
from service.settings import Settings

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"


def compose_environment(service: str) -> dict[str, str]:
    spec = yaml.safe_load(COMPOSE.read_text())
    return {k: str(v) for k, v in spec["services"][service]["environment"].items()}


def called_urls(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, prompts: int, probes: list[str]
) -> list[str]:
    """Build Settings and the run's openai backend from `env`; the URLs its generation requests
    went to (every request's URL, probes included, is appended to `probes`)."""
    for name in list(Settings.model_fields):
        monkeypatch.delenv(f"INSTRUCTFORGE_{name.upper()}", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    config = RunConfig(
        seed_set="default", backend=settings.default_backend, model=settings.default_model
    )
    seen: list[str] = []
    lock = threading.Lock()

    def handler(request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        with lock:
            probes.append(url)
        if request.url.path.endswith("/version"):
            return httpx.Response(200, json={"version": "test"})
        if request.url.path.endswith("/models"):
            return httpx.Response(200, json={"data": [{"id": config.model}]})
        sent = json.loads(request.content or b"{}")
        if isinstance(sent.get("prompt"), str) and sent["prompt"].startswith("p"):
            with lock:
                seen.append(url)
        # A completions-shaped answer: the endpoint probe (chat) falls back to completions.
        body: dict[str, Any] = {"choices": [{"text": " ok", "finish_reason": "stop"}]}
        return httpx.Response(200, json=body)

    options = backend_options(config, settings) | {"transport": httpx.MockTransport(handler)}
    backend = make_backend(config.backend, model=config.model, **options)
    try:
        sampling = SamplingParams(temperature=0.0, top_p=1.0, max_tokens=4)
        out = backend.generate([f"p{i}" for i in range(prompts)], sampling)
    finally:
        backend.close()
    assert [c.finish_reason for c in out] == ["stop"] * prompts
    return seen


@pytest.mark.parametrize("service", ["worker", "api"])
def test_compose_environment_calls_the_vllm_servers_completions_url(
    service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = compose_environment(service)
    assert env["INSTRUCTFORGE_DEFAULT_BACKEND"] == "openai"
    every: list[str] = []
    urls = called_urls(env, monkeypatch, prompts=3, probes=every)
    assert set(urls) == {"http://vllm:8000/v1/completions"}
    assert every and all(u.startswith("http://vllm:8000/") and "/v1/v1" not in u for u in every)


def test_compose_environment_with_several_servers_uses_each(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = compose_environment("worker")
    env["INSTRUCTFORGE_OPENAI_BASE_URL"] += ", http://vllm-2:8000/v1"
    every: list[str] = []
    urls = called_urls(env, monkeypatch, prompts=6, probes=every)
    assert set(urls) == {"http://vllm:8000/v1/completions", "http://vllm-2:8000/v1/completions"}
    assert all("/v1/v1" not in u for u in every)
