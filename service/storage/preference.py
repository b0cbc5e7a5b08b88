"""A preference run's judged pairs, read back with their prompt, both responses and their models.

The run report's bias figures (service.reports) and the DPO export read these rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from service.statuses import TaskStatus
from service.storage.models import Generation, Instance, PreferenceComparison, Task
from service.storage.pages import decode_cursor, encode_cursor


@dataclass(frozen=True)
class ComparisonRow:
    """One stored comparison; ``chosen`` is 1 or 2 (which response) for a kept pair."""

    id: int
    task_id: int
    iteration: int
    instruction: str
    input: str
    response_1: str
    response_2: str
    generators: tuple[str | None, str | None]  # the model that wrote each response
    forward: float | None
    backward: float | None
    length_controlled: float | None
    outcome: str
    chosen: int | None
    margin: float | None
    length_only: bool
    judge_model: str
    replies: list[dict[str, Any]]
    judge_mode: str = "text"


def read_comparisons(
    session: Session,
    run_id: int,
    *,
    outcome: str | None = None,
    after_id: int | None = None,
    limit: int | None = None,
    accepted_only: bool = False,
) -> list[ComparisonRow]:
    """The run's comparisons in id order, all of them or those of one ``outcome``; with
    ``after_id`` only those after that id, and at most ``limit`` of them.

    With ``accepted_only``, only comparisons whose prompt (task) and both responses
    (instances) are accepted: what a dataset may hold. A prompt turned ``over_target``, or a
    response rejected by the score gate, keeps its comparisons for the report but not here."""
    r1, r2 = aliased(Instance), aliased(Instance)
    g1, g2 = aliased(Generation), aliased(Generation)
    pc = PreferenceComparison
    query = (
        select(
            pc.id,
            pc.task_id,
            Task.iteration,
            Task.instruction,
            r1.input,
            r1.output,
            r2.output,
            g1.model_name,
            g2.model_name,
            pc.forward,
            pc.backward,
            pc.length_controlled,
            pc.outcome,
            pc.chosen_instance_id,
            r1.id,
            pc.margin,
            pc.length_only,
            pc.judge_model,
            pc.replies,
            pc.judge_mode,
        )
        .join(Task, Task.id == pc.task_id)
        .join(r1, r1.id == pc.response_1_id)
        .join(r2, r2.id == pc.response_2_id)
        .outerjoin(g1, g1.id == r1.generation_id)
        .outerjoin(g2, g2.id == r2.generation_id)
        .where(pc.run_id == run_id)
        .order_by(pc.id)
    )
    if outcome is not None:
        query = query.where(pc.outcome == outcome)
    if accepted_only:
        accepted = TaskStatus.ACCEPTED.value
        query = query.where(Task.status == accepted, r1.status == accepted, r2.status == accepted)
    if after_id is not None:
        query = query.where(pc.id > after_id)
    if limit is not None:
        query = query.limit(limit)
    rows = []
    for r in session.execute(query):
        chosen = None if r[13] is None else (1 if r[13] == r[14] else 2)
        rows.append(
            ComparisonRow(
                r[0], r[1], r[2] or 0, r[3], r[4], r[5], r[6], (r[7], r[8]), r[9], r[10],
                r[11], r[12], chosen, r[15], bool(r[16]), r[17], list(r[18] or []), r[19],
            )
        )  # fmt: skip
    return rows


def comparison_page(
    session: Session, run_id: int, *, outcome: str | None, cursor: str | None, limit: int
) -> tuple[list[ComparisonRow], str | None]:
    """One page of :func:`read_comparisons` and the cursor of the next (None on the last).

    Raises:
        InvalidInput: a cursor this API did not hand out.
    """
    after = None if cursor is None else decode_cursor(cursor)
    rows = read_comparisons(session, run_id, outcome=outcome, after_id=after, limit=limit + 1)
    more = len(rows) > limit
    return rows[:limit], encode_cursor(rows[limit - 1].id) if more else None
