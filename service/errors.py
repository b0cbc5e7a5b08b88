"""The service's exception tree. The API maps each to a stable `code` and an HTTP status."""

from __future__ import annotations


class ServiceError(Exception):
    """Base of every error the service raises on purpose."""

    code = "error"
    status_code = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(ServiceError):
    code = "invalid_input"
    status_code = 422


class SeedFileError(InvalidInput):
    """A seed or eval file failed validation; `line` is 1-based."""

    code = "invalid_file"

    def __init__(self, line: int, problem: str) -> None:
        super().__init__(f"line {line}: {problem}")
        self.line = line
        self.problem = problem


class NotFound(ServiceError):
    code = "not_found"
    status_code = 404


class Conflict(ServiceError):
    code = "conflict"
    status_code = 409


class TooLarge(ServiceError):
    code = "too_large"
    status_code = 413


class DatabaseUnavailable(ServiceError):
    code = "unavailable"
    status_code = 503


class AdminOnly(ServiceError):
    """The request is valid, but only an admin key may make it (least privilege)."""

    code = "admin_scope_required"
    status_code = 403
