"""Dataset file downloads follow RFC 9110: Range, If-Range, If-None-Match, errors as JSON.

Over HTTP on SQLite and PostgreSQL against a real exported version; the parser's edge cases
are also checked directly (sizes 0, 1 and N, every spec form).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.api.ranges import Unsatisfiable, byte_ranges, matches_any
from tests.service.api_client import ApiHarness, api_harness
from tests.service.test_export import import_seeds

FILE = "/v1/datasets/demo/versions/1/files/train.messages.jsonl"


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[tuple[ApiHarness, bytes, str]]:
    """A harness with one ready version; its train file's bytes and ETag."""
    with api_harness(db_url, tmp_path) as harness:
        import_seeds(harness.database)
        created = harness.client.post("/v1/datasets/demo/versions", headers=harness.headers())
        assert created.status_code == 201, created.text
        full = harness.client.get(FILE, headers=harness.headers("read"))
        assert full.status_code == 200 and len(full.content) > 1000
        yield harness, full.content, full.headers["etag"]


def _get(api: ApiHarness, **headers: str | bytes) -> Any:
    return api.client.get(FILE, headers={**api.headers("read"), **headers})


@pytest.mark.parametrize(
    ("header", "part"),
    [
        pytest.param("bytes=0-0", slice(0, 1), id="first-byte"),
        pytest.param("bytes=10-109", slice(10, 110), id="middle"),
        pytest.param("bytes=-5", slice(-5, None), id="suffix"),
        pytest.param("bytes=100-", slice(100, None), id="open-end"),
        pytest.param("bytes=100-99999999", slice(100, None), id="end-past-size"),
        pytest.param("BYTES = 3-4", slice(3, 5), id="unit-any-case"),
        pytest.param("bytes=0-1,999999999-", slice(0, 2), id="unsatisfiable-one-dropped"),
        pytest.param("bytes=5-9,0-4", slice(0, 10), id="adjacent-merged"),
        pytest.param("bytes=,2-3,", slice(2, 4), id="empty-list-items"),
    ],
)
def test_one_satisfiable_range_is_206(api: tuple, header: str, part: slice) -> None:
    harness, full, _ = api
    r = _get(harness, Range=header)
    assert r.status_code == 206, r.text
    start = part.indices(len(full))[0]
    assert r.content == full[part]
    assert r.headers["content-range"] == f"bytes {start}-{start + len(r.content) - 1}/{len(full)}"


def test_several_ranges_are_multipart_byteranges(api: tuple) -> None:
    harness, full, _ = api
    r = _get(harness, Range="bytes=0-9, 20-29, -3")
    assert r.status_code == 206
    boundary = re.fullmatch(r"multipart/byteranges; boundary=(\S+)", r.headers["content-type"])
    assert boundary
    parts = r.content.split(b"--" + boundary.group(1).encode())[1:-1]
    assert len(parts) == 3
    size = len(full)
    for part, (start, end) in zip(parts, [(0, 9), (20, 29), (size - 3, size - 1)], strict=True):
        head, body = part.split(b"\r\n\r\n", 1)
        assert f"Content-Range: bytes {start}-{end}/{size}".encode() in head
        assert body.removesuffix(b"\r\n") == full[start : end + 1]


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("bytes=999999999-", id="start-past-end"),
        pytest.param("bytes=999999999-999999999999", id="both-past-end"),
        pytest.param("bytes=-0", id="empty-suffix"),
        pytest.param("bytes=" + "9" * 5000 + "-", id="5000-digit-start"),
        pytest.param("bytes=999999998-, 999999999-", id="all-of-several"),
    ],
)
def test_no_satisfiable_range_is_416_in_the_json_shape(api: tuple, header: str) -> None:
    harness, full, _ = api
    r = _get(harness, Range=header)
    assert r.status_code == 416
    assert r.headers["content-range"] == f"bytes */{len(full)}"
    assert r.json()["code"] == "range_not_satisfiable" and r.json()["message"]


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("bytes=5-3", id="last-before-first"),
        pytest.param("bytes=a-b", id="not-digits"),
        pytest.param("bytes=1-2-3", id="two-dashes"),
        pytest.param("bytes=٣-٤", id="non-ascii-digits"),
        pytest.param("bytes=5", id="no-dash"),
        pytest.param("bytes=", id="no-ranges"),
        pytest.param("items=0-5", id="other-unit"),
        pytest.param("0-5", id="no-unit"),
        pytest.param("bytes=" + ",".join(f"{i}-{i}" for i in range(0, 202, 2)), id="101-ranges"),
    ],
)
def test_a_range_header_to_ignore_sends_the_whole_file(api: tuple, header: str) -> None:
    harness, full, _ = api
    r = _get(harness, Range=header.encode())  # raw UTF-8 bytes, as a client may send
    assert r.status_code == 200 and r.content == full


