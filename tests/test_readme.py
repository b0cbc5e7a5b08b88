"""README.md matches the code: every setting and every CLI command is documented."""

from __future__ import annotations

import re
from pathlib import Path

import typer.main

from service.cli import app
from service.settings import Settings

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def test_every_setting_is_in_the_configuration_table() -> None:
    table = README.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    documented = {name for row in rows for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", row)}
    assert {name.upper() for name in Settings.model_fields} == documented


def _commands(group: typer.main.TyperGroup | object, prefix: str) -> list[str]:
    subcommands = getattr(group, "commands", {})
    if not subcommands:
        return [prefix]
    return [c for name, sub in subcommands.items() for c in _commands(sub, f"{prefix} {name}")]


def test_every_command_is_in_the_readme() -> None:
    commands = _commands(typer.main.get_command(app), "instructforge")
    assert len(commands) > 15
    # A subcommand may follow its group's first mention: `seeds import-default` / `seeds list`.
    missing = [c for c in commands if c not in README and f"`{c.split(' ', 1)[1]}" not in README]
    assert missing == []
