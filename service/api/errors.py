"""Every error leaves the API as JSON ``{"code", "message"}`` with a stable code, never a 500.

The service's own errors carry their status (``service/errors.py``). The libraries know nothing
of HTTP, so their trees are mapped here by class; an error takes the status of the nearest class
in its MRO that the table names:

=================================================  ======  ====================================
library class                                      status  why
=================================================  ======  ====================================
``generators.errors.GeneratorError`` (and below)   422     the request asked for what cannot be
``generators.errors.ModelError``                   503     the server cannot prepare its model
``generators.errors.ModelNotFoundError``           422     the named path is not a model
``generators.errors.BackendError`` (+Unavailable)  503     inference is down or not installed
``filters.errors.FilterError`` (and below)         422
``filters.errors.SignatureError``                  503     stored signatures do not fit (server)
``filters.errors.IndexStorageError``               503     the shared index (Redis) misbehaved
``filters.errors.JudgeError``, ``ReplyParseError`` 503     the judge model broke its contract
``trainer.errors.TrainerError`` (and below)        422
``dataformats.JsonlError``                         422     a bad line (its number in the message)
``templating.SlotError``                           422
=================================================  ======  ====================================
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from dataformats import JsonlError
from filters import errors as filter_errors
from generators import errors as generator_errors
from service.errors import ServiceError
from service.storage.db import DataError
from templating import SlotError
from trainer import errors as trainer_errors

log = logging.getLogger(__name__)

# The roots of the libraries' trees: one handler each (Starlette dispatches on the MRO).
LIBRARY_ERRORS: tuple[type[Exception], ...] = (
    generator_errors.GeneratorError,
    filter_errors.FilterError,
    trainer_errors.TrainerError,
    JsonlError,
    SlotError,
)

# Status by library class; see the module docstring for why. The roots must stay in the table.
_LIBRARY_STATUS: dict[type[Exception], int] = {
    generator_errors.GeneratorError: 422,
    generator_errors.ModelError: 503,
    generator_errors.ModelNotFoundError: 422,
    generator_errors.BackendError: 503,
    filter_errors.FilterError: 422,
    filter_errors.SignatureError: 503,
    filter_errors.IndexStorageError: 503,
    filter_errors.JudgeError: 503,
    filter_errors.ReplyParseError: 503,
    trainer_errors.TrainerError: 422,
    JsonlError: 422,
    SlotError: 422,
}


def library_status(error_class: type[Exception]) -> int:
    """The HTTP status of a library error class: the nearest class in its MRO in the table.

    Raises:
        KeyError: the class is in none of the libraries' trees.
    """
    for klass in error_class.__mro__:
        if klass in _LIBRARY_STATUS:
            return _LIBRARY_STATUS[klass]
    raise KeyError(error_class.__name__)


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


async def _library_error(_: Request, exc: Exception) -> JSONResponse:
    return library_error_response(exc)


def error_body(code: str, message: str, **extra: object) -> dict[str, object]:
    return {"code": code, "message": message, **extra}


def service_error_response(exc: ServiceError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
    return JSONResponse(
        error_body(exc.code, exc.message), status_code=exc.status_code, headers=headers
    )


def library_error_response(exc: Exception) -> JSONResponse:
    """``{code, message}`` for a library error, with its status from :func:`library_status`."""
    status = library_status(type(exc))
    if status >= 500:
        log.warning("library error answered %d: %s", status, exc, exc_info=exc)
    code = getattr(exc, "code", "error")
    return JSONResponse(error_body(code, str(exc)[:2000]), status_code=status)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers: service errors, library errors, validation, HTTP, data errors."""
    for root in LIBRARY_ERRORS:
        app.add_exception_handler(root, _library_error)

    @app.exception_handler(ServiceError)
    async def _service_error(_: Request, exc: ServiceError) -> JSONResponse:
        return service_error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))}
            for e in exc.errors()
        ]
        loc, msg = (details[0]["loc"], details[0]["msg"]) if details else ([], "invalid request")
        message = f"{'.'.join(loc)}: {msg}" if loc else str(msg)
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
