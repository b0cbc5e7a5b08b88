"""/v1/datasets: export versions, list them, read manifests and files, diff two versions."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, Field

from service.api.deps import DatabaseDep, ReadKey, SettingsDep, WriteKey
from service.api.errors import KEYED, error_responses
from service.api.idempotency import IdempotencyKey, idempotent
from service.api.ranges import file_response
from service.api.schemas import MAX_ID
from service.errors import Conflict, NotFound
from service.export import (
    ExportSpec,
    VersionInfo,
    allocate_version_in,
    build_version,
    diff_versions,
    get_version,
    list_datasets,
    list_versions,
    version_info,
)
from service.heartbeat import owner_id
from service.statuses import VersionStatus
from service.storage.candidates import count_candidates
from service.storage.db import Session
from service.storage.models import DatasetVersion
from service.storage.names import DATASET_NAME_PATTERN

router = APIRouter(prefix="/v1/datasets", tags=["datasets"], responses=error_responses(*KEYED))

# Versions of up to this many candidate tasks are built inside the request (well under a
# second), under a lease of the API process so that a killed API leaves a version the next
# worker rebuilds; larger ones are queued for `instructforge worker` and polled.
SYNC_TASK_LIMIT = 5000
NAME = Annotated[str, PathParam(min_length=1, max_length=100, pattern=DATASET_NAME_PATTERN)]
VERSION = Annotated[int, PathParam(ge=1, le=MAX_ID)]
FILENAME = Annotated[str, PathParam(max_length=200)]
MEDIA_TYPES = {
    ".jsonl": "application/x-ndjson",
    ".parquet": "application/vnd.apache.parquet",
    ".md": "text/markdown; charset=utf-8",
    ".json": "application/json",
}


class VersionOut(BaseModel):
    """A dataset version and its state: `queued` (waiting for a worker), `building` (under
    the lease `lease_owner` until `lease_expires_at`), `ready` or `failed`."""

    id: int
    dataset: str
    version: int
    status: VersionStatus
    spec: dict[str, Any]
    spec_hash: str
    content_hash: str | None
    counts: dict[str, Any]
    error: str | None
    created_at: datetime
    finished_at: datetime | None
    lease_owner: str | None = Field(None, description="Who is building it (while building).")
    lease_expires_at: datetime | None = Field(
        None, description="When the builder's lease ends unless renewed; then a worker retakes it."
    )


class DatasetOut(BaseModel):
    name: str
    versions: int = Field(description="How many versions exist, failed ones included.")
    latest_ready: int | None = Field(description="The newest ready version, if any.")
    created_at: datetime


class DiffOut(BaseModel):
    """Tasks added, removed and changed going from version `old` to version `new`."""

    dataset: str
    old: int
    new: int
    added: list[int] = Field(description="Task ids in `new` only (ascending, up to `limit`).")
    removed: list[int] = Field(description="Task ids in `old` only (ascending, up to `limit`).")
    changed: list[int] = Field(
        description="Task ids in both with other instances or split (ascending, up to `limit`)."
    )
    added_total: int
    removed_total: int
    changed_total: int
    unchanged_total: int = Field(description="Tasks in both with the same items.")
    by_type: dict[str, dict[str, int]] = Field(
        description="classification | generation | unclassified -> added/removed/changed -> tasks."
    )


def _out(info: VersionInfo) -> VersionOut:
    return VersionOut(**{k: getattr(info, k) for k in VersionOut.model_fields})


@router.post(
    "/{name}/versions",
    status_code=201,
    response_model=VersionOut,
    responses={
        202: {"model": VersionOut, "description": "Accepted: queued for a worker"},
        **error_responses(400, 404, 409, 413, 422),
    },
)
def create_version(
    name: NAME,
    database: DatabaseDep,
    settings: SettingsDep,
    key: WriteKey,
    spec: ExportSpec | None = None,
    wait: Annotated[
        bool, Query(description="Build within the request, whatever the size.")
    ] = False,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Export the next version of dataset NAME from a spec (all defaults when no body).

    Small exports (or `wait=true`) are built in the request and answer 201 with the ready
    version; larger ones answer 202 with status `queued`: `instructforge worker` builds them
    under a lease; poll `GET /v1/datasets/{name}/versions/{version}`.
    """
    spec = spec or ExportSpec()
    request_hash = hashlib.sha256(f"{name}\n{spec.spec_hash()}\n{wait}".encode()).hexdigest()

    def create_in(session: Session) -> Callable[[], tuple[dict[str, Any], int]]:
        here = wait or count_candidates(session, spec) <= SYNC_TASK_LIMIT
        owner = owner_id("api") if here else None
        lease = settings.lease_seconds
        info = allocate_version_in(
            session, dataset=name, spec=spec, owner=owner, lease_seconds=lease
        )
        if owner is None:
            return lambda: (_out(info).model_dump(mode="json"), 202)

        def build() -> tuple[dict[str, Any], int]:
            built = build_version(
                database,
                version_id=info.id,
                datasets_dir=settings.datasets_dir,
                owner=owner,
                lease_seconds=lease,
            )
            return _out(built).model_dump(mode="json"), 201

        return build

    return idempotent(
        database,
        api_key_id=key.principal.id,
        route="datasets.create_version",
        key=idempotency_key,
        request_hash=request_hash,
        create=create_in,
    )


