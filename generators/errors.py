"""The one exception tree of the ``generators`` library.

Every error raised on purpose by this package derives from :class:`GeneratorError`, so a caller
can catch the whole family with one clause. Each class has a stable ``code`` string; the service
maps the classes to HTTP statuses (``service/api/errors.py``), the library knows nothing of HTTP.

::

    GeneratorError                  generator_error
    ├── ModelError                  model_error        a model cannot be prepared or resolved
    │   └── ModelNotFoundError      model_not_found    the named path is not a model
    ├── TemplateError               template_error
    ├── BackendError                backend_error      engine start-up, request, retries spent
    │   └── BackendUnavailableError backend_unavailable
    ├── ConfigError (+ValueError)   config_error
    └── ParseError                  parse_error        ``reason``: a short stable identifier
"""

from __future__ import annotations


class GeneratorError(Exception):
    """Base class of every error raised by ``generators``."""

    code = "generator_error"


class ModelError(GeneratorError):
    """A model could not be found, prepared or resolved."""

    code = "model_error"


class ModelNotFoundError(ModelError):
    """The path given as a model is not one (e.g. a directory without ``config.json``)."""

    code = "model_not_found"


class TemplateError(GeneratorError):
    """A prompt template is missing, malformed or rendered with bad arguments."""

    code = "template_error"


class BackendError(GeneratorError):
    """An inference backend failed (engine start-up, request, or exhausted retries)."""

    code = "backend_error"


class BackendUnavailableError(BackendError):
    """The optional package a backend needs is not installed."""

    code = "backend_unavailable"


class ConfigError(GeneratorError, ValueError):
    """A configuration value is out of range or inconsistent.

    A ``ValueError`` too, so pydantic reports one raised while validating a config as a
    ``ValidationError`` naming the field (and the API answers 422, not 500).
    """

    code = "config_error"


class ParseError(GeneratorError):
    """A completion could not be parsed; ``reason`` is a short stable identifier.

    Args:
        reason: machine-readable cause, e.g. ``"empty"``, ``"truncated"``, ``"no_numbering"``.
        excerpt: the start of the offending text, for the record.
    """

    code = "parse_error"

    def __init__(self, reason: str, excerpt: str = "") -> None:
        super().__init__(f"{reason}: {excerpt[:80]!r}" if excerpt else reason)
        self.reason = reason
        self.excerpt = excerpt