def test_if_range_sends_a_part_only_for_this_version(api: tuple) -> None:
    harness, full, etag = api
    modified = _get(harness).headers["last-modified"]
    for same in (etag, modified):
        assert _get(harness, Range="bytes=0-3", **{"If-Range": same}).status_code == 206
    for other in ('"0000"', f"W/{etag}", "Mon, 01 Jan 2001 00:00:00 GMT"):
        r = _get(harness, Range="bytes=0-3", **{"If-Range": other})
        assert r.status_code == 200 and r.content == full, other
    # A stale copy asking for a range past the end gets the whole file, not 416.
    stale = _get(harness, Range="bytes=999999999-", **{"If-Range": '"0000"'})
    assert stale.status_code == 200


@pytest.mark.parametrize(
    ("value", "status"),
    [
        pytest.param("{etag}", 304, id="same"),
        pytest.param("W/{etag}", 304, id="weak-same"),
        pytest.param('"a", {etag}', 304, id="in-list"),
        pytest.param("*", 304, id="star"),
        pytest.param('"other"', 200, id="other"),
        pytest.param("", 200, id="empty"),
    ],
)
def test_if_none_match(api: tuple, value: str, status: int) -> None:
    harness, _, etag = api
    r = _get(harness, **{"If-None-Match": value.format(etag=etag), "Range": "bytes=0-1"})
    assert r.status_code in (status, 206 if status == 200 else status)
    assert r.headers["etag"] == etag
    if status == 304:
        assert r.content == b"" and "immutable" in r.headers["cache-control"]


def test_missing_and_unready_files_are_json_errors(api: tuple) -> None:
    harness, _, _ = api
    client: TestClient = harness.client
    for url, status in [
        ("/v1/datasets/demo/versions/1/files/nope.jsonl", 404),
        ("/v1/datasets/demo/versions/9/files/train.messages.jsonl", 404),
        ("/v1/datasets/nope/versions/1/files/x", 404),
    ]:
        r = client.get(url, headers={**harness.headers("read"), "Range": "bytes=0-1"})
        assert r.status_code == status and r.json()["code"] == "not_found", url


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        (None, 10, None),
        ("bytes=0-", 0, Unsatisfiable),
        ("bytes=-5", 0, Unsatisfiable),
        ("bytes=0-0", 1, [(0, 1)]),
        ("bytes=-5", 1, [(0, 1)]),
        ("bytes=1-", 1, Unsatisfiable),
        ("bytes=0-2,1-4,8-9", 10, [(0, 5), (8, 10)]),
        ("bytes=0-1,3-", 3, [(0, 2)]),
        ("bytes= 2 - 3 ", 10, [(2, 4)]),
        ("bytes=2-3;x", 10, None),
    ],
)
def test_byte_ranges_edges(header: str | None, size: int, expected: object) -> None:
    if expected is Unsatisfiable:
        with pytest.raises(Unsatisfiable):
            byte_ranges(header, size)
    else:
        assert byte_ranges(header, size) == expected


def test_weak_comparison_for_if_none_match() -> None:
    assert matches_any('W/"a"', '"a"') and matches_any('"a"', 'W/"a"')
    assert not matches_any('"ab"', '"a"') and not matches_any("", '"a"')