@router.get("", response_model=list[DatasetOut])
def list_all(database: DatabaseDep, _: ReadKey) -> list[DatasetOut]:
    """Every dataset, with its version count and newest ready version."""
    with database.sessions() as session:
        return [
            DatasetOut(
                name=d.name,
                versions=d.versions,
                latest_ready=d.latest_ready,
                created_at=d.created_at,
            )
            for d in list_datasets(session)
        ]


@router.get(
    "/{name}/versions", response_model=list[VersionOut], responses=error_responses(404, 422)
)
def list_all_versions(name: NAME, database: DatabaseDep, _: ReadKey) -> list[VersionOut]:
    """Every version of a dataset, oldest first."""
    with database.sessions() as session:
        return [_out(version_info(row, name)) for row in list_versions(session, name)]


@router.get(
    "/{name}/versions/{version}", response_model=VersionOut, responses=error_responses(404, 422)
)
def show_version(name: NAME, version: VERSION, database: DatabaseDep, _: ReadKey) -> VersionOut:
    """One version and its status (poll this while it is `building`)."""
    with database.sessions() as session:
        return _out(version_info(get_version(session, dataset=name, version=version), name))


def _ready_dir(session: Any, name: str, version: int) -> tuple[Path, dict[str, Any]]:
    row: DatasetVersion = get_version(session, dataset=name, version=version)
    if row.status != VersionStatus.READY or not row.path:
        raise Conflict(f"version {version} of {name!r} is {row.status}, not ready")
    directory = Path(row.path)
    try:
        manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotFound(f"version {version} of {name!r} has no files at {directory}") from None
    return directory, manifest


@router.get("/{name}/versions/{version}/manifest", responses=error_responses(404, 409, 422))
def show_manifest(
    name: NAME, version: VERSION, database: DatabaseDep, _: ReadKey
) -> dict[str, Any]:
    """The version's manifest.json: spec, counts, score distributions, lineage, file hashes."""
    with database.sessions() as session:
        return _ready_dir(session, name, version)[1]


@router.get(
    "/{name}/versions/{version}/files/{filename}",
    response_class=FileResponse,
    responses={
        206: {"description": "Partial content (Range): one part, or multipart/byteranges"},
        304: {"description": "Not modified (If-None-Match)"},
        **error_responses(404, 409, 416, 422),
    },
)
def download_file(
    name: NAME,
    version: VERSION,
    filename: FILENAME,
    database: DatabaseDep,
    _: ReadKey,
    if_none_match: Annotated[str | None, Header()] = None,
    range_header: Annotated[str | None, Header(alias="Range")] = None,
    if_range: Annotated[str | None, Header()] = None,
) -> Response:
    """Stream one file of a ready version; `ETag` is its sha256.

    `Range`, `If-Range` and `If-None-Match` follow RFC 9110: one range answers 206, several
    answer 206 `multipart/byteranges`, a malformed `Range` is ignored (200), and one with no
    range inside the file answers 416 with `Content-Range: bytes */N`.
    """
    with database.sessions() as session:  # released before the (maybe long) stream
        directory, manifest = _ready_dir(session, name, version)
    if filename == "manifest.json":
        sha256 = hashlib.sha256((directory / filename).read_bytes()).hexdigest()
    elif filename in manifest["files"]:
        sha256 = manifest["files"][filename]["sha256"]
    else:
        raise NotFound(f"version {version} of {name!r} has no file {filename!r}")
    return file_response(
        directory / filename,
        etag=f'"{sha256}"',
        range_header=range_header,
        if_range=if_range,
        if_none_match=if_none_match,
        media_type=MEDIA_TYPES.get(Path(filename).suffix, "application/octet-stream"),
        filename=filename,
        headers={"Cache-Control": "public, max-age=31536000, immutable"},
    )


@router.get("/{name}/diff", response_model=DiffOut, responses=error_responses(404, 422))
def diff(
    name: NAME,
    database: DatabaseDep,
    _: ReadKey,
    old: Annotated[int, Query(alias="from", ge=1, le=MAX_ID)],
    new: Annotated[int, Query(alias="to", ge=1, le=MAX_ID)],
    limit: Annotated[int, Query(ge=0, le=100_000)] = 1000,
) -> DiffOut:
    """Which tasks version `to` added, removed and changed relative to version `from`."""
    with database.sessions() as session:
        d = diff_versions(session, dataset=name, old=old, new=new, limit=limit)
        return DiffOut(dataset=name, old=old, new=new, **dataclasses.asdict(d))
