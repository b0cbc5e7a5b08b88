"""The trainer's one exception tree: every failure it raises on purpose is a TrainerError.

Each class has a stable ``code`` string (prefixed ``trainer_`` where a sibling library has a
class of the same name); the service maps them to HTTP statuses in ``service/api/errors.py``.

::

    TrainerError               trainer_error
    ├── ConfigError            trainer_config_error
    ├── DatasetIntegrityError  dataset_integrity_error  missing file or sha256 mismatch
    ├── ChatTemplateError      chat_template_error      no safe assistant-only labels
    ├── TruncationError        truncation_error
    ├── PackingError           packing_error
    └── CheckpointError        checkpoint_error
"""

from __future__ import annotations


class TrainerError(Exception):
    """Base class of every error the trainer raises on purpose."""

    code = "trainer_error"


class ConfigError(TrainerError):
    """The training configuration is invalid or cannot be resolved (model name, flags)."""

    code = "trainer_config_error"


class DatasetIntegrityError(TrainerError):
    """An exported dataset version is missing files or a file's sha256 differs from its manifest."""

    code = "dataset_integrity_error"


class ChatTemplateError(TrainerError):
    """The tokenizer's chat template cannot produce assistant-only labels safely.

    Raised when the template is missing, when a prompt's tokens are not a prefix of the
    prompt+response tokens, when the BOS token would be duplicated, or when content holding a
    special token's text meets a template that does not insert content verbatim.
    """

    code = "chat_template_error"


class TruncationError(TrainerError):
    """Too many examples lost all supervision to truncation (above the configured threshold)."""

    code = "truncation_error"


class PackingError(TrainerError):
    """Packing was asked for but isolation between packed examples cannot be guaranteed."""

    code = "packing_error"


class CheckpointError(TrainerError):
    """A checkpoint cannot be resumed (missing files, or written by a different config)."""

    code = "checkpoint_error"
