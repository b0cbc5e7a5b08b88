"""The service's one exception tree. The API answers each with ``{code, message}`` and its status.

The libraries' own trees (``generators``, ``filters``, ``trainer``, ``dataformats``,
``templating``) are mapped to statuses by class in ``service/api/errors.py``.

::

    ServiceError              error              400
    ├── InvalidInput          invalid_input      422
    │   ├── SeedFileError     invalid_file       422  ``line``: 1-based
    │   └── RefusedTooBig     too_much_work      422
    ├── Unauthorized          unauthorized       401
    ├── Forbidden             forbidden          403
    ├── NotFound              not_found          404
    ├── Conflict              conflict           409
    │   └── LeaseLost         lease_lost         409  another worker holds the run now
    ├── TooLarge              too_large          413
    ├── DatabaseUnavailable   unavailable        503
    └── InferenceUnavailable  inference_unavailable 503  no server answered a whole batch
"""

from __future__ import annotations


class ServiceError(Exception):
    """Base of every error the service raises on purpose.

    Attributes:
        code: stable machine-readable identifier, the ``code`` of the JSON error body.
        status_code: the HTTP status the API answers with.
        message: the human-readable message.
    """

    code = "error"
    status_code = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(ServiceError):
    """A request's content is well-formed but cannot be acted on."""

    code = "invalid_input"
    status_code = 422


class SeedFileError(InvalidInput):
    """A seed or eval file failed validation; `line` is 1-based."""

    code = "invalid_file"

    def __init__(self, line: int, problem: str) -> None:
        super().__init__(f"line {line}: {problem}")
        self.line = line
        self.problem = problem


class RefusedTooBig(InvalidInput):
    """A request asks for more work than the configured bound for one call."""

    code = "too_much_work"


class Unauthorized(ServiceError):
    """No API key, or one that is unknown or revoked."""

    code = "unauthorized"
    status_code = 401


class Forbidden(ServiceError):
    """The API key lacks the scope the route needs."""

    code = "forbidden"
    status_code = 403


class NotFound(ServiceError):
    """The named resource does not exist."""

    code = "not_found"
    status_code = 404


class Conflict(ServiceError):
    """The resource's current state forbids the request (e.g. a run already finished)."""

    code = "conflict"
    status_code = 409


class LeaseLost(Conflict):
    """Another worker holds the run now (our lease expired); our work must not be committed."""

    code = "lease_lost"


class TooLarge(ServiceError):
    """A request body or upload is over the configured size."""

    code = "too_large"
    status_code = 413


class DatabaseUnavailable(ServiceError):
    """The database cannot be reached."""

    code = "unavailable"
    status_code = 503


class InferenceUnavailable(ServiceError):
    """Every request of a run's batch failed on the servers (refused, timed out, 5xx/429
    after the backend's retries): the batch holds nothing, and the run waits in the queue."""

    code = "inference_unavailable"
    status_code = 503


class AdminOnly(ServiceError):
    """The request is valid, but only an admin key may make it (least privilege)."""

    code = "admin_scope_required"
    status_code = 403
