"""Backend options are typed per backend and checked when a run is created, never in a worker.

Each backend's options model (``generators.backends.options``) mirrors its constructor; every
option of every backend is sent with values of the wrong type, size or shape, over real HTTP
on SQLite and PostgreSQL, and must be a 422 naming ``backend_options.<option>`` with no run
stored. An unknown option is a 422 naming it, for a write key and an admin key alike; a valid
value of every option is accepted (admin key, so that access rules do not get in the way).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import pytest
from pydantic.fields import FieldInfo

from generators.backends import make_backend
from generators.backends.openai import OpenAIBackend
from generators.backends.options import OPTIONS, check_backend_options
from generators.backends.transformers import TransformersBackend
from generators.backends.vllm import VllmBackend
from generators.errors import ConfigError
from tests.conftest import shared_data
from tests.service.api_client import ApiHarness, api_harness

SEEDS = shared_data("self_instruct_seed_tasks.jsonl").read_bytes()
CONSTRUCTORS = {
    "transformers": TransformersBackend,
    "vllm": VllmBackend,
    "openai": OpenAIBackend,
}
# Constructor keywords that are not options a run can carry: provenance naming (set by the
# caller) and in-process objects (tests inject them).
NOT_OPTIONS = {"model_name", "transport", "sleep", "model", "model_dir", "base_url"}
# A valid value of each option whose default is None (the others use their default).
VALID = {
    "cache_dir": "/tmp/models",
    "num_threads": 2,
    "max_model_len": 2048,
    "cpu_omp_threads_bind": "0-1",
    "cpu_reserved_cpus": 0,
    "cpu_kvcache_space_gib": 2,
    "engine_kwargs": {"gpu_memory_utilization": 0.5},
    "base_url": ["http://vllm:8000/v1", "http://vllm2:8000"],
    "model_dir": "/tmp/models/m",
    "api_key": "sk-test",
}


def _types(field: FieldInfo) -> set[Any]:
    """The plain types a field takes (None and Annotated wrappers removed; Literal kept)."""
    stack: list[Any] = [field.annotation]
    out: set[Any] = set()
    while stack:
        t = stack.pop()
        origin = get_origin(t)
        if origin is Literal:
            out.add(Literal)
        elif origin in (list, dict):
            out.add(origin)
        elif get_args(t):  # a union or Annotated
            stack.extend(a for a in get_args(t) if a is not type(None))
        else:
            out.add(t)
    return out


def bad_values(field: FieldInfo) -> list[Any]:
    """Values of the wrong type, size or shape for this field."""
    types = _types(field)
    bad: list[Any] = [[[1]], {"nested": {"a": [1, {"b": 2}]}}]
    if dict in types:
        return ["x", 5, [1]]
    if int in types or float in types:
        bad += ["16", "1e3", True, 2**63 - 1, -(2**63), -1, 1e18]
        if int in types:
            bad += [1.5, 2.0]
    if bool in types:
        bad += ["true", 1, 0, None]
    if str in types or Path in types or Literal in types:
        bad += [5, 1.5, True]
    if str in types or Literal in types:
        bad += ["", "x" * 5000]
    if Literal in types:
        bad += ["no-such-choice", "AUTO", "auto\u202e"]
    if field.default is not None:
        bad.append(None)
    return bad


@pytest.mark.parametrize("kind", sorted(OPTIONS))
def test_each_options_model_mirrors_its_backends_constructor(kind: str) -> None:
    params = inspect.signature(CONSTRUCTORS[kind].__init__).parameters
    keywords = {n: p for n, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}
    fields = OPTIONS[kind].model_fields
    # Every JSON-able keyword is an option, with the constructor's own default.
    assert set(keywords) - NOT_OPTIONS <= set(fields)
    for name, field in fields.items():
        if name == "cache_dir":  # taken by make_backend for the in-process engines
            continue
        positional = name == "base_url" and kind == "openai"
        assert name in keywords or positional, name
        if not positional:
            assert field.default == keywords[name].default, name


def _cases(kind: str) -> list[tuple[str, Any]]:
    return [
        (name, value)
        for name, field in OPTIONS[kind].model_fields.items()
        for value in bad_values(field)
    ]


@pytest.mark.parametrize("kind", sorted(OPTIONS))
def test_every_option_refuses_wrong_types_and_sizes(kind: str) -> None:
    for name, value in _cases(kind):
        with pytest.raises(ConfigError) as caught:
            check_backend_options(kind, {name: value})
        assert str(caught.value).startswith(name), (name, value, str(caught.value))
    for name in OPTIONS[kind].model_fields:
        value = VALID.get(name, OPTIONS[kind].model_fields[name].default)
        assert name in check_backend_options(kind, {name: value}), name


def test_make_backend_checks_the_same_options() -> None:
    with pytest.raises(ConfigError, match="batch_size"):
        make_backend("transformers", model="/nonexistent", batch_size="16")
    with pytest.raises(ConfigError, match="transport"):
        # only an in-process caller may hand over Python objects, and only the known ones
        check_backend_options("openai", {"transport": object()})


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[ApiHarness]:
    with api_harness(db_url, tmp_path, openai_base_url="http://vllm:8000/v1") as harness:
        r = harness.client.post("/v1/seed-sets?name=si", content=SEEDS, headers=harness.headers())
        assert r.status_code == 201, r.text
        yield harness


def _runs(api: ApiHarness) -> int:
    return len(api.client.get("/v1/runs?limit=500", headers=api.headers("read")).json()["items"])


@pytest.mark.parametrize("kind", sorted(OPTIONS))
def test_wrong_option_values_are_422_at_creation_naming_the_option(
    api: ApiHarness, kind: str
) -> None:
    sent = 0
    for name, value in _cases(kind):
        body = {"seed_set": "si", "backend": kind, "backend_options": {name: value}}
        r = api.client.post("/v1/runs", json=body, headers=api.headers("admin"))
        assert r.status_code == 422, (name, value, r.text)
        error = r.json()
        assert error["code"] == "invalid_request", error
        assert f"backend_options.{name}" in error["message"], (name, value, error)
        sent += 1
    assert sent > 0 and _runs(api) == 0
    # ...and each valid value is taken, stored as sent.
    for name, field in OPTIONS[kind].model_fields.items():
        value = VALID.get(name, field.default)
        body = {"seed_set": "si", "backend": kind, "backend_options": {name: value}}
        r = api.client.post("/v1/runs", json=body, headers=api.headers("admin"))
        assert r.status_code == 202, (name, r.text)
        assert r.json()["config"]["backend_options"] == {name: value}
    assert _runs(api) == len(OPTIONS[kind].model_fields)


@pytest.mark.parametrize("scope", ["write", "admin"])
@pytest.mark.parametrize(
    ("kind", "option"),
    [
        ("transformers", "batchsize"),
        ("transformers", "max_model_len"),  # vllm's, not this backend's
        ("vllm", "batch_size"),
        ("openai", "trust_remote_code"),
        ("openai", "transport"),
        ("openai", "Base_URL"),
    ],
)
def test_unknown_options_are_422_naming_them(
    api: ApiHarness, scope: str, kind: str, option: str
) -> None:
    body = {"seed_set": "si", "backend": kind, "backend_options": {option: 1}}
    r = api.client.post("/v1/runs", json=body, headers=api.headers(scope))
    assert r.status_code == 422, r.text
    assert f"backend_options.{option}" in r.json()["message"]
    assert _runs(api) == 0


def test_a_write_key_sending_a_wrong_type_gets_422_not_403(api: ApiHarness) -> None:
    body = {"seed_set": "si", "backend_options": {"batch_size": "16"}}
    r = api.client.post("/v1/runs", json=body, headers=api.headers("write"))
    assert r.status_code == 422 and "backend_options.batch_size" in r.json()["message"], r.text
