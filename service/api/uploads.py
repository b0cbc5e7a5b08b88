"""Reading an uploaded file from a request: a raw JSONL body or a multipart `file` field."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query, Request
from starlette.datastructures import UploadFile

from service.errors import InvalidInput
from service.storage.names import SET_NAME_PATTERN

# The name of an uploaded seed or eval set: given as `?name=` on upload, as a path segment after.
SET_NAME = Annotated[str, Query(min_length=1, max_length=200, pattern=SET_NAME_PATTERN)]
# Looked up by the rule names are created with, so U+0000 or a 10 kB name is a 422 on every
# database (PostgreSQL refused NUL with its own error, SQLite answered 404).
SET_PATH_NAME = Annotated[str, Path(min_length=1, max_length=200, pattern=SET_NAME_PATTERN)]

UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-ndjson": {"schema": {"type": "string"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            },
        },
    }
}


async def read_upload(request: Request) -> bytes:
    """The uploaded bytes.

    Raises:
        InvalidInput: a multipart body without exactly one `file` part, or an empty upload.
    """
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        try:
            async with request.form() as form:
                parts = form.getlist("file")
                if len(parts) > 1:
                    raise InvalidInput(f"multipart upload has {len(parts)} `file` parts: send one")
                part = parts[0] if parts else None
                if not isinstance(part, UploadFile):
                    raise InvalidInput("multipart upload needs a `file` part")
                data = await part.read()
        except InvalidInput:
            raise
        except Exception as exc:  # malformed multipart is the client's problem, not a 500
            raise InvalidInput(f"unreadable multipart body: {exc}") from None
    else:
        data = await request.body()
    if not data.strip():
        raise InvalidInput("empty upload: send JSONL, one task per line")
    return data
