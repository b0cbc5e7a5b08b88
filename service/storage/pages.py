"""Cursor pagination in id order: the cursors handed out and the SELECTs that page with them."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Column, Connection, Integer, Result, Select, any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY

from service.errors import InvalidInput

Row = dict[str, Any]


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """Raises InvalidInput for a cursor we did not hand out."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, value = raw.split(":", 1)
        if kind != "id":
            raise ValueError(kind)
        last_id = int(value)
        if not 0 <= last_id < 2**31:
            raise ValueError(value)
        return last_id
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("cursor: not a cursor this API handed out") from None


def dicts_of(result: Result[Any]) -> list[Row]:
    """Every row of `result` as a dict keyed by column name."""
    # Zipping plain rows with the keys once costs a third of building each row's mapping.
    keys = tuple(result.keys())
    return [dict(zip(keys, row, strict=True)) for row in result.all()]


def columns_of(model: Any, names: Sequence[str]) -> list[Column[Any]]:
    """The table columns of `model` named `names`, in that order."""
    return [model.__table__.c[name] for name in names]


def id_in(id_column: Any, dialect: str) -> Any:
    """`id_column` is one of the bind parameter `ids` (a list of ints), as one SQL text for any
    number of ids: an array parameter on PostgreSQL (one prepared statement for every batch
    size), an expanding IN elsewhere."""
    if dialect == "postgresql":
        return id_column == any_(bindparam("ids", type_=ARRAY(Integer)))
    return id_column.in_(bindparam("ids", expanding=True))


def where_equal(stmt: Select[Any], model: Any, names: Sequence[str]) -> Select[Any]:
    """`stmt` restricted to rows whose column NAME equals the bind parameter NAME, for each."""
    for name in names:
        stmt = stmt.where(model.__table__.c[name] == bindparam(name))
    return stmt


def paged(stmt: Select[Any], id_column: Any, after: bool) -> Select[Any]:
    """`stmt` in id order, after the bind parameter `after` when given, at most `limit` rows."""
    if after:
        stmt = stmt.where(id_column > bindparam("after"))
    return stmt.order_by(id_column).limit(bindparam("limit", type_=Integer))


def read_page(
    conn: Connection, stmt: Select[Any], values: dict[str, Any], cursor: str | None, limit: int
) -> tuple[list[Row], str | None]:
    """One page of `stmt` (built with `paged`, `after` iff a cursor is given): its rows as dicts
    and the cursor of the next page (None on the last).

    Raises:
        InvalidInput: a cursor this API did not hand out.
    """
    values = {**values, "limit": limit + 1}
    if cursor is not None:
        values["after"] = decode_cursor(cursor)
    rows = dicts_of(conn.execute(stmt, values))
    more = len(rows) > limit
    return rows[:limit], encode_cursor(rows[limit - 1]["id"]) if more else None
