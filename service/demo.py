"""`make demo`: the main job end to end on the embedded defaults (SQLite, the CPU model)."""

from __future__ import annotations

import sys

from rich.console import Console

from service.cli import default_seed_path
from service.seed_files import parse_seed_file
from service.settings import get_settings
from service.storage import migrate
from service.storage.db import Database
from service.storage.seeds import import_seed_set

console = Console()


def step(title: str) -> None:
    console.rule(f"[bold]{title}")


def main() -> int:
    settings = get_settings()
    step("1. migrate the database")
    migrate.upgrade(settings.database_url)
    console.print(f"database: {settings.database_url}")
    step("2. import the default seed set")
    database = Database(settings.database_url)
    try:
        with database.transaction() as session:
            outcome = import_seed_set(
                session, name="default", seed_file=parse_seed_file(default_seed_path().read_bytes())
            )
            console.print(
                f"seed set 'default': {outcome.seed_set.task_count} tasks"
                + ("" if outcome.created else " (already imported)")
            )
    finally:
        database.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
