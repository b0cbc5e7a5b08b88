"""Parse held-out eval files for the service: the library's parser, the service's errors."""

from __future__ import annotations

from filters.decontamination import EvalItem, load_eval_jsonl
from filters.errors import EvalSetError
from service.errors import SeedFileError


def parse_eval_file(data: bytes) -> list[EvalItem]:
    """Validate a whole eval file (JSONL: id, instruction, optional instances).

    Raises:
        SeedFileError: naming the first bad line.
    """
    try:
        items = load_eval_jsonl(data)
    except EvalSetError as exc:
        raise SeedFileError(exc.line or 1, exc.problem) from None
    if not items:
        raise SeedFileError(1, "the file holds no items")
    return items
