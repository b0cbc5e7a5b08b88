"""The names users give to stored things, one rule per kind.

The REST API's parameter types use these patterns (so OpenAPI shows them and a bad name is a
422 before any query) and the storage functions that create the rows check them again, so the
CLI, the demo and any other caller meet the same rule.

- seed and eval sets: 1-200 letters, digits, `.`, `_` or `-` (looked up by name in URLs);
- datasets: 1-100 of the same, starting with a letter or digit (the name is also a directory).
"""

from __future__ import annotations

import re

from service.errors import InvalidInput

SET_NAME_PATTERN = r"^[A-Za-z0-9_.\-]{1,200}$"
DATASET_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
_SET_NAME = re.compile(SET_NAME_PATTERN)
_DATASET_NAME = re.compile(DATASET_NAME_PATTERN)


def check_set_name(name: str, kind: str) -> str:
    """`name` when it is a valid seed or eval set name (`kind` names which, for the message).

    Raises:
        InvalidInput: anything else.
    """
    if not _SET_NAME.fullmatch(name):
        raise InvalidInput(f"bad {kind} name {name!r}: 1-200 letters, digits, '.', '_' or '-'")
    return name


def check_dataset_name(name: str) -> str:
    """`name` when it is a valid dataset name (it doubles as a directory name).

    Raises:
        InvalidInput: anything else.
    """
    if not _DATASET_NAME.fullmatch(name):
        raise InvalidInput(
            f"bad dataset name {name!r}: 1-100 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name
