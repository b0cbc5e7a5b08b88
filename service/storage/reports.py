"""The rows a run report is computed from (service.reports.compute), read in one session."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.storage.embeddings import load_run_embeddings
from service.storage.models import Generation, Instance, ParseFailure, Run, RunEvent, Score, Task
from service.storage.preference import ComparisonRow, read_comparisons
from service.storage.runs import get_run


@dataclass(frozen=True)
class TaskRow:
    id: int
    iteration: int
    status: str
    reject_rule: str | None
    instruction: str
    is_classification: bool | None
    generation_ids: tuple[str | None, str | None, str | None]  # instruction, class., instances


@dataclass(frozen=True)
class GenerationRow:
    id: str
    iteration: int
    stage: str
    prompt_tokens: int
    completion_tokens: int
    few_shot_ids: list[str]


@dataclass(frozen=True)
class ScoreRow:
    iteration: int
    scorer: str
    scorer_version: str
    value: float | None
    details: dict[str, Any]
    output_chars: int | None


@dataclass
class RunRows:
    """Everything stored about one run that its report reads."""

    run_id: int
    status: str
    seed_ids: set[str]
    seed_instructions: list[str]
    tasks: list[TaskRow] = field(default_factory=list)
    generations: list[GenerationRow] = field(default_factory=list)
    parse_failures: list[tuple[int, str]] = field(default_factory=list)  # (iteration, reason)
    scores: list[ScoreRow] = field(default_factory=list)
    events: dict[str, dict[str, Any]] = field(default_factory=dict)  # latest message+data by kind
    # Stored vectors of accepted tasks (task id -> unit vector) and their model id; empty when
    # the run's semantic rule never ran (service.storage.embeddings.load_run_embeddings).
    embeddings: dict[int, np.ndarray] = field(default_factory=dict)
    embedding_model: str | None = None
    config: dict[str, Any] = field(default_factory=dict)  # the run's stored config (prices)
    comparisons: list[ComparisonRow] = field(default_factory=list)  # a preference run's pairs

    def iteration_numbers(self) -> list[int]:
        """The iterations that stored a task or a generation call, ascending."""
        return sorted({t.iteration for t in self.tasks} | {g.iteration for g in self.generations})

    def by_iteration(self) -> dict[int, RunRows]:
        """The rows split by iteration (one pass over each list); seeds and events shared."""
        parts: dict[int, RunRows] = {}

        def part(i: int) -> RunRows:
            if i not in parts:
                parts[i] = RunRows(
                    self.run_id,
                    self.status,
                    self.seed_ids,
                    self.seed_instructions,
                    events=self.events,
                    embeddings=self.embeddings,
                    embedding_model=self.embedding_model,
                    config=self.config,
                )
            return parts[i]

        for t in self.tasks:
            part(t.iteration).tasks.append(t)
        for g in self.generations:
            part(g.iteration).generations.append(g)
        for f in self.parse_failures:
            part(f[0]).parse_failures.append(f)
        for sc in self.scores:
            part(sc.iteration).scores.append(sc)
        return parts


REPORT_EVENT_KINDS = ("stop_rule", "refusal_probe", "completed")


def read_run_rows(
    session: Session, run_id: int, *, since_iteration: int = 0, embeddings: bool = True
) -> RunRows:
    """The run's tasks, generation calls, parse failures, scores and report events.

    Args:
        since_iteration: read generation calls, parse failures and scores of this iteration
            and later only (tasks are always read whole: earlier instructions count as seen).
        embeddings: read the accepted tasks' stored vectors too (the stop rules need none).

    Raises:
        NotFound: no run `run_id`.
    """
    run: Run = get_run(session, run_id)
    seeds = session.execute(
        select(Task.id, Task.instruction)
        .where(Task.seed_set_id == run.seed_set_id, Task.origin == "seed")
        .order_by(Task.id)
    ).all()
    rows = RunRows(
        run_id=run_id,
        status=run.status,
        seed_ids={str(i) for i, _ in seeds},
        seed_instructions=[t for _, t in seeds],
        config=dict(run.config or {}),
    )
    rows.tasks = [
        TaskRow(r[0], r[1] or 0, r[2], r[3], r[4], r[5], (r[6], r[7], r[8]))
        for r in session.execute(
            select(
                Task.id,
                Task.iteration,
                Task.status,
                Task.reject_rule,
                Task.instruction,
                Task.is_classification,
                Task.generation_id,
                Task.classification_generation_id,
                Task.instances_generation_id,
            )
            .where(Task.run_id == run_id, Task.origin == "machine")
            .order_by(Task.id)
        )
    ]
    rows.generations = [
        GenerationRow(r[0], r[1] or 0, r[2], r[3], r[4], [str(i) for i in r[5] or []])
        for r in session.execute(
            select(
                Generation.id,
                Generation.iteration,
                Generation.stage,
                Generation.prompt_tokens,
                Generation.completion_tokens,
                Generation.few_shot_ids,
            )
            .where(Generation.run_id == run_id, Generation.iteration >= since_iteration)
            .order_by(Generation.created_at, Generation.id)
        )
    ]
    rows.parse_failures = [
        (it or 0, reason)
        for it, reason in session.execute(
            select(Generation.iteration, ParseFailure.reason)
            .join(Generation, Generation.id == ParseFailure.generation_id)
            .where(ParseFailure.run_id == run_id, Generation.iteration >= since_iteration)
            .order_by(ParseFailure.id)
        )
    ]
    rows.scores = [
        ScoreRow(r[0] or 0, r[1], r[2], r[3], dict(r[4] or {}), r[5])
        for r in session.execute(
            select(
                Task.iteration,
                Score.scorer,
                Score.scorer_version,
                Score.value,
                Score.details,
                func.length(Instance.output),
            )
            .join(Task, Task.id == Score.task_id)
            .outerjoin(Instance, Instance.id == Score.instance_id)
            .where(Task.run_id == run_id, Task.iteration >= since_iteration)
            .order_by(Score.id)
        )
    ]
    for kind, message, data in session.execute(
        select(RunEvent.kind, RunEvent.message, RunEvent.data)
        .where(RunEvent.run_id == run_id, RunEvent.kind.in_(REPORT_EVENT_KINDS))
        .order_by(RunEvent.id)
    ):
        rows.events[kind] = {"message": message, "data": dict(data or {})}
    if embeddings:
        rows.embedding_model, rows.embeddings = load_run_embeddings(session, run_id)
    if rows.config.get("method") == "preference":
        rows.comparisons = read_comparisons(session, run_id)
    return rows
