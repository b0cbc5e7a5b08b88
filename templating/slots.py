"""Slot discovery and single-pass filling with :class:`string.Template` semantics."""

from __future__ import annotations

import string
from collections.abc import Mapping


class SlotError(ValueError):
    """A template has a malformed ``$`` or was filled with missing or unknown slots.

    Attributes:
        missing: Slot names the template has but no value was given for.
        unexpected: Value names the template has no slot for.
    """

    code = "slot_error"

    def __init__(
        self,
        message: str,
        *,
        missing: frozenset[str] = frozenset(),
        unexpected: frozenset[str] = frozenset(),
    ) -> None:
        """Create the error; see the class docstring."""
        super().__init__(message)
        self.missing = missing
        self.unexpected = unexpected


def slot_names(text: str) -> frozenset[str]:
    """The slot names a template text declares.

    Args:
        text: Template text (``${name}`` or ``$name`` slots, ``$$`` for a dollar).

    Returns:
        The distinct slot names.

    Raises:
        SlotError: If a ``$`` is neither ``$$`` nor the start of a slot (line and column named).
    """
    names = set()
    for match in string.Template.pattern.finditer(text):
        if match.group("invalid") is not None:
            offset = match.start()  # the "$" itself; the invalid group starts after it
            line = text.count("\n", 0, offset) + 1
            column = offset - (text.rfind("\n", 0, offset) + 1) + 1
            raise SlotError(f"stray '$' at line {line}, column {column} (write '$$')")
        name = match.group("named") or match.group("braced")
        if name:
            names.add(name)
    return frozenset(names)


def fill_slots(text: str, values: Mapping[str, str]) -> str:
    """Fill every slot of ``text`` in one pass; values are inserted verbatim, never re-read.

    Args:
        text: Template text.
        values: Exactly one string per slot name.

    Returns:
        The rendered text.

    Raises:
        SlotError: If the text is malformed, a slot has no value, or a value has no slot.
    """
    names = slot_names(text)
    missing = frozenset(names - values.keys())
    unexpected = frozenset(values.keys() - names)
    if missing or unexpected:
        raise SlotError(
            f"missing {sorted(missing)}, unexpected {sorted(unexpected)}",
            missing=missing,
            unexpected=unexpected,
        )
    return string.Template(text).substitute(values)
