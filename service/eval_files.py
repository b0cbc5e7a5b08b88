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
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SeedFileError(data.count(b"\n", 0, exc.start) + 1, "not valid UTF-8") from None
    try:
        items = load_eval_jsonl(text.splitlines())
    except EvalSetError as exc:
        raise SeedFileError(getattr(exc, "line", 0) or 0, str(exc)) from None
    if not items:
        raise SeedFileError(1, "the file holds no items")
    return items
