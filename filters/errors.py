"""The one exception tree of the ``filters`` library: catch :class:`FilterError` for all of them.

Each class has a stable ``code`` string (prefixed ``filter_`` where a sibling library has a
class of the same name); the service maps the classes to HTTP statuses in
``service/api/errors.py``, the library knows nothing of HTTP.

::

    FilterError                       filter_error
    ├── ConfigError (+ValueError)     filter_config_error
    ├── SignatureError (+ValueError)  signature_error     a stored signature does not fit
    ├── IndexStorageError             index_storage_error the shared index (Redis) misbehaved
    │   └── IndexUnavailable          index_unavailable   unreachable, or replaced mid-batch: retry
    ├── EvalSetError (+ValueError)    invalid_eval_set    ``line``: 1-based, when known
    ├── RubricError                   rubric_error
    ├── DuplicateKeyError (+ValueError) duplicate_key
    ├── JudgeError                    judge_error         the completion function broke contract
    ├── ReplyParseError (+ValueError) judge_reply_unparsable
    └── InvalidInputError (+ValueError) filter_invalid_input
"""

from __future__ import annotations


class FilterError(Exception):
    """Base class of every error raised by ``filters``."""

    code = "filter_error"


class ConfigError(FilterError, ValueError):
    """A filter was configured with values it cannot work with."""

    code = "filter_config_error"


class SignatureError(FilterError, ValueError):
    """A stored MinHash signature cannot be used by this index (corrupt or other settings)."""

    code = "signature_error"


class IndexStorageError(FilterError):
    """The near-duplicate index's shared storage (Redis) misbehaved or lacks a text."""

    code = "index_storage_error"


class IndexUnavailable(IndexStorageError):
    """The shared storage cannot answer for now: Redis is unreachable or timed out, or the
    pool's copy was lost or rebuilt while a batch was being checked against it (its token ids
    and posting lists then belong to another copy). Nothing was decided; check again later."""

    code = "index_unavailable"


class EvalSetError(FilterError, ValueError):
    """An evaluation set could not be parsed; the message names the offending line."""

    code = "invalid_eval_set"

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

    code = "rubric_error"


class DuplicateKeyError(FilterError, ValueError):
    """The same key appears twice in one batch of candidates."""

    code = "duplicate_key"


class JudgeError(FilterError):
    """The completion function broke the judge's contract (e.g. wrong number of replies)."""

    code = "judge_error"


class ReplyParseError(FilterError, ValueError):
    """A judge reply holds no valid verdict; the message says why, ``reason`` names the kind."""

    code = "judge_reply_unparsable"

    def __init__(self, message: str, *, reason: str = "unparsable") -> None:
        """Create the error.

        Args:
            message: What is wrong, for people.
            reason: A stable identifier of the kind of failure, stored and counted.
        """
        super().__init__(message)
        self.reason = reason


class InvalidInputError(FilterError, ValueError):
    """Arguments that do not fit together (e.g. sequences of different lengths)."""

    code = "filter_invalid_input"
