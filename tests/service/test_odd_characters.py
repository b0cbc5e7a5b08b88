"""Odd characters in seed and eval files: refused with their line, or carried through intact.

Over HTTP (the real ASGI app) and the CLI, on SQLite and PostgreSQL: a lone surrogate is a 422
`invalid_file` naming its line (never a 500), and text holding Unicode line separators, astral
characters or a BOM travels seed file -> database -> export -> trainer reader unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from service.cli import app
from service.export import ExportSpec, create_version
from service.seed_files import parse_seed_file
from service.settings import get_settings
from service.storage.db import Database
from service.storage.seeds import import_seed_set
from tests.service.api_client import ApiHarness, api_harness
from trainer.dataset import load_dataset_version

# Characters str.splitlines() breaks on (or that are easy to lose) which JSON strings may hold.
ODD = "\u2028 \u2029 \x85 \x1c \x1d \x1e \x0b \x0c \r \t \ufeff \U0001f600 \U00020000 é"


def _seed(number: int, **overrides: object) -> bytes:
    row = {
        "id": f"t{number}",
        "name": f"n{number}",
        "instruction": f"Echo the text {number}.",
        "instances": [{"input": "", "output": "ok"}],
    }
    return json.dumps(row | overrides).encode()


# (the bad line as raw JSON text, what it shows): an escaped lone surrogate in any string field.
BAD_LINES = [
    ('"instances": [{"input": "\\udc00", "output": "ok"}]', "low surrogate in an input"),
    ('"instruction": "Say \\ud800 twice."', "high surrogate in the instruction"),
    ('"instances": [{"input": "", "output": "x\\ud83d"}]', "high surrogate at an output's end"),
    ('"name": "\\udfff"', "low surrogate in the name"),
]


def _bad_file(bad: str, at: int) -> bytes:
    bad_line = b'{"id": "bad", "name": "bad", "instruction": "Do it.", ' + bad.encode() + b"}"
    if "instances" not in bad:
        bad_line = bad_line[:-1] + b', "instances": [{"input": "", "output": "ok"}]}'
    lines = [_seed(n) for n in range(1, 4)]
    lines.insert(at - 1, bad_line)
    return b"\n".join(lines) + b"\n"


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[ApiHarness]:
    with api_harness(db_url, tmp_path) as harness:
        yield harness


@pytest.mark.parametrize(("bad", "why"), BAD_LINES, ids=[b[1] for b in BAD_LINES])
@pytest.mark.parametrize("at", [1, 4])
def test_rest_refuses_a_lone_surrogate_with_its_line(
    api: ApiHarness, bad: str, why: str, at: int
) -> None:
    for route in ("/v1/seed-sets?name=s",):
        r = api.client.post(route, content=_bad_file(bad, at), headers=api.headers())
        assert r.status_code == 422, (why, r.text)
        body = r.json()
        assert body["code"] == "invalid_file" and body["message"].startswith(f"line {at}: ")
        assert "surrogate" in body["message"], why
    assert api.client.get("/v1/seed-sets", headers=api.headers("read")).json() == []


@pytest.mark.parametrize("at", [1, 2])
def test_rest_refuses_a_lone_surrogate_in_an_eval_file(api: ApiHarness, at: int) -> None:
    lines = [b'{"id": "e1", "instruction": "Fine."}', b'{"id": "e2", "instruction": "Fine too."}']
    lines[at - 1] = b'{"id": "bad", "instruction": "Bad \\udc00 here."}'
    r = api.client.post("/v1/eval-sets?name=e", content=b"\n".join(lines), headers=api.headers())
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "invalid_file" and r.json()["message"].startswith(f"line {at}: ")


NUL_FILES = [
    (
        "seed-sets",
        b'{"id": "b", "name": "b", "instruction": "Echo \\u0000 this.", '
        b'"instances": [{"input": "", "output": "ok"}]}',
    ),
    (
        "seed-sets",
        b'{"id": "b", "name": "b", "instruction": "Echo this.", '
        b'"instances": [{"input": "", "output": "\\u0000"}]}',
    ),
    ("seed-sets", b'{"instruction": "Echo.", "input": "x\\u0000", "output": "ok"}'),
    ("eval-sets", b'{"id": "b", "instruction": "Echo", "instances": [{"input": "\\u0000"}]}'),
]


@pytest.mark.parametrize(("route", "line"), NUL_FILES)
def test_rest_refuses_nul_with_its_line_on_every_database(
    api: ApiHarness, route: str, line: bytes
) -> None:
    if b"name" in line:
        first = _seed(1)
    elif route == "seed-sets":
        first = b'{"instruction": "Echo.", "input": "", "output": "ok"}'
    else:
        first = b'{"id": "a", "instruction": "Fine."}'
    r = api.client.post(f"/v1/{route}?name=n", content=first + b"\n" + line, headers=api.headers())
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "invalid_file"
    assert r.json()["message"].startswith("line 2: ") and "U+0000" in r.json()["message"]


def test_rest_accepts_unicode_line_separators_inside_text(api: ApiHarness) -> None:
    data = b"\xef\xbb\xbf" + _seed(1, instruction=f"Echo {ODD} back.") + b"\r\n\n" + _seed(2)
    r = api.client.post("/v1/seed-sets?name=odd", content=data, headers=api.headers())
    assert r.status_code == 201, r.text
    assert r.json()["task_count"] == 2


@pytest.fixture
def cli_env(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("INSTRUCTFORGE_DATABASE_URL", db_url)
    get_settings.cache_clear()
    yield db_url
    get_settings.cache_clear()


@pytest.mark.parametrize("command", ["seeds", "evals"])
def test_cli_refuses_a_lone_surrogate_in_one_line_without_traceback(
    cli_env: str, tmp_path: Path, command: str
) -> None:
    path = tmp_path / "file.jsonl"
    if command == "seeds":
        path.write_bytes(_bad_file(BAD_LINES[0][0], 2))
    else:
        path.write_bytes(b'{"id": "a", "instruction": "x"}\n{"id": "b", "instruction": "\\udc00"}')
    result = CliRunner().invoke(app, [command, "import", str(path), "--name", "s"])
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)  # typer.Exit(1), not an escaped error
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    assert "(invalid_file): line 2: " in lines[0] and "surrogate" in lines[0]


def test_odd_text_travels_from_seed_file_to_the_trainer_unchanged(
    database: Database, tmp_path: Path
) -> None:
    instruction = f"Echo{ODD}back."
    output = f"{ODD}!"
    data = b"\n".join(
        [
            _seed(1, instruction=instruction, instances=[{"input": ODD, "output": output}]),
            _seed(2),
        ]
    )
    with database.transaction() as s:
        import_seed_set(s, name="odd", seed_file=parse_seed_file(data))
    spec = ExportSpec(validation_ratio=0)
    info = create_version(database, dataset="odd", spec=spec, datasets_dir=tmp_path)
    dataset = load_dataset_version(info.path)
    contents = [[m["content"] for m in e.messages] for e in dataset.train]
    assert [f"{instruction}\n\n{ODD}", output] in contents and len(contents) == 2
    table = pq.read_table(info.path / "train.messages.parquet").to_pylist()
    assert [[m["content"] for m in row["messages"]] for row in table] == contents
