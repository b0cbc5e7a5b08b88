"""The one JSONL reader and writer: what a line is, what is refused, and exact round trips."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dataformats.jsonl import JsonlError, encode_jsonl_line, iter_jsonl, read_jsonl, write_jsonl

# Characters str.splitlines() treats as line breaks; JSON lets all but \x1c-\x1e, \r appear raw.
RAW_LEGAL_BREAKS = ["\u2028", "\u2029", "\x85", "\x0b", "\x0c"]


def _records(data: bytes) -> list[dict[str, Any]]:
    return [record for _, record in read_jsonl(data)]


@pytest.mark.parametrize("char", RAW_LEGAL_BREAKS)
@pytest.mark.parametrize("where", ["start", "middle", "end"])
def test_unicode_line_breaks_inside_strings_do_not_split_a_record(char: str, where: str) -> None:
    text = {"start": f"{char}ab", "middle": f"a{char}b", "end": f"ab{char}"}[where]
    if char in "\x0b\x0c":  # raw control characters are not JSON; they travel escaped
        line = json.dumps({"t": text}).encode()
    else:
        line = ('{"t": "' + text + '"}').encode()  # the raw character, as orjson writes it
    data = line + b"\n" + b'{"t": "next"}\n'
    assert read_jsonl(data) == [(1, {"t": text}), (2, {"t": "next"})]


@pytest.mark.parametrize(
    ("escaped", "why"),
    [
        ("\\udc00", "lone low surrogate"),
        ("\\ud800", "high surrogate at the end"),
        ("\\ud800x", "high surrogate before a letter"),
        ("\\ud83d\\u0041", "high surrogate before a non-surrogate escape"),
        ("a\\ude00b", "low surrogate in the middle"),
    ],
)
@pytest.mark.parametrize("line_number", [1, 3])
def test_escaped_lone_surrogates_are_refused_with_the_line(
    escaped: str, why: str, line_number: int
) -> None:
    good = b'{"input": "fine"}\n'
    bad = ('{"input": "' + escaped + '"}\n').encode()
    lines = [good] * (line_number - 1) + [bad, good]
    with pytest.raises(JsonlError, match=f"^line {line_number}: .*surrogate") as info:
        read_jsonl(b"".join(lines))
    assert info.value.line == line_number, why


def test_encoded_surrogates_and_bad_utf8_are_refused_with_the_line() -> None:
    for bad in (b"\xed\xb0\x80", b"\xff", b"\xc3"):
        with pytest.raises(JsonlError, match=r"^line 2: ") as info:
            read_jsonl(b'{"a": 1}\n{"a": "' + bad + b'"}\n')
        assert info.value.line == 2


def test_a_valid_surrogate_pair_is_one_astral_character() -> None:
    assert _records(b'{"a": "\\ud83d\\ude00"}') == [{"a": "\U0001f600"}]


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (b'{"a": NaN}', "invalid JSON"),
        (b'{"a": Infinity}', "invalid JSON"),
        (b'{"a": -Infinity}', "invalid JSON"),
        (b'{"a": "x\ty"}', "invalid JSON"),  # raw control character inside a string
        (b'{"a": 1} {"b": 2}', "invalid JSON"),
        (b"[1, 2]", "expected a JSON object, got an array"),
        (b'"text"', "expected a JSON object, got a string"),
        (b"3", "expected a JSON object, got a number"),
        (b"null", "expected a JSON object, got null"),
        (b"\xef\xbb\xbf{}", "invalid JSON"),  # a BOM is tolerated at the start of the file only
    ],
)
def test_what_json_forbids_is_refused(line: bytes, problem: str) -> None:
    with pytest.raises(JsonlError, match=f"^line 2: {problem}"):
        read_jsonl(b"{}\n" + line + b"\n")


def test_crlf_blank_lines_bom_and_no_final_newline() -> None:
    data = b'\xef\xbb\xbf{"a": 1}\r\n\r\n   \n{"a": 2}\r\n{"a": 3}'
    assert read_jsonl(data) == [(1, {"a": 1}), (4, {"a": 2}), (5, {"a": 3})]
    assert read_jsonl(b"") == [] and read_jsonl(b"\n\n") == []


def test_paths_streams_and_bytes_read_alike(tmp_path: Path) -> None:
    data = b'{"a": "\xe2\x80\xa8"}\n\n{"b": [1, 2.5, null, true]}\n'
    path = tmp_path / "x.jsonl"
    path.write_bytes(data)
    expected = read_jsonl(data)
    assert read_jsonl(path) == expected == read_jsonl(io.BytesIO(data))
    assert list(iter_jsonl(str(path))) == expected


@pytest.mark.parametrize(
    ("record", "problem"),
    [
        ({"a": "\udc00"}, "surrogates not allowed"),
        ({"a": ["x", "\ud800"]}, "surrogates not allowed"),
        ({"a": float("nan")}, "NaN or Infinity"),
        ({"a": {"b": [float("-inf")]}}, "NaN or Infinity"),
        ({1: "x"}, "cannot write"),
        ({"a": object()}, "cannot write"),
    ],
)
def test_the_writer_refuses_what_json_cannot_carry(record: dict, problem: str) -> None:
    with pytest.raises(JsonlError, match=problem):
        encode_jsonl_line(record)


def test_nulls_and_finite_floats_are_written() -> None:
    record = {"a": None, "b": 1.5, "c": [None, -0.0, 1e300]}
    assert _records(encode_jsonl_line(record)) == [record]


# Every Unicode scalar value: all of them may stand in a JSON string (escaped where needed).
UNICODE_TEXT = st.text(
    st.one_of(
        st.characters(codec="utf-8"),
        st.sampled_from(["\u2028", "\u2029", "\x85", "\x00", "\x1c", "\x1e", "\r", "\n", "\ufeff"]),
        st.characters(min_codepoint=0x10000, max_codepoint=0x10FFFF),
    ),
    max_size=40,
)
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | UNICODE_TEXT
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(UNICODE_TEXT, inner, max_size=4),
    max_leaves=12,
)
RECORDS = st.dictionaries(UNICODE_TEXT, JSON_VALUES, max_size=5)


@settings(max_examples=300, deadline=None)
@given(records=st.lists(RECORDS, max_size=6))
def test_what_the_writer_writes_the_reader_reads_back_identically(
    records: list[dict[str, Any]],
) -> None:
    data = b"".join(encode_jsonl_line(r) for r in records)
    assert data.count(b"\n") == len(records)  # one line per record, whatever the text holds
    assert read_jsonl(data) == list(enumerate(records, start=1))


@settings(max_examples=50, deadline=None)
@given(records=st.lists(RECORDS, max_size=4))
def test_write_jsonl_round_trips_through_a_file(
    tmp_path_factory: pytest.TempPathFactory, records: list[dict[str, Any]]
) -> None:
    path = tmp_path_factory.mktemp("jsonl") / "out.jsonl"
    assert write_jsonl(path, records) == len(records)
    assert [r for _, r in read_jsonl(path)] == records
