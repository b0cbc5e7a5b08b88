"""Parse and validate seed files: the Self-Instruct seed format and the Alpaca format.

Validation is all or nothing: the first bad line raises `SeedFileError` naming its number, and
nothing is returned, so callers never write a partial seed set.
"""

from __future__ import annotations

import codecs
import hashlib
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from dataformats.jsonl import JsonlError, read_jsonl
from service.errors import SeedFileError
from service.storable import unstorable

SeedFormat = Literal["self_instruct", "alpaca"]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")


class _InstanceIn(_Strict):
    input: str = ""
    output: str = Field(min_length=1)

    @model_validator(mode="after")
    def _output_not_blank(self) -> _InstanceIn:
        if not self.output.strip():
            raise ValueError("output is empty")
        return self


class _TurnIn(_Strict):
    role: Literal["user", "assistant", "system"]
    content: str = Field(min_length=1)


class _SelfInstructLine(_Strict):
    id: str | None = None
    name: str = Field(min_length=1, max_length=200)
    instruction: str = Field(min_length=1)
    instances: list[_InstanceIn] = Field(min_length=1)
    is_classification: bool = False
    turns: list[_TurnIn] | None = None
    expected_refusal: bool | None = None

    @model_validator(mode="after")
    def _check(self) -> _SelfInstructLine:
        if not self.instruction.strip():
            raise ValueError("instruction is empty")
        if self.turns is not None:
            roles = [t.role for t in self.turns if t.role != "system"]
            expected = ["user", "assistant"] * (len(roles) // 2)
            if len(roles) < 2 or roles != expected:
                raise ValueError("turns must alternate user/assistant and end with assistant")
        return self


class _AlpacaLine(_Strict):
    instruction: str = Field(min_length=1)
    input: str = ""
    output: str = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> _AlpacaLine:
        if not self.instruction.strip():
            raise ValueError("instruction is empty")
        if not self.output.strip():
            raise ValueError("output is empty")
        return self


@dataclass(frozen=True)
class SeedRecord:
    """One validated seed task."""

    name: str
    instruction: str
    instances: list[tuple[str, str]]
    is_classification: bool
    external_id: str | None = None
    turns: list[dict[str, str]] | None = None
    expected_refusal: bool | None = None


@dataclass(frozen=True)
class SeedFile:
    format: SeedFormat
    content_hash: str
    records: list[SeedRecord] = field(default_factory=list)


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "line"
        msg = err["msg"].removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}")
    return "; ".join(parts)


def _json_objects(data: bytes) -> list[tuple[int, Any]]:
    """(line number, parsed value) for each non-blank line; a JSON array counts items as lines.

    JSONL goes through the project's one reader (`dataformats.jsonl`): split on "\\n" only,
    strict UTF-8, lone surrogates and NaN refused, each error naming its line.
    """
    document = data.removeprefix(codecs.BOM_UTF8)
    if document.lstrip(b" \t\r\n").startswith(b"["):
        try:
            items = orjson.loads(document)
        except orjson.JSONDecodeError as exc:
            raise SeedFileError(exc.lineno, f"invalid JSON: {exc.msg}") from None
        return _storable(list(enumerate(items, start=1)))
    return read_file_lines(data)


def read_file_lines(data: bytes) -> list[tuple[int, dict[str, Any]]]:
    """Read an uploaded JSONL file whose text the database will store.

    Lines are read by the project's one JSONL reader; on top of it, values that not every
    supported database stores alike (U+0000, integers beyond 64 bits, nesting deeper than
    `service.storable.MAX_DEPTH`) are refused here, naming the line and field, rather than
    failing on one database and passing on the other (`service.storable`).

    Raises:
        SeedFileError: The first line that is not a JSON object, or holds an unstorable value.
    """
    try:
        return _storable(read_jsonl(data))
    except JsonlError as exc:
        raise SeedFileError(exc.line or 1, exc.problem) from None


def _storable(rows: list[tuple[int, Any]]) -> list[tuple[int, Any]]:
    for number, value in rows:
        if (problem := unstorable(value)) is not None:
            raise SeedFileError(number, problem)
    return rows


def _detect(obj: Any) -> SeedFormat:
    return "self_instruct" if isinstance(obj, dict) and "instances" in obj else "alpaca"


def parse_seed_file(data: bytes) -> SeedFile:
    """Validate a whole seed file.

    Args:
        data: the raw bytes (JSONL, or a JSON array as Alpaca ships it).

    Returns:
        The parsed file, its format and the sha256 of the bytes.

    Raises:
        SeedFileError: naming the first bad line and its problem.
    """
    objects = _json_objects(data)
    if not objects:
        raise SeedFileError(1, "the file holds no tasks")
    fmt = _detect(objects[0][1])
    records: list[SeedRecord] = []
    seen: dict[str, int] = {}
    for number, obj in objects:
        if not isinstance(obj, dict):
            raise SeedFileError(number, "expected a JSON object")
        if _detect(obj) != fmt:
            raise SeedFileError(number, f"mixes formats: the file is {fmt}")
        record = _record(number, obj, fmt)
        # A task is identified by its id where it has one, else by its name: the published
        # Self-Instruct seed file gives two different tasks (distinct ids) the same name.
        key = f"id {record.external_id!r}" if record.external_id else f"name {record.name!r}"
        if key in seen:
            raise SeedFileError(number, f"duplicate {key} (first on line {seen[key]})")
        seen[key] = number
        records.append(record)
    return SeedFile(fmt, hashlib.sha256(data).hexdigest(), records)


def _record(number: int, obj: dict[str, Any], fmt: SeedFormat) -> SeedRecord:
    try:
        if fmt == "alpaca":
            a = _AlpacaLine.model_validate(obj)
            return SeedRecord(
                name=f"alpaca_{number}",
                instruction=a.instruction.strip(),
                instances=[(a.input, a.output)],
                is_classification=False,
            )
        s = _SelfInstructLine.model_validate(obj)
    except ValidationError as exc:
        raise SeedFileError(number, _describe(exc)) from None
    return SeedRecord(
        name=s.name,
        instruction=s.instruction.strip(),
        instances=[(i.input, i.output) for i in s.instances],
        is_classification=s.is_classification,
        external_id=s.id,
        turns=[t.model_dump() for t in s.turns] if s.turns else None,
        expected_refusal=s.expected_refusal,
    )
