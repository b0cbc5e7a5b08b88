"""JSON Lines: the one reader and the one writer for every JSONL file of the project.

What a line is (the rules every seed, eval, export and trainer file follows):

- Records are split on the byte ``\\n`` only. ``str.splitlines`` also splits on U+2028, U+2029,
  U+0085 and ``\\x1c``-``\\x1e``, which JSON allows raw inside strings, so it cuts a valid
  record in two; a raw ``\\r`` or other control character below U+0020 cannot appear inside a
  JSON string (RFC 8259 section 7), so ``\\n`` is the only separator that is never content.
- A line ending ``\\r\\n`` is accepted (``\\r`` is JSON whitespace), and so is a last line
  without a newline.
- Blank lines (JSON whitespace only) are skipped but still counted, so line numbers match an
  editor's.
- Bytes are decoded as strict UTF-8 by orjson; a UTF-8 byte order mark is tolerated at the start
  of the file only (RFC 8259 section 8.1 lets a parser ignore it; Windows editors write it).
- Each line must be one JSON object. orjson refuses what JSON forbids and Python's ``json``
  accepts: ``NaN``, ``Infinity``, lone surrogates, escaped (``"\\udc00"``) or encoded.

The writer emits compact orjson (UTF-8, no ASCII escaping, keys in the record's order) plus
``\\n``; orjson escapes every control character, so a record never contains the separator, and
the reader gives back exactly the record written.
"""

from __future__ import annotations

import codecs
import io
import math
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import orjson

_JSON_WHITESPACE = b" \t\r\n"


class JsonlError(ValueError):
    """A JSONL line cannot be read, or a record cannot be written as one.

    Attributes:
        line: 1-based line number of the offending line (None when writing).
        problem: What is wrong, without the line prefix.
    """

    code = "invalid_jsonl"

    def __init__(self, problem: str, *, line: int | None = None) -> None:
        """Create the error; the message is ``"line N: problem"`` when the line is known."""
        super().__init__(f"line {line}: {problem}" if line is not None else problem)
        self.line = line
        self.problem = problem


def _kind(value: object) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


def _decode_line(raw: bytes, number: int) -> dict[str, Any]:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as bad:
            raise JsonlError(f"not valid UTF-8 (byte {bad.start + 1})", line=number) from None
        raise JsonlError(f"invalid JSON at column {exc.colno}: {exc.msg}", line=number) from None
    if type(value) is not dict:
        raise JsonlError(f"expected a JSON object, got {_kind(value)}", line=number)
    return value


def _lines(handle: IO[bytes]) -> Iterator[tuple[int, dict[str, Any]]]:
    # A binary file iterates on b"\n" alone, never on U+2028/U+0085 and friends.
    for number, raw in enumerate(handle, start=1):
        if number == 1 and raw.startswith(codecs.BOM_UTF8):
            raw = raw[len(codecs.BOM_UTF8) :]
        if raw.strip(_JSON_WHITESPACE):
            yield number, _decode_line(raw, number)


def iter_jsonl(source: bytes | str | Path | IO[bytes]) -> Iterator[tuple[int, dict[str, Any]]]:
    """Read JSON Lines lazily, one object per non-blank line, with its 1-based line number.

    Args:
        source: The file's bytes, a path, or a binary file object.

    Yields:
        ``(line_number, record)`` in file order; blank lines are skipped but counted.

    Raises:
        JsonlError: The first line that is not UTF-8, not JSON, or not a JSON object (the
            error's ``line`` names it). Records before it have already been yielded.
        OSError: The path cannot be opened.
    """
    if isinstance(source, bytes | bytearray | memoryview):
        # BytesIO shares the bytes (no copy) and, like every binary stream, splits on b"\n".
        yield from _lines(io.BytesIO(bytes(source)))
    elif isinstance(source, Path | str):
        with Path(source).open("rb") as handle:
            yield from _lines(handle)
    else:
        yield from _lines(source)


def read_jsonl(source: bytes | str | Path | IO[bytes]) -> list[tuple[int, dict[str, Any]]]:
    """Read a whole JSONL file, all or nothing; see `iter_jsonl` for the rules and errors."""
    return list(iter_jsonl(source))


def _non_finite(value: object) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, Mapping):
        return any(_non_finite(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_non_finite(v) for v in value)
    return False


def encode_jsonl_line(record: Mapping[str, Any]) -> bytes:
    """Encode one record as a JSONL line: compact UTF-8 JSON followed by ``b"\\n"``.

    Args:
        record: A JSON object: str keys; str, int, finite float, bool, None, list, dict values.

    Returns:
        The line's bytes; `iter_jsonl` reads it back equal to ``record``.

    Raises:
        JsonlError: The record holds what JSON cannot carry: a lone surrogate, a non-str key,
            an unsupported type, or NaN/Infinity (orjson would write ``null``: a silent change).
    """
    try:
        line = orjson.dumps(record)
    except orjson.JSONEncodeError as exc:
        raise JsonlError(f"cannot write record as JSON: {exc}") from None
    # orjson writes non-finite floats as null; look for them only when a null was written.
    if b"null" in line and _non_finite(record):
        raise JsonlError("cannot write record as JSON: NaN or Infinity has no JSON form")
    return line + b"\n"


def write_jsonl(path: Path, records: Iterable[Mapping[str, Any]]) -> int:
    """Write records to a new JSONL file (replacing any file there).

    Args:
        path: The file to write.
        records: The records, in order.

    Returns:
        How many records were written.

    Raises:
        JsonlError: A record cannot be written (see `encode_jsonl_line`); the file is then
            partial, so write to a temporary path and rename when it must be all or nothing.
    """
    count = 0
    with Path(path).open("wb") as handle:
        for record in records:
            handle.write(encode_jsonl_line(record))
            count += 1
    return count
