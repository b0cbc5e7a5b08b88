"""The filters package's exception tree: catch :class:`FilterError` for all of them."""

from __future__ import annotations


class FilterError(Exception):
    """Base class of every error raised by ``filters``."""


class ConfigError(FilterError, ValueError):
    """A filter was configured with values it cannot work with."""


class SignatureError(FilterError, ValueError):
    """A stored MinHash signature cannot be used by this index (corrupt or other settings)."""


class IndexStorageError(FilterError):
    """The near-duplicate index's shared storage (Redis) misbehaved or lacks a text."""


class EvalSetError(FilterError, ValueError):
    """An evaluation set could not be parsed; the message names the offending line."""

    def __init__(self, message: str, *, line: int | None = None) -> None:
        """Create the error.

        Args:
            message: What is wrong.
            line: 1-based line number of the offending input line, if known.
        """
        super().__init__(f"line {line}: {message}" if line is not None else message)
        self.line = line
        self.problem = message


class RubricError(FilterError):
    """A judge rubric is missing or malformed."""


class DuplicateKeyError(FilterError, ValueError):
    """The same key appears twice in one batch of candidates."""


class JudgeError(FilterError):
    """The completion function broke the judge's contract (e.g. wrong number of replies)."""


class ReplyParseError(FilterError, ValueError):
    """A judge reply holds no valid score; the message says why."""


class InvalidInputError(FilterError, ValueError):
    """Arguments that do not fit together (e.g. sequences of different lengths)."""
