"""Seed import: the real seeds go in whole; every bad input names its line and writes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from service.cli import app, default_seed_path
from service.errors import Conflict, InvalidInput, SeedFileError
from service.seed_files import parse_seed_file
from service.settings import get_settings
from service.storage.db import Database
from service.storage.models import Instance, SeedSet, Task
from service.storage.seeds import import_seed_set
from tests.conftest import shared_data

GOOD = {
    "id": "t1",
    "name": "n1",
    "instruction": "Say hi to the user",
    "is_classification": False,
    "instances": [{"input": "", "output": "Hi!"}],
}


def _line(**overrides: object) -> str:
    return json.dumps({**GOOD, **overrides})


def _counts(db: Database) -> tuple[int, int, int]:
    with db.sessions() as s:
        return tuple(
            s.scalar(select(func.count()).select_from(m)) or 0 for m in (SeedSet, Task, Instance)
        )  # type: ignore[return-value]


@pytest.fixture
def cli_env(db_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("INSTRUCTFORGE_DATABASE_URL", db_url)
    get_settings.cache_clear()
    yield db_url
    get_settings.cache_clear()


def test_self_instruct_seeds_import_whole(database: Database) -> None:
    seed_file = parse_seed_file(shared_data("self_instruct_seed_tasks.jsonl").read_bytes())
    with database.transaction() as s:
        outcome = import_seed_set(s, name="si", seed_file=seed_file)
    assert outcome.created
    with database.sessions() as s:
        tasks = list(s.scalars(select(Task).where(Task.seed_set_id == outcome.seed_set.id)))
        assert len(tasks) == 175
        assert sum(bool(t.is_classification) for t in tasks) == 26
        assert {t.origin for t in tasks} == {"seed"}
        n_instances = s.scalar(select(func.count()).select_from(Instance))
    raw = [
        json.loads(x)
        for x in shared_data("self_instruct_seed_tasks.jsonl").read_text().splitlines()
    ]
    assert n_instances == sum(len(r["instances"]) for r in raw)
    by_ext = {t.external_id: t for t in tasks}
    assert by_ext["seed_task_0"].instruction == raw[0]["instruction"]


def test_reimport_same_bytes_is_noop_and_other_bytes_conflict(database: Database) -> None:
    data = (_line() + "\n").encode()
    with database.transaction() as s:
        assert import_seed_set(s, name="x", seed_file=parse_seed_file(data)).created
    with database.transaction() as s:
        assert not import_seed_set(s, name="x", seed_file=parse_seed_file(data)).created
    assert _counts(database) == (1, 1, 1)
    with pytest.raises(Conflict), database.transaction() as s:
        import_seed_set(
            s, name="x", seed_file=parse_seed_file((_line(name="other") + "\n").encode())
        )
    assert _counts(database) == (1, 1, 1)


BAD_CASES = [
    ("bad json", "{not json", "invalid JSON"),
    (
        "missing instruction",
        json.dumps({k: v for k, v in GOOD.items() if k != "instruction"}),
        "instruction",
    ),
    ("empty output", _line(instances=[{"input": "a", "output": ""}]), "output"),
    ("blank output", _line(instances=[{"input": "a", "output": "   "}]), "output is empty"),
    ("wrong type", _line(is_classification="yes"), "is_classification"),
    ("instances not a list", _line(instances="x"), "instances"),
    ("duplicate id", _line(), "duplicate id"),
    ("not an object", "[1, 2]", "JSON object"),
]


@pytest.mark.parametrize(("case", "bad", "needle"), BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_bad_line_names_line_and_writes_nothing(
    cli_env: str, tmp_path: Path, case: str, bad: str, needle: str
) -> None:
    good2 = _line(id="t2", name="n2")
    path = tmp_path / "seeds.jsonl"
    path.write_text("\n".join([_line(), good2, bad]) + "\n")
    result = CliRunner().invoke(app, ["seeds", "import", str(path), "--name", "s"])
    assert result.exit_code == 1, result.output
    assert "line 3" in result.output and needle in result.output, result.output
    db = Database(cli_env)
    try:
        assert _counts(db) == (0, 0, 0)
    finally:
        db.dispose()


def test_duplicate_name_without_ids_is_refused() -> None:
    no_id = {k: v for k, v in GOOD.items() if k != "id"}
    data = (json.dumps(no_id) + "\n" + json.dumps(no_id) + "\n").encode()
    with pytest.raises(SeedFileError, match="line 2: duplicate name 'n1'"):
        parse_seed_file(data)


def test_not_utf8_names_the_line() -> None:
    data = (_line() + "\n").encode() + b'{"instruction": "caf\xe9"}\n'
    with pytest.raises(SeedFileError, match="line 2: not valid UTF-8"):
        parse_seed_file(data)


def test_alpaca_format(tmp_path: Path) -> None:
    data = b'{"instruction": "Add the numbers.", "input": "2 3", "output": "5"}\n'
    parsed = parse_seed_file(data)
    assert parsed.format == "alpaca"
    assert parsed.records[0].instances == [("2 3", "5")]


def test_cli_imports_default_seed_set_and_lists_it(cli_env: str) -> None:
    runner = CliRunner()
    first = runner.invoke(app, ["seeds", "import-default"])
    assert first.exit_code == 0, first.output
    assert "imported seed set default" in first.output
    again = runner.invoke(app, ["seeds", "import-default"])
    assert again.exit_code == 0 and "nothing to do" in again.output
    listed = runner.invoke(app, ["seeds", "list"])
    assert "default" in listed.output


def test_default_seed_set_shape() -> None:
    records = parse_seed_file(default_seed_path().read_bytes()).records
    assert len(records) >= 60
    share = sum(r.is_classification for r in records) / len(records)
    assert 0.2 <= share <= 0.3
    assert sum(r.turns is not None for r in records) >= 3
    refusals = [r.expected_refusal for r in records if r.expected_refusal is not None]
    assert refusals.count(True) >= 3 and refusals.count(False) >= 3


# Names the REST API refuses with 422 (its parameter types use the same patterns); each was
# accepted by the CLI before the rule moved into storage.
BAD_SET_NAMES = ["", "a b", "a/b", "../x", "名前", "x\u0000y", "a" * 201, "a`b", "ünïcode"]


@pytest.mark.parametrize("name", BAD_SET_NAMES, ids=range(len(BAD_SET_NAMES)))
def test_cli_refuses_the_set_names_rest_refuses(cli_env: str, tmp_path: Path, name: str) -> None:
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text(_line() + "\n")
    refused = CliRunner().invoke(app, ["seeds", "import", str(seeds), "--name", name])
    assert refused.exit_code == 1, refused.output
    assert "bad seed set name" in refused.output, refused.output
    evals = tmp_path / "eval.jsonl"
    evals.write_text(json.dumps({"id": "e1", "instruction": "Say hi", "outputs": ["Hi"]}) + "\n")
    refused = CliRunner().invoke(app, ["evals", "import", str(evals), "--name", name])
    assert refused.exit_code == 1, refused.output
    assert "bad eval set name" in refused.output, refused.output
    db = Database(cli_env)
    try:
        assert _counts(db) == (0, 0, 0)
    finally:
        db.dispose()


def test_set_and_dataset_names_have_one_rule_each() -> None:
    """The API's parameter types and storage read the same patterns: a name is valid in the
    REST API exactly when storage takes it."""
    from service.api.routes.datasets import NAME
    from service.api.uploads import SET_NAME, SET_PATH_NAME
    from service.storage.names import (
        DATASET_NAME_PATTERN,
        SET_NAME_PATTERN,
        check_dataset_name,
        check_set_name,
    )

    def pattern_of(annotated: object) -> str:
        (param,) = annotated.__metadata__  # type: ignore[attr-defined]
        (found,) = [m.pattern for m in param.metadata if hasattr(m, "pattern")]
        return str(found)

    assert pattern_of(SET_NAME) == pattern_of(SET_PATH_NAME) == SET_NAME_PATTERN
    assert pattern_of(NAME) == DATASET_NAME_PATTERN
    assert check_set_name("self-instruct_v1.2", "seed set") == "self-instruct_v1.2"
    assert check_dataset_name("demo") == "demo"
    with pytest.raises(InvalidInput):
        check_dataset_name(".hidden")
