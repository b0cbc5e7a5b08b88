"""The statuses of runs, of tasks (and their instances) and of dataset versions: one home each.

They are `StrEnum`s, so a member is the very string stored in the database and sent on the
wire (`RunStatus.RUNNING == "running"`); the API's schemas list them as OpenAPI enums.

A run moves::

    queued --claim--> running --target / max_iterations--> completed
      ^                 |  \\--no progress, error--> failed
      |                 |
      +--resume-- paused <--pause (API) or a stop rule
    cancelled <--cancel (API) from queued, running or paused

A worker that stops, or loses its database connection, hands a running run back (`queued`).
"""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        """A run in this status never runs again."""
        return self in TERMINAL_RUN_STATUSES


TERMINAL_RUN_STATUSES = frozenset({RunStatus.COMPLETED, RunStatus.CANCELLED, RunStatus.FAILED})


class TaskStatus(StrEnum):
    """A task's verdict, and an instance's: every filter passed, or one rejected it."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"


class VersionStatus(StrEnum):
    """A dataset version's: `queued` for a worker, `building` under a live lease (a builder
    whose lease expired shows as `queued` again), then `ready` or `failed` for good."""

    QUEUED = "queued"
    BUILDING = "building"
    READY = "ready"
    FAILED = "failed"
