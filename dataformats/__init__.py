"""On-disk data formats shared by every layer: the project's one JSONL reader and writer.

This package is the bottom layer. It imports nothing from the project, so the libraries
(`generators`, `filters`), the `service` and the `trainer` can all use it without breaking the
import direction service -> libraries, trainer -/-> service.

Its exception tree is one class with a stable ``code`` (the service maps it to HTTP 422)::

    JsonlError (+ValueError)  invalid_jsonl  ``line``: 1-based, None when writing
"""

from dataformats.jsonl import (
    JsonlError,
    encode_jsonl_line,
    iter_jsonl,
    read_jsonl,
    write_jsonl,
)

__all__ = ["JsonlError", "encode_jsonl_line", "iter_jsonl", "read_jsonl", "write_jsonl"]
