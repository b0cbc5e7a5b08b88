"""Loading many rows at once: benchmarks and imports that fill a database with a finished
history (tasks, instances, scores) rather than growing it through the worker.

Rows carry their own ids, so rows of one table can point at rows of another before either is
stored. PostgreSQL takes them by COPY (psycopg's `Cursor.copy`, binary-safe adaptation of each
value); SQLite by one executemany per table. Column defaults the models compute in Python
(`created_at`) are filled in; server defaults are left to the server.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from sqlalchemy import JSON, Connection, Table, func, insert, select, update

from service.storage.models import Base, Run, Task


def _with_defaults(
    table: Table, rows: Sequence[dict[str, Any]]
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Column names and value tuples of `rows`, Python-side defaults added where missing."""
    names = list(rows[0])
    defaults: dict[str, Any] = {}
    for column in table.columns:
        default = column.default
        if column.name in names or default is None or not hasattr(default, "arg"):
            continue
        if default.is_callable:
            defaults[column.name] = default.arg(None)
        elif default.is_scalar:
            defaults[column.name] = default.arg
    names += list(defaults)
    extra = tuple(defaults.values())
    return names, [(*(row[n] for n in rows[0]), *extra) for row in rows]


def insert_rows(conn: Connection, model: type[Base], rows: Sequence[dict[str, Any]]) -> None:
    """Store `rows` (dicts with the same keys, ids included) in `model`'s table, in the
    connection's transaction. On PostgreSQL the id sequence is moved past the largest id, so
    rows inserted later get fresh ones.

    Raises:
        sqlalchemy.exc.IntegrityError: a row breaks a constraint (the transaction is void).
    """
    if not rows:
        return
    table: Table = model.__table__  # type: ignore[assignment]
    if conn.dialect.name != "postgresql":
        conn.execute(insert(table), list(rows))
        return
    from psycopg.types.json import Jsonb

    names, values = _with_defaults(table, rows)
    as_json = [isinstance(table.c[n].type, JSON) for n in names]  # JSONB is a JSON too
    driver = conn.connection.driver_connection
    assert driver is not None
    columns = ", ".join(f'"{n}"' for n in names)
    with driver.cursor() as cursor:
        with cursor.copy(f'COPY "{table.name}" ({columns}) FROM STDIN') as copy:
            for row in values:
                copy.write_row(
                    [
                        Jsonb(v) if j and v is not None else v
                        for v, j in zip(row, as_json, strict=True)
                    ]
                )
        if "id" in names:
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                f'(SELECT max(id) FROM "{table.name}"))'
            )


def next_id(conn: Connection, model: type[Base]) -> int:
    """The smallest id above every row of `model`'s table: where new explicit ids start."""
    table: Table = model.__table__  # type: ignore[assignment]
    return int(conn.execute(select(func.coalesce(func.max(table.c.id), 0))).scalar_one()) + 1


def recount_runs(conn: Connection, run_ids: Sequence[int]) -> None:
    """Set the counters the worker keeps on each run (generated, accepted, rejected, by rule,
    iteration) from its stored tasks, as they would be had the worker stored them."""
    rows = conn.execute(
        select(Task.run_id, Task.status, Task.reject_rule, func.count(), func.max(Task.iteration))
        .where(Task.run_id.in_(run_ids))
        .group_by(Task.run_id, Task.status, Task.reject_rule)
    ).all()
    for run_id in run_ids:
        mine = [r for r in rows if r[0] == run_id]
        by_rule = Counter({r[2] or "unknown": r[3] for r in mine if r[1] == "rejected"})
        accepted = sum(r[3] for r in mine if r[1] == "accepted")
        conn.execute(
            update(Run)
            .where(Run.id == run_id)
            .values(
                iteration=max((r[4] or 0 for r in mine), default=0),
                generated_count=sum(r[3] for r in mine),
                accepted_count=accepted,
                rejected_count=sum(by_rule.values()),
                rejected_by_rule=dict(by_rule),
            )
        )


def analyze(conn: Connection) -> None:
    """Refresh the planner's statistics after a load (PostgreSQL also vacuums: visibility map
    and hint bits set, so the first reads do not write). `conn` must not be in a transaction."""
    command = "VACUUM ANALYZE" if conn.dialect.name == "postgresql" else "ANALYZE"
    conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(command)
