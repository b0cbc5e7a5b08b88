"""Layering rules, checked on the source: all SQL in `service/storage/`, libraries framework-free.

Imports are read with `ast` (every `import` and `from ... import`, inside functions too), so a
lazy import inside a command counts as much as one at the top of a module. Imports under
`if TYPE_CHECKING:` are annotations only and are skipped.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LIBRARIES = ("generators", "filters", "trainer", "templating", "dataformats")


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def runtime_imports(source: str, *, annotations: bool = False) -> Iterator[tuple[int, str]]:
    """(line, module) of every import that runs, in source order; relative imports left out.

    With `annotations`, imports under `if TYPE_CHECKING:` count too.
    """

    def visit(node: ast.AST) -> Iterator[tuple[int, str]]:
        if isinstance(node, ast.If) and _is_type_checking(node) and not annotations:
            for stmt in node.orelse:
                yield from visit(stmt)
            return
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.lineno, node.module
        for child in ast.iter_child_nodes(node):
            yield from visit(child)

    yield from visit(ast.parse(source))


def offenders(
    paths: list[Path],
    banned: tuple[str, ...],
    *,
    allowed: tuple[str, ...] = (),
    annotations: bool = False,
) -> list[str]:
    """`path:line module` for each import of a banned package (or a module in it)."""

    def within(module: str, packages: tuple[str, ...]) -> bool:
        return any(module == p or module.startswith(p + ".") for p in packages)

    found = []
    for path in paths:
        source = path.read_text(encoding="utf-8")
        for line, module in runtime_imports(source, annotations=annotations):
            if within(module, banned) and not within(module, allowed):
                found.append(f"{path.relative_to(ROOT)}:{line} {module}")
    return found


def sources(*packages: str, exclude: tuple[str, ...] = ()) -> list[Path]:
    paths = [p for package in packages for p in sorted((ROOT / package).rglob("*.py"))]
    skip = [ROOT / e for e in exclude]
    return [p for p in paths if not any(p.is_relative_to(s) for s in skip)]


def test_the_scan_sees_every_kind_of_import() -> None:
    source = """
import sqlalchemy
from sqlalchemy.orm import Session
import os, sqlalchemy.exc as exc
from typing import TYPE_CHECKING
from . import sibling
if TYPE_CHECKING:
    from sqlalchemy import Engine
else:
    from sqlalchemy import Connection
def f():
    try:
        from sqlalchemy import select
    except ImportError:
        pass
class C:
    def g(self):
        with open("x"):
            import sqlalchemy.dialects
"""
    every = [m for _, m in runtime_imports(source, annotations=True) if m.startswith("sqlalch")]
    assert every[3] == "sqlalchemy" and len(every) == 7  # `Engine`, for annotations only
    modules = [m for _, m in runtime_imports(source) if m.startswith("sqlalchemy")]
    assert modules == [
        "sqlalchemy",
        "sqlalchemy.orm",
        "sqlalchemy.exc",
        "sqlalchemy",  # the else branch of TYPE_CHECKING runs
        "sqlalchemy",
        "sqlalchemy.dialects",
    ]


def test_only_storage_and_migrations_import_sqlalchemy() -> None:
    """Every query lives in `service/storage/`; the rest of the service names sessions, engines
    and driver errors through `service.storage.db`."""
    paths = sources("service", *LIBRARIES, exclude=("service/storage",))
    assert paths and offenders(paths, ("sqlalchemy", "alembic")) == []


@pytest.mark.parametrize("package", LIBRARIES)
def test_libraries_import_no_web_or_database_framework(package: str) -> None:
    banned = ("fastapi", "starlette", "sqlalchemy", "alembic", "service")
    assert offenders(sources(package), banned) == []


def test_storage_does_not_import_the_pipeline_or_the_export() -> None:
    """Storage owns the row types it reads and writes (`TaskToStore`, `TaskRow`, ...); the
    layers above import them from it, never the other way round, not even for annotations.
    The one exception is the export spec, the candidate query's input (annotations only)."""
    banned = ("service.runs", "service.export", "service.api", "service.reports")
    paths = sources("service/storage")
    assert offenders(paths, banned, allowed=("service.export.spec",), annotations=True) == []
    assert offenders(paths, banned) == []
