"""Parse held-out eval files: the service reads the lines, the library checks the items."""

from __future__ import annotations

from filters.decontamination import EvalItem, parse_eval_items
from filters.errors import EvalSetError
from service.errors import SeedFileError
from service.seed_files import read_file_lines


def parse_eval_file(data: bytes) -> list[EvalItem]:
    """Validate a whole eval file (JSONL: id, instruction, optional instances).

    Raises:
        SeedFileError: naming the first bad line.
    """
    rows = read_file_lines(data)
    try:
        items = parse_eval_items(rows)
    except EvalSetError as exc:
        raise SeedFileError(exc.line or 1, exc.problem) from None
    if not items:
        raise SeedFileError(1, "the file holds no items")
    return items
