"""The trainer's exception tree: every failure the trainer raises on purpose is a TrainerError."""

from __future__ import annotations


class TrainerError(Exception):
    """Base class of every error the trainer raises on purpose."""


class ConfigError(TrainerError):
    """The training configuration is invalid or cannot be resolved (model name, flags)."""


class DatasetIntegrityError(TrainerError):
    """An exported dataset version is missing files or a file's sha256 differs from its manifest."""


class ChatTemplateError(TrainerError):
    """The tokenizer's chat template cannot produce assistant-only labels safely.

    Raised when the template is missing, when a prompt's tokens are not a prefix of the
    prompt+response tokens, when the BOS token would be duplicated, or when content holding a
    special token's text meets a template that does not insert content verbatim.
    """


class TruncationError(TrainerError):
    """Too many examples lost all supervision to truncation (above the configured threshold)."""


class PackingError(TrainerError):
    """Packing was asked for but isolation between packed examples cannot be guaranteed."""


class CheckpointError(TrainerError):
    """A checkpoint cannot be resumed (missing files, or written by a different config)."""
