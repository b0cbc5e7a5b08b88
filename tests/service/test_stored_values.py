"""The `storable` rule at the edge: values no database stores alike are a 422 naming the field.

Through the real app on SQLite and PostgreSQL: huge integers, NaN/Infinity, U+0000, lone
surrogates and deep nesting in every stored JSON body (run config, export spec, generate
request) and in uploaded seed and eval lines. Nothing is created, later reads still answer,
and no response carries the database's own error text.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from service.storable import MAX_DEPTH
from tests.conftest import shared_data
from tests.service.api_client import ApiHarness, api_harness

SEEDS = shared_data("self_instruct_seed_tasks.jsonl").read_bytes()
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[ApiHarness]:
    with api_harness(db_url, tmp_path, max_request_bytes=2_000_000) as harness:
        r = harness.client.post("/v1/seed-sets?name=si", content=SEEDS, headers=harness.headers())
        assert r.status_code == 201, r.text
        yield harness


def nested(depth: int, leaf: str = "1") -> str:
    """JSON text of arrays nested `depth` deep around `leaf`."""
    return "[" * depth + leaf + "]" * depth


def _assert_refused(r: Any, field: str) -> None:
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["code"] == "invalid_request" and field in body["message"], body
    for leak in ("psycopg", "sqlite", "DETAIL", "CONTEXT"):
        assert leak not in r.text


# Raw JSON text of a run body, so 1e400, NaN and 300-deep nesting reach the server as sent.
RUN_BODIES = [
    pytest.param('{"batch_size": 9223372036854775808}', "backend_options.batch_size", id="2**63"),
    pytest.param(
        '{"batch_size": -9223372036854775809}', "backend_options.batch_size", id="-2**63-1"
    ),
    pytest.param('{"batch_size": 1e400}', "backend_options.batch_size", id="1e400"),
    pytest.param('{"batch_size": 9.3e18}', "backend_options.batch_size", id="float-2**63"),
    pytest.param('{"x": [1.5, -1e300]}', "backend_options.x[1]", id="float-huge-in-list"),
    pytest.param('{"dtype": NaN}', "backend_options.dtype", id="nan"),
    pytest.param('{"dtype": -Infinity}', "backend_options.dtype", id="-infinity"),
    pytest.param(
        '{"x": [1, {"y": [2, 99999999999999999999999]}]}',
        "backend_options.x[1].y[1]",
        id="huge-in-lists",
    ),
    pytest.param('{"x": ["a", "b\\u0000"]}', "backend_options.x[1]", id="nul-in-list"),
    pytest.param('{"k\\u0000": 1}', "backend_options", id="nul-key"),
    # Lone surrogates (JSON's \\ud800 escape): not Unicode text, so no database stores them.
    pytest.param('{"engine_kwargs": {"a": "\\ud800"}}', "engine_kwargs.a", id="lone-high"),
    pytest.param('{"engine_kwargs": {"a": ["x", "\\udfff"]}}', "engine_kwargs.a[1]", id="lone-low"),
    pytest.param('{"engine_kwargs": {"\\udc00k": 1}}', "engine_kwargs", id="lone-in-key"),
    pytest.param('{"dtype": "\\udc00\\ud800"}', "backend_options.dtype", id="reversed-pair"),
    pytest.param('{"x": ' + nested(MAX_DEPTH) + "}", "backend_options", id="depth-33"),
    pytest.param('{"x": ' + nested(300) + "}", "backend_options", id="depth-300"),
    pytest.param('{"x": ' + nested(900, "{}") + "}", "backend_options", id="depth-900"),
]


@pytest.mark.parametrize(("options", "field"), RUN_BODIES)
def test_run_options_that_cannot_be_stored_are_422(
    api: ApiHarness, options: str, field: str
) -> None:
    body = '{"seed_set": "si", "backend_options": ' + options + "}"
    r = api.client.post("/v1/runs", content=body, headers={**api.headers("admin"), **JSON})
    _assert_refused(r, field)
    listed = api.client.get("/v1/runs", headers=api.headers("read"))
    assert listed.status_code == 200 and listed.json()["items"] == []


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        pytest.param('"model": "a\\u0000b"', "model", id="nul-model"),
        pytest.param('"bootstrap": {"prompts_per_iteration": 1e400}', "bootstrap", id="inf-typed"),
        pytest.param('"near_duplicates": {"threshold": NaN}', "near_duplicates", id="nan-typed"),
    ],
)
def test_typed_run_fields_follow_the_same_rule(api: ApiHarness, fields: str, field: str) -> None:
    body = '{"seed_set": "si", ' + fields + "}"
    r = api.client.post("/v1/runs", content=body, headers={**api.headers(), **JSON})
    _assert_refused(r, field)


def test_largest_storable_integer_round_trips(api: ApiHarness) -> None:
    # engine_kwargs is the one option that takes any JSON (vLLM checks it), and an admin's
    big = {"engine_kwargs": {"max_num_batched_tokens": 2**63 - 1}}
    body = {"seed_set": "si", "backend": "vllm", "backend_options": big}
    r = api.client.post("/v1/runs", json=body, headers=api.headers("admin"))
    assert r.status_code == 202, r.text
    listed = api.client.get("/v1/runs", headers=api.headers("read"))
    assert listed.status_code == 200
    assert listed.json()["items"][0]["config"]["backend_options"] == big


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        pytest.param('{"split_seed": 18446744073709551616}', "split_seed", id="2**64"),
        pytest.param('{"runs": [1, -9223372036854775809]}', "runs[1]", id="-2**63-1-in-list"),
        pytest.param('{"min_scores": {"refusal": 1e400}}', "min_scores.refusal", id="1e400"),
        # found by the fuzzer: PostgreSQL read this back as an integer beyond 64 bits (500)
        pytest.param('{"min_scores": {"": 9.223372036854776e18}}', "min_scores.", id="float-2**63"),
        pytest.param('{"min_scores": {"refusal": "NaN"}}', "min_scores.refusal", id="nan-string"),
        pytest.param('{"seed_sets": ["si\\u0000"]}', "seed_sets[0]", id="nul"),
        # found by the hostile-client pass: a lone surrogate reached the spec hash (500)
        pytest.param('{"eval_sets": ["\\udc00"]}', "eval_sets[0]", id="lone-surrogate"),
        pytest.param('{"seed_sets": ["a", "b\\ud83d"]}', "seed_sets[1]", id="half-emoji"),
        pytest.param('{"min_scores": {"\\ud800": 0.5}}', "min_scores", id="lone-in-key"),
        pytest.param('{"max_per_type": {"\\udfffx": 1}}', "max_per_type", id="lone-in-cap-key"),
        pytest.param('{"max_per_type": {"generation": 1e30}}', "max_per_type", id="float-cap"),
    ],
)
def test_export_spec_values_that_cannot_be_stored_are_422(
    api: ApiHarness, spec: str, field: str
) -> None:
    r = api.client.post("/v1/datasets/d/versions", content=spec, headers={**api.headers(), **JSON})
    assert r.status_code == 422, r.text
    assert field in r.json()["message"]
    assert api.client.get("/v1/datasets", headers=api.headers("read")).json() == []


@pytest.mark.parametrize("seed_set", ["s\\u0000i", "s\\ud800i"])
def test_generate_request_values_follow_the_rule(api: ApiHarness, seed_set: str) -> None:
    body = '{"seed_set": "' + seed_set + '", "prompts": 1}'
    r = api.client.post("/v1/generate", content=body, headers={**api.headers(), **JSON})
    _assert_refused(r, "seed_set")
    assert api.client.get("/v1/runs", headers=api.headers("read")).json()["items"] == []


def _line(instruction: str = "Say hi.", **extra: Any) -> bytes:
    record = {"name": instruction, "instruction": instruction, "is_classification": False}
    record["instances"] = [{"input": "", "output": "hi"}]
    return orjson.dumps({**record, **extra})


def _deep_line(depth: int) -> bytes:
    return b'{"instruction": "x", "instances": ' + nested(depth).encode() + b"}"


@pytest.mark.parametrize("route", ["seed-sets", "eval-sets"])
@pytest.mark.parametrize(
    ("line", "problem"),
    [
        pytest.param(_deep_line(5000), "line 2: ", id="5000-deep"),
        pytest.param(_deep_line(1000), "line 2: instances: nested more than", id="1000-deep"),
        pytest.param(_deep_line(MAX_DEPTH + 1), "line 2: instances: nested", id="33-deep"),
        pytest.param(b'{"instruction": "x", "n": 1e400}', "line 2: ", id="1e400"),
        pytest.param(
            b'{"instruction": "x", "instances": [{"input": "", "n": 18446744073709551615}]}',
            "line 2: instances[0].n: integer outside",
            id="u64-max",
        ),
    ],
)
def test_upload_lines_that_cannot_be_stored_name_the_line(
    api: ApiHarness, route: str, line: bytes, problem: str
) -> None:
    data = _line() + b"\n" + line + b"\n" + _line("Say bye.") + b"\n"
    r = api.client.post(f"/v1/{route}?name=deep", content=data, headers=api.headers())
    assert r.status_code == 422, r.text
    assert r.json()["message"].startswith(problem), r.json()
    assert api.client.get(f"/v1/{route}/deep", headers=api.headers("read")).status_code == 404


def test_deep_json_array_upload_names_the_problem(api: ApiHarness) -> None:
    data = b"[" + _line() + b", " + nested(600).encode() + b"]"
    r = api.client.post("/v1/seed-sets?name=arr", content=data, headers=api.headers())
    assert r.status_code == 422, r.text
    assert r.json()["message"].startswith("line 2: "), r.json()


# Found by the hostile-client pass: 200k run ids or 100k seed set names in an export spec became
# as many bound parameters, past SQLite's and psycopg's caps (500 on both databases).
@pytest.mark.parametrize(
    ("field", "item"),
    [("runs", 1), ("seed_sets", "si"), ("eval_sets", "e"), ("statuses", "accepted")],
)
def test_export_spec_lists_are_bounded(api: ApiHarness, field: str, item: object) -> None:
    from service.export.spec import MAX_LISTED

    for n in (MAX_LISTED + 1, 100_000):
        r = api.client.post(
            "/v1/datasets/d/versions", json={field: [item] * n}, headers=api.headers()
        )
        assert r.status_code == 422, r.text
        assert field in r.json()["message"] and "1000" in r.json()["message"], r.text
    assert api.client.get("/v1/datasets", headers=api.headers("read")).json() == []


def test_export_spec_at_the_list_bound_is_served(api: ApiHarness) -> None:
    from service.export.spec import MAX_LISTED

    run = api.client.post("/v1/runs", json={"seed_set": "si"}, headers=api.headers()).json()
    # Repeats are as many bound parameters as distinct values would be.
    spec = {"runs": [run["id"]] * MAX_LISTED, "seed_sets": ["si"] * MAX_LISTED}
    r = api.client.post("/v1/datasets/d/versions?wait=true", json=spec, headers=api.headers())
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "ready"
