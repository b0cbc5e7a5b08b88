"""Every error leaves the API as JSON `{"code", "message"}` with a stable code."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException

from service.errors import ServiceError

log = logging.getLogger(__name__)


class Unauthorized(ServiceError):
    code = "unauthorized"
    status_code = 401


class Forbidden(ServiceError):
    code = "forbidden"
    status_code = 403


class RefusedTooBig(ServiceError):
    code = "too_much_work"
    status_code = 422


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    416: "range_not_satisfiable",
    422: "invalid_request",
    429: "rate_limited",
}


class ErrorOut(BaseModel):
    """Every error response: a stable machine-readable code and a message for people."""

    code: str = Field(description="Stable: clients branch on it (`not_found`, `conflict`...).")
    message: str
    details: list[dict[str, Any]] | None = Field(
        None, description="For validation errors: each problem's `loc` and `msg`."
    )


_WHEN = {
    400: "The body is not JSON the server can parse",
    401: "No API key, or an unknown or revoked one",
    403: "The key lacks the scope this needs (the message names it)",
    404: "Something named in the request does not exist",
    409: "The resource is not in a state that allows this",
    413: "The request body is larger than the server accepts",
    416: "No requested range lies within the file (Content-Range: bytes */N)",
    422: "The request is invalid (the message names the field or line)",
    503: "The database cannot be reached",
}
# What every route behind an API key can answer.
KEYED = (401, 403, 503)


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` for a route's error statuses, each with the `ErrorOut` schema.

    Raises:
        KeyError: a status with no description here (add it to `_WHEN`).
    """
    return {status: {"model": ErrorOut, "description": _WHEN[status]} for status in statuses}


def error_body(code: str, message: str, **extra: object) -> dict[str, object]:
    return {"code": code, "message": message, **extra}


def service_error_response(exc: ServiceError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
    return JSONResponse(
        error_body(exc.code, exc.message), status_code=exc.status_code, headers=headers
    )


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def _service_error(_: Request, exc: ServiceError) -> JSONResponse:
        return service_error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))}
            for e in exc.errors()
        ]
        first = details[0] if details else {"loc": [], "msg": "invalid request"}
        message = f"{'.'.join(first['loc'])}: {first['msg']}" if first["loc"] else first["msg"]
        return JSONResponse(
            error_body("invalid_request", message, details=details), status_code=422
        )

    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "error")
        return JSONResponse(
            error_body(code, str(exc.detail)),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(DataError)
    async def _data_error(_: Request, exc: DataError) -> JSONResponse:
        # The edge (service.storable) refuses what a database would; one that slips through is
        # logged, and its text (the database's own, with host and schema) never leaves.
        log.error("a value reached the database unchecked: %s", exc.orig)
        return JSONResponse(
            error_body("invalid_request", "a value in the request cannot be stored"),
            status_code=422,
        )

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return JSONResponse(
            error_body("internal", "internal error; the server log has the details"),
            status_code=500,
        )
