"""Conditional and partial downloads of immutable files, after RFC 9110.

Which part of a file a ``GET`` answers with, decided before any byte is sent:

- ``If-None-Match`` (section 13.1.2): ``*`` or any listed entity tag that matches the file's
  ETag by weak comparison (``W/"x"`` matches ``"x"``) answers 304 with the ETag.
- ``If-Range`` (section 13.1.5): the ``Range`` applies only when it equals the strong ETag or
  the ``Last-Modified`` date exactly; otherwise the whole file is sent (200).
- ``Range`` (section 14.2): ``bytes=`` followed by comma-separated ``first-last``, ``first-``
  and ``-suffix`` specs. A header that does not parse (another unit, a spec that is not digits,
  ``last < first``) is ignored: 200 with the whole file, as the RFC asks. Specs that start past
  the end are dropped; when none is left, 416 with ``Content-Range: bytes */N``. Overlapping
  and adjacent ranges are merged; one range answers 206 with ``Content-Range``, several answer
  206 ``multipart/byteranges``. More than ``MAX_RANGES`` specs are ignored (200), a defence the
  RFC allows (section 14.2) against many tiny ranges. An empty file has no satisfiable range.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fastapi.responses import FileResponse, JSONResponse, Response

from service.api.errors import error_body

MAX_RANGES = 100
# More digits than any file size: compare as "huge" rather than parse (int() refuses > 4300).
_MAX_DIGITS = 18


class Unsatisfiable(Exception):
    """The Range header is valid but no range in it overlaps the file."""


def _number(text: str) -> int | None:
    text = text.strip()
    if not text or not text.isascii() or not text.isdigit():
        return None
    return int(text) if len(text) <= _MAX_DIGITS else 10**_MAX_DIGITS


def _spec(spec: str, size: int) -> tuple[int, int] | bool | None:
    """(start, end exclusive) of one spec; None when unsatisfiable; False when malformed."""
    first_text, dash, last_text = spec.partition("-")
    if not dash:
        return False
    if not first_text.strip():  # suffix-range: the last N bytes
        suffix = _number(last_text)
        if suffix is None:
            return False
        return (max(size - suffix, 0), size) if suffix > 0 and size > 0 else None
    first = _number(first_text)
    last = _number(last_text) if last_text.strip() else None
    if first is None or (last_text.strip() and (last is None or last < first)):
        return False
    if first >= size:
        return None
    return (first, size if last is None else min(last + 1, size))


def byte_ranges(header: str | None, size: int) -> list[tuple[int, int]] | None:
    """The ranges of a ``Range`` header to send, merged and in order.

    Args:
        header: the ``Range`` header, or None.
        size: the file's length in bytes.

    Returns:
        ``[(start, end_exclusive), ...]``, or None to send the whole file (no header, or one to
        ignore: see the module docstring).

    Raises:
        Unsatisfiable: every range starts past the end of the file (answer 416).
    """
    if header is None:
        return None
    unit, equals, ranges = header.partition("=")
    if not equals or unit.strip().lower() != "bytes":
        return None
    specs = [s for s in ranges.split(",") if s.strip()]  # RFC 9110 5.6.1: empty items are fine
    if not specs or len(specs) > MAX_RANGES:
        return None
    parsed = [_spec(s, size) for s in specs]
    if any(p is False for p in parsed):
        return None
    kept = sorted(p for p in parsed if isinstance(p, tuple))
    if not kept:
        raise Unsatisfiable
    merged = [kept[0]]
    for start, end in kept[1:]:
        if start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def matches_any(if_none_match: str, etag: str) -> bool:
    """Whether ``If-None-Match`` matches ``etag`` (``*``, or weak comparison of each tag)."""
    tags = [t.strip() for t in if_none_match.split(",")]
    return "*" in tags or etag.removeprefix("W/") in {t.removeprefix("W/") for t in tags}


class _RangedFileResponse(FileResponse):
    """Starlette's FileResponse sending the ranges decided here (it would answer a malformed
    header 400 and a partly unsatisfiable one 416, both as plain text)."""

    ranges: list[tuple[int, int]] | None = None

    def _parse_range_header(  # type: ignore[override]
        self, http_range: str, file_size: int
    ) -> list[tuple[int, int]]:
        return self.ranges or []  # [] makes Starlette send the whole file


def file_response(
    path: Path,
    *,
    etag: str,
    range_header: str | None,
    if_range: str | None,
    if_none_match: str | None,
    **kwargs: Any,
) -> Response:
    """The answer to a GET of an immutable file: 200, 206, 304 or 416 (see the module rules).

    Args:
        path: the file.
        etag: its strong entity tag, quoted.
        range_header, if_range, if_none_match: the request's headers (None when absent).
        **kwargs: for FileResponse (media_type, filename, headers).

    Returns:
        A 304 Response, a 416 JSON error with ``Content-Range: bytes */N``, or a FileResponse.
    """
    headers = {**kwargs.pop("headers", {}), "ETag": etag}
    if if_none_match is not None and matches_any(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    stat = os.stat(path)
    response = _RangedFileResponse(path, stat_result=stat, headers=headers, **kwargs)
    if if_range is not None and if_range.strip() not in (etag, response.headers["last-modified"]):
        return response  # the client's copy is another version: send all of this one
    try:
        response.ranges = byte_ranges(range_header, stat.st_size)
    except Unsatisfiable:
        return JSONResponse(
            error_body(
                "range_not_satisfiable",
                f"no range in {range_header!r} starts within the file's {stat.st_size} bytes",
            ),
            status_code=416,
            headers={"Content-Range": f"bytes */{stat.st_size}"},
        )
    return response
