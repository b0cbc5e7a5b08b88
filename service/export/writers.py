"""File writers of a version: JSONL and Parquet per split and format, then sha256 of each file.

Bytes depend only on the rows: JSON is compact with a fixed key order, and Parquet has a fixed
schema, fixed row groups, fixed compression and no timestamps in its metadata.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.json as pajson
import pyarrow.parquet as pq

from dataformats.jsonl import encode_jsonl_line
from service.export.examples import SPLITS, Example

PARQUET_ROW_GROUP = 10_000
PARQUET_COMPRESSION = "zstd"
_BASE = [("id", pa.string()), ("task_id", pa.string()), ("task_type", pa.string())]
_MESSAGE = pa.struct([("role", pa.string()), ("content", pa.string())])
SCHEMAS = {
    "messages": pa.schema([*_BASE, ("messages", pa.list_(_MESSAGE))]),
    "alpaca": pa.schema(
        [*_BASE, ("instruction", pa.string()), ("input", pa.string()), ("output", pa.string())]
    ),
}


class JsonlSink:
    """One JSONL file, one compact JSON object per line (the project's one JSONL writer).

    Raises (from `write`):
        JsonlError: A record holds what JSON cannot carry (e.g. a lone surrogate).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows = 0
        self._handle: BinaryIO = path.open("wb", buffering=1 << 20)

    def write(self, record: dict[str, Any]) -> None:
        self._handle.write(encode_jsonl_line(record))
        self.rows += 1

    def close(self) -> None:
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()

    def abort(self) -> None:
        self._handle.close()


def jsonl_to_parquet(source: Path, target: Path, schema: pa.Schema) -> int:
    """Copy a JSONL file into Parquet, one row group per PARQUET_ROW_GROUP lines.

    Each slice of lines is parsed by Arrow's JSON reader against the fixed schema, so memory
    is bounded by one row group and the bytes depend on the rows alone. Returns the row count.
    """
    options = pajson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="error")
    read = pajson.ReadOptions(use_threads=False, block_size=1 << 24)
    rows = 0
    with (
        source.open("rb") as lines,
        pq.ParquetWriter(
            target,
            schema,
            compression=PARQUET_COMPRESSION,
            version="2.6",
            use_dictionary=False,
            write_statistics=False,
        ) as writer,
    ):
        while chunk := list(itertools.islice(lines, PARQUET_ROW_GROUP)):
            data = b"".join(chunk)
            # One block per slice: a slice larger than the block size is still parsed whole.
            read.block_size = max(len(data), 1 << 20)
            table = pajson.read_json(pa.py_buffer(data), read_options=read, parse_options=options)
            writer.write_table(table.select(schema.names).cast(schema))
            rows += table.num_rows
    # An empty split is a file with the schema and no row group: `datasets`' parquet builder
    # takes its batch size from the first row group, and an empty one (0 rows) makes Arrow
    # refuse the read ("BatchSize must be greater than 0").
    return rows


class VersionWriter:
    """Every data file of a version: JSONL written as examples stream in, Parquet copied after."""

    def __init__(self, directory: Path, text_formats: list[str], *, parquet: bool) -> None:
        self.directory = directory
        self.parquet = parquet
        self.sinks = {
            (split, fmt): JsonlSink(directory / f"{split}.{fmt}.jsonl")
            for split in SPLITS
            for fmt in text_formats
        }
        self._messages = [self.sinks.get((s, "messages")) for s in SPLITS]
        self._alpaca = [self.sinks.get((s, "alpaca")) for s in SPLITS]

    def write(self, split: str, examples: list[Example]) -> None:
        which = SPLITS.index(split)
        messages, alpaca = self._messages[which], self._alpaca[which]
        for example in examples:
            if messages is not None:
                messages.write(example.messages_record())
            if alpaca is not None:
                alpaca.write(example.alpaca_record())

    def close(self) -> dict[str, dict[str, Any]]:
        """Close every file, write the Parquet copies; return name -> {sha256, bytes, rows}."""
        files: dict[str, dict[str, Any]] = {}
        try:
            for sink in self.sinks.values():
                sink.close()
            for (_, fmt), sink in self.sinks.items():
                files[sink.path.name] = describe_file(sink.path, rows=sink.rows)
                if self.parquet:
                    target = sink.path.with_suffix(".parquet")
                    rows = jsonl_to_parquet(sink.path, target, SCHEMAS[fmt])
                    if rows != sink.rows:
                        raise RuntimeError(f"{target.name}: {rows} rows, JSONL has {sink.rows}")
                    files[target.name] = describe_file(target, rows=rows)
        except BaseException:
            self.abort()
            raise
        return dict(sorted(files.items()))

    def abort(self) -> None:
        """Release every file handle after a failure (the directory is about to be removed)."""
        for sink in self.sinks.values():
            with contextlib.suppress(Exception):
                sink.abort()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def describe_file(path: Path, *, rows: int | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
    if rows is not None:
        entry["rows"] = rows
    return entry


def content_hash(data_files: dict[str, dict[str, Any]]) -> str:
    """sha256 over the sorted `"name sha256\\n"` lines of the data files."""
    lines = "".join(f"{name} {entry['sha256']}\n" for name, entry in sorted(data_files.items()))
    return hashlib.sha256(lines.encode()).hexdigest()


def write_bytes(path: Path, data: bytes) -> None:
    """Write a small file and make it durable before the version directory is renamed."""
    with path.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
