"""read_seed_tasks: the paper's seed format through the project's one JSONL reader."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from generators.errors import ConfigError
from generators.seed_tasks import read_seed_tasks


def _row(number: int, instruction: str) -> str:
    row = {
        "id": f"seed_task_{number}",
        "instruction": instruction,
        "is_classification": False,
        "instances": [{"input": "", "output": "ok"}],
    }
    return json.dumps(row, ensure_ascii=False)


@pytest.mark.parametrize("char", ["\u2028", "\u2029", "\x85"])
def test_unicode_line_breaks_do_not_split_a_task(tmp_path: Path, char: str) -> None:
    path = tmp_path / "seeds.jsonl"
    path.write_text(f"{_row(0, char + 'a')}\r\n\n{_row(1, 'b' + char)}", encoding="utf-8")
    tasks = read_seed_tasks(path)
    assert [(t.id, t.instruction) for t in tasks] == [
        ("seed_task_0", f"{char}a"),
        ("seed_task_1", f"b{char}"),
    ]


@pytest.mark.parametrize("bad", ['{"id": "x", "instruction": "\\udc00"}', "[1]", '{"id": 1}'])
def test_a_bad_line_names_its_number(tmp_path: Path, bad: str) -> None:
    path = tmp_path / "seeds.jsonl"
    path.write_text(f"{_row(0, 'a')}\n\n{bad}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"seeds\.jsonl:3: bad seed task"):
        read_seed_tasks(path)
