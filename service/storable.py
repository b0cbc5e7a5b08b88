"""What every supported database stores alike: one rule for client values, decided at the edge.

SQLite and PostgreSQL disagree on values JSON can carry: PostgreSQL's text and JSONB cannot
hold U+0000 while SQLite stores it; SQLite's JSON cannot read back an integer outside 64 bits
(every later read of the row fails) while PostgreSQL turns it into a float; NaN and Infinity
(which Python's ``json`` accepts and RFC 8259 does not) are stored by one and refused by the
other. Values nested hundreds deep pass the request parser and then exhaust a serialiser's
recursion limit (orjson's is 254). So every value a client sends to be stored is checked here
first, and a refusal names the field: the answer is a 422 on both databases, never a database
error.

The rule (``storable`` v1):

- strings and object keys hold no U+0000 and, since v3, no lone surrogate (U+D800..U+DFFF
  unpaired: JSON's ``"\ud800"`` escape makes one; it is no Unicode text, UTF-8 cannot encode it,
  PostgreSQL and orjson refuse it; a hostile client's export spec reached a 500 with one);
- integers lie in the signed 64-bit range [-2**63, 2**63 - 1];
- floats are finite (no NaN, no Infinity: ``1e400`` parses as Infinity) and, since v2, lie
  strictly within (-2**63, 2**63): PostgreSQL's JSONB writes an integral float without an
  exponent (``9.3e18`` reads back as the integer 9300000000000000000), which would then fail
  this very rule when the row is read and validated again (the fuzzer found it on an export
  spec's ``min_scores``);
- nesting is at most ``MAX_DEPTH`` (32) objects/arrays deep, counted from the checked value.
"""

from __future__ import annotations

import math
from typing import Any, Self

from pydantic import BaseModel, model_validator

RULE = "storable"
RULE_VERSION = "v3"
MAX_DEPTH = 32
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def _at(path: str, key: object) -> str:
    return f"{path}[{key}]" if isinstance(key, int) else (f"{path}.{key}" if path else str(key))


def _text_problem(text: str) -> str | None:
    if "\x00" in text:
        return "holds U+0000 (NUL), which no supported database stores"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "holds a lone surrogate (U+D800..U+DFFF), which is not Unicode text"
    return None


def _scalar_problem(value: object) -> str | None:
    if isinstance(value, str):
        return _text_problem(value)
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX:
        return "integer outside the signed 64-bit range [-2**63, 2**63 - 1]"
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN and Infinity cannot be stored (JSON has no such numbers)"
    if isinstance(value, float) and not -(2.0**63) < value < 2.0**63:
        return "number outside (-2**63, 2**63): it would read back as an unstorable integer"
    return None


def unstorable(value: object, *, path: str = "", max_depth: int = MAX_DEPTH) -> str | None:
    """The first reason ``value`` cannot be stored alike on every database, or None.

    Walks iteratively (no recursion), so any depth of input is safe to check.

    Args:
        value: plain JSON-like data (dict, list, tuple, str, int, float, bool, None; other
            objects are accepted as they are).
        path: the name of ``value`` in messages (``"backend_options"``).
        max_depth: how many objects/arrays deep ``value`` may nest.

    Returns:
        ``"<path>: <problem>"`` naming the first offending field (``a.b[3].c``), or None.
    """
    stack: list[tuple[object, str, int]] = [(value, path, 0)]
    while stack:
        item, where, depth = stack.pop()
        if isinstance(item, dict | list | tuple):
            if depth >= max_depth:
                # The field the client wrote, not a path max_depth steps long.
                field = where.split("[", 1)[0].split(".", 1)[0] or "value"
                return f"{field}: nested more than {max_depth} levels deep"
            pairs = item.items() if isinstance(item, dict) else enumerate(item)
            for key, child in reversed(list(pairs)):
                if isinstance(key, str) and (problem := _text_problem(key)) is not None:
                    return f"{where or 'value'}: a key {problem}"
                stack.append((child, _at(where, key), depth + 1))
        elif (problem := _scalar_problem(item)) is not None:
            return f"{where or 'value'}: {problem}"
    return None


def check_storable(value: object, *, path: str = "", max_depth: int = MAX_DEPTH) -> None:
    """Raise ValueError (pydantic turns it into a 422) naming the first unstorable field.

    Raises:
        ValueError: ``"<path>: <problem> (rule storable <RULE_VERSION>)"``.
    """
    problem = unstorable(value, path=path, max_depth=max_depth)
    if problem is not None:
        raise ValueError(f"{problem} (rule {RULE} {RULE_VERSION})")


class StorableModel(BaseModel):
    """A request model whose every value is stored: checked against the ``storable`` rule.

    The raw input is checked before validation (depth first, so nothing deeper ever reaches a
    recursive validator or serialiser) and the validated values after it (lax mode turns the
    string ``"1e400"`` into a float and ``"9" * 30`` into an int).
    """

    @model_validator(mode="before")
    @classmethod
    def _storable_input(cls, data: Any) -> Any:
        check_storable(data)
        return data

    @model_validator(mode="after")
    def _storable_values(self) -> Self:
        check_storable(self.model_dump())
        return self
