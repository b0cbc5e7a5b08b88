"""Least privilege for inference: a write key gets what the operator configured, no more.

Real HTTP through the app on SQLite and PostgreSQL. A write key that names an option, server or
model path beyond the settings gets 403 `admin_scope_required` saying so, and no run exists;
an admin key may, as long as the value is valid. A model that cannot load is a 422 before
anything is stored, for runs and `/v1/generate` alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import shared_data
from tests.service.api_client import ApiHarness, api_harness

SEEDS = shared_data("self_instruct_seed_tasks.jsonl").read_bytes()
SERVER = "http://vllm:8000/v1"


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[ApiHarness]:
    (tmp_path / "models" / "mine").mkdir(parents=True)
    (tmp_path / "shared-models" / "theirs").mkdir(parents=True)
    with api_harness(
        db_url,
        tmp_path,
        openai_base_url=SERVER,
        allowed_base_urls=["https://fleet.internal:9000"],
        allowed_model_dirs=[tmp_path / "shared-models"],
    ) as harness:
        r = harness.client.post("/v1/seed-sets?name=si", content=SEEDS, headers=harness.headers())
        assert r.status_code == 201, r.text
        yield harness


def _run(api: ApiHarness, scope: str, **config: Any) -> Any:
    return api.client.post(
        "/v1/runs", json={"seed_set": "si", **config}, headers=api.headers(scope)
    )


def _runs(api: ApiHarness) -> int:
    return len(api.client.get("/v1/runs", headers=api.headers("read")).json()["items"])


def _options(backend: str, **options: Any) -> dict[str, Any]:
    return {"backend": backend, "backend_options": options}


BEYOND_WRITE = [
    pytest.param(
        _options("vllm", engine_kwargs={"trust_remote_code": True}),
        "engine_kwargs",
        id="vllm-trust-remote-code",
    ),
    pytest.param(
        _options("vllm", cpu_omp_threads_bind="0-63"), "cpu_omp_threads_bind", id="vllm-cpu"
    ),
    pytest.param(_options("transformers", cache_dir="/etc"), "cache_dir", id="cache-dir"),
    pytest.param(_options("transformers", num_threads=64), "num_threads", id="worker-threads"),
    pytest.param(_options("openai", model_dir="/root"), "model_dir", id="openai-model-dir"),
    pytest.param(
        _options("openai", base_url="http://169.254.169.254"), "169.254", id="metadata-url"
    ),
    pytest.param(
        _options("openai", base_url="http://vllm:8000.evil.net/v1"), "evil", id="lookalike-host"
    ),
    pytest.param(
        _options("openai", base_url=f"{SERVER},http://10.0.0.1:80"), "10.0.0.1", id="comma-list"
    ),
    pytest.param(
        _options("openai", base_url=["https://fleet.internal:9001"]), "9001", id="other-port"
    ),
    pytest.param({"model": "/etc"}, "/etc", id="model-dir-outside"),
    pytest.param({"model": "../../../../../../tmp"}, "tmp", id="model-dir-traversal"),
    pytest.param({"model": "/no/such/model"}, "/no/such/model", id="missing-model-outside"),
    pytest.param({"model": "x" * 300}, "xxx", id="name-too-long"),
]


@pytest.mark.parametrize(("config", "named"), BEYOND_WRITE)
def test_a_write_key_gets_403_saying_admin_is_needed(
    api: ApiHarness, config: dict[str, Any], named: str
) -> None:
    r = _run(api, "write", **config)
    assert r.status_code == 403, r.text
    body = r.json()
    assert body["code"] == "admin_scope_required", body
    assert "admin key" in body["message"] and named in body["message"], body
    assert _runs(api) == 0


@pytest.mark.parametrize(
    "config",
    [
        pytest.param(_options("transformers", batch_size=4, dtype="float32"), id="tuning"),
        pytest.param({"backend": "openai"}, id="configured-server"),
        pytest.param(_options("openai", base_url="http://vllm:8000/"), id="other-spelling"),
        pytest.param(_options("openai", base_url=["https://fleet.internal:9000"]), id="allowed"),
        pytest.param({"model": "smollm2-135m"}, id="embedded-model"),
    ],
)
def test_a_write_key_may_use_what_is_configured(api: ApiHarness, config: dict[str, Any]) -> None:
    assert _run(api, "write", **config).status_code == 202
    assert _runs(api) == 1


def test_model_directories_under_the_allowed_roots(api: ApiHarness, tmp_path: Path) -> None:
    for model in (tmp_path / "models" / "mine", tmp_path / "shared-models" / "theirs"):
        r = _run(api, "write", model=str(model))
        assert r.status_code == 202, r.text
    missing = _run(api, "write", model=str(tmp_path / "models" / "gone"))
    assert missing.status_code == 422 and "no such model directory" in missing.json()["message"]
    assert _runs(api) == 2


@pytest.mark.parametrize(
    ("config", "status"),
    [
        pytest.param(BEYOND_WRITE[0].values[0], 202, id="trust-remote-code"),
        pytest.param(BEYOND_WRITE[5].values[0], 202, id="any-url"),
        pytest.param({"model": "/"}, 202, id="any-directory"),
        pytest.param({"model": "/no/such/model"}, 422, id="missing-model"),
        pytest.param({"model": "x" * 300}, 422, id="name-too-long"),
        pytest.param({"model": "gpt2"}, 422, id="unknown-name"),
        pytest.param(
            {"backend": "openai", "backend_options": {"base_url": "ftp://x"}}, 422, id="not-http"
        ),
        pytest.param(
            {"backend": "openai", "backend_options": {"base_url": 5}}, 422, id="url-not-text"
        ),
    ],
)
def test_an_admin_key_may_go_beyond_but_not_past_validity(
    api: ApiHarness, config: dict[str, Any], status: int
) -> None:
    r = _run(api, "admin", **config)
    assert r.status_code == status, r.text
    assert _runs(api) == (1 if status == 202 else 0)


@pytest.mark.parametrize(
    ("scope", "model", "status"),
    [
        pytest.param("admin", "/no/such/model", 422, id="admin-missing-path"),
        pytest.param("write", "/no/such/model", 403, id="write-path-outside"),
        pytest.param("write", "models/absent", 403, id="write-relative-path"),
    ],
)
def test_generate_refuses_a_model_before_creating_anything(
    api: ApiHarness, tmp_path: Path, scope: str, model: str, status: int
) -> None:
    r = api.client.post(
        "/v1/generate",
        json={"seed_set": "si", "prompts": 1, "backend": "transformers", "model": model},
        headers=api.headers(scope),
    )
    assert r.status_code == status, r.text
    assert _runs(api) == 0
    missing = api.client.post(
        "/v1/generate",
        json={"seed_set": "si", "model": str(tmp_path / "models" / "gone")},
        headers=api.headers(scope),
    )
    assert missing.status_code == 422, missing.text
    assert _runs(api) == 0
