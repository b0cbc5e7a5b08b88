"""Writing one iteration: every row it produced, in one transaction, guarded by the lease."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import numpy as np
from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import Session

from filters.judge import JudgeReply, PairJudgement
from filters.types import Score as TaskScore
from filters.types import Verdict
from generators.types import Candidate, GenerationRecord, IterationResult, PoolTask
from generators.types import Instance as PoolInstance
from service.statuses import TaskStatus
from service.storage.embeddings import store_task_embeddings
from service.storage.models import (
    Generation,
    Instance,
    ParseFailure,
    PreferenceComparison,
    Run,
    Score,
    Task,
)
from service.storage.runs import add_event, add_rejections, advance_iteration, get_run


@dataclass(frozen=True)
class ComparisonToStore:
    """One judged pair of a task's instances (a preference run's sampled responses).

    ``responses`` and ``chosen`` are instance indexes; ``outcome`` is
    ``filters.judge.comparison_outcome``; ``chosen`` and ``margin`` are set for kept pairs.
    """

    responses: tuple[int, int]
    judgement: PairJudgement
    outcome: str
    chosen: int | None
    margin: float | None
    judge_model: str
    rubric_version: str
    rubric_sha256: str
    judge_mode: str = "text"


@dataclass
class TaskToStore:
    """A parsed instruction with every verdict and score: what an iteration stores of it.

    `key` names it within its iteration (a `nearest_id` verdict may point at another task's
    key); `instance_verdicts[i]` and `scores` (instance index or None, score) refer to
    `candidate.instances[i]`.
    """

    key: str
    candidate: Candidate
    signature: bytes
    verdict: Verdict
    instance_verdicts: list[Verdict] = field(default_factory=list)
    scores: list[tuple[int | None, TaskScore]] = field(default_factory=list)
    embedding: np.ndarray | None = None  # the semantic rule's vector, when it ran
    comparisons: list[ComparisonToStore] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return self.verdict.accepted


T = TypeVar("T", bound=TaskToStore)

# The run's exact target: accepted candidates beyond it are stored as rejected by this rule.
OVER_TARGET_RULE = ("over_target", "1")  # (rule, version)


@dataclass
class IterationToStore(Generic[T]):
    """One iteration's outcome: the library's result (records, parse failures, timings), the
    screened tasks in candidate order and the wall time in seconds."""

    iteration: int
    result: IterationResult
    tasks: list[T]
    wall_s: float
    # The semantic rule's encoder (its model id), under which accepted tasks' vectors are stored.
    embedding_model: str | None = None

    @property
    def accepted(self) -> int:
        return sum(t.accepted for t in self.tasks)

    def cap_accepted(self, room: int) -> int:
        """Keep the first `room` accepted tasks (candidate order); the rest become rejections
        by rule ``over_target``, their instances too, so a run stops with exactly its target.

        Returns:
            How many tasks were turned into ``over_target``.
        """
        why = f"target reached: {max(room, 0)} more were needed in this batch"
        return cap_accepted(self.tasks, room, why)


def cap_accepted(tasks: list[T], keep: int, why: str) -> int:
    """Keep the first ``keep`` accepted of ``tasks`` (in order); reject the rest, and their
    accepted instances, by rule ``over_target`` with reason ``why``.

    Returns:
        How many tasks were turned into ``over_target``.
    """
    rule, version = OVER_TARGET_RULE
    over = [t for t in tasks if t.accepted][max(keep, 0) :]
    for task in over:
        task.verdict = Verdict(False, rule, version, reason=why)
        task.instance_verdicts = [
            Verdict(False, rule, version, reason=why) if v.accepted else v
            for v in task.instance_verdicts
        ]
    return len(over)


def _generation_row(rec: GenerationRecord, run_id: int, iteration: int) -> Generation:
    return Generation(
        id=rec.id,
        run_id=run_id,
        iteration=iteration,
        stage=rec.stage,
        backend=rec.backend,
        model_name=rec.model.name,
        model_path=rec.model.path,
        model_hash=rec.model.model_hash,
        engine=rec.model.engine,
        engine_version=rec.model.engine_version,
        model_revision=rec.model.revision,
        dtype=rec.model.dtype,
        server=rec.server,
        endpoint=rec.endpoint,
        messages=rec.messages,
        template_name=rec.template_name,
        template_version=str(rec.template_version),
        template_sha256=rec.template_sha256,
        prompt=rec.prompt,
        prompt_sha256=rec.prompt_sha256,
        chat_wrapped=rec.chat_wrapped,
        few_shot_ids=list(rec.few_shot_ids),
        sampling=dict(rec.sampling),
        seed=rec.sampling.get("seed"),
        completion=rec.completion,
        finish_reason=rec.finish_reason,
        prompt_tokens=rec.prompt_tokens,
        completion_tokens=rec.completion_tokens,
        latency_s=rec.latency_s,
        retries=rec.retries,
        retry_log=list(rec.retry_log),
    )


def _nearest_id(task: TaskToStore, key_to_id: dict[str, int]) -> int | None:
    nearest = task.verdict.nearest_id
    if nearest is None:
        return None
    if nearest in key_to_id:
        return key_to_id[nearest]
    return int(nearest) if nearest.isdigit() else None


def commit_iteration(
    session: Session,
    *,
    run: Run,
    owner: str,
    lease_seconds: int,
    outcome: IterationToStore[T],
) -> list[tuple[int, T]]:
    """Store an iteration; returns (task id, pending task) pairs in candidate order.

    The accepted tasks beyond the run's target become ``over_target`` rejections first
    (:meth:`IterationOutcome.cap_accepted`), so the run ends with exactly ``target_tasks``.
    ``run.accepted_count`` is the count at iteration ``outcome.iteration - 1``: the counter
    only moves in :func:`advance_iteration`, whose guard on that iteration number fails if
    another worker committed in between, so the room computed here is the room at commit.

    Raises:
        LeaseLost: another worker owns the run now; the caller rolls back.
    """
    outcome.cap_accepted(run.target_tasks - run.accepted_count)
    result = outcome.result
    records = result.records
    accepted = outcome.accepted
    by_rule: dict[str, int] = {}
    for task in outcome.tasks:
        if not task.accepted:
            by_rule[task.verdict.rule] = by_rule.get(task.verdict.rule, 0) + 1
    advance_iteration(
        session,
        run_id=run.id,
        owner=owner,
        expected_iteration=outcome.iteration - 1,
        lease_seconds=lease_seconds,
        counters={
            "generated_count": len(outcome.tasks),
            "accepted_count": accepted,
            "rejected_count": len(outcome.tasks) - accepted,
            "parse_failure_count": len(result.parse_failures),
            "prompt_tokens": sum(r.prompt_tokens for r in records),
            "completion_tokens": sum(r.completion_tokens for r in records),
            "inference_seconds": result.timings.get("inference_s", 0.0),
            "wall_seconds": outcome.wall_s,
        },
    )
    add_rejections(session, run.id, by_rule)
    session.add_all(_generation_row(r, run.id, outcome.iteration) for r in records)
    session.flush()
    session.add_all(
        ParseFailure(
            generation_id=f.generation_id,
            run_id=run.id,
            stage=f.stage,
            reason=f.reason,
            excerpt=f.excerpt[:2000],
        )
        for f in result.parse_failures
    )
    key_to_id: dict[str, int] = {}
    stored: list[tuple[int, T]] = []
    for task in outcome.tasks:
        row = _task_row(task, run, outcome.iteration, key_to_id)
        session.add(row)
        session.flush()
        key_to_id[task.key] = row.id
        stored.append((row.id, task))
        instance_ids = _store_instances(session, row.id, task)
        session.add_all(_comparison_row(c, run.id, row.id, instance_ids) for c in task.comparisons)
    if outcome.embedding_model is not None:
        # The vector the semantic rule checked joins the pool's stored vectors: the next
        # claim reads it back instead of embedding the task again.
        store_task_embeddings(
            session,
            outcome.embedding_model,
            ((tid, t.embedding) for tid, t in stored if t.accepted and t.embedding is not None),
        )
    add_event(
        session,
        run.id,
        "iteration",
        f"iteration {outcome.iteration}: {len(outcome.tasks)} parsed, {accepted} accepted",
        {
            "accepted": accepted,
            "rejected_by_rule": by_rule,
            "parse_failures": len(result.parse_failures),
            "timings": result.timings,
            "wall_s": outcome.wall_s,
        },
        iteration=outcome.iteration,
    )
    return stored


def _task_row(task: TaskToStore, run: Run, iteration: int, key_to_id: dict[str, int]) -> Task:
    cand, verdict = task.candidate, task.verdict
    return Task(
        origin="machine",
        seed_set_id=run.seed_set_id,
        run_id=run.id,
        iteration=iteration,
        generation_id=cand.generation_id,
        classification_generation_id=cand.classification_generation_id,
        instances_generation_id=cand.instances_generation_id,
        instruction=cand.instruction,
        is_classification=cand.is_classification,
        status=TaskStatus.ACCEPTED if verdict.accepted else TaskStatus.REJECTED,
        reject_rule=None if verdict.accepted else verdict.rule,
        reject_rule_version=None if verdict.accepted else verdict.rule_version,
        reject_reason=None if verdict.accepted else verdict.reason,
        nearest_task_id=_nearest_id(task, key_to_id),
        similarity=verdict.similarity,
        parent_task_id=int(cand.parent_id) if cand.parent_id is not None else None,
        operation=cand.operation,
        turns=cand.turns,
        minhash=task.signature,
    )


def _comparison_row(
    c: ComparisonToStore, run_id: int, task_id: int, instance_ids: list[int]
) -> PreferenceComparison:
    j = c.judgement
    return PreferenceComparison(
        run_id=run_id,
        task_id=task_id,
        response_1_id=instance_ids[c.responses[0]],
        response_2_id=instance_ids[c.responses[1]],
        forward=j.forward,
        backward=j.backward,
        length_controlled=j.length_controlled,
        outcome=c.outcome,
        chosen_instance_id=None if c.chosen is None else instance_ids[c.chosen],
        margin=c.margin,
        length_only=j.length_only,
        judge_model=c.judge_model,
        judge_mode=c.judge_mode,
        rubric_version=c.rubric_version,
        rubric_sha256=c.rubric_sha256,
        replies=[_reply_json(r) for r in j.replies],
    )


def _reply_json(r: JudgeReply) -> dict[str, object]:
    return {
        "order": r.order,
        "text": r.text[:2000],
        "value": r.value,
        "form": r.form,
        "failure": r.failure,
        "detail": r.detail,
        "label_logprobs": r.label_logprobs,
    }


def _store_instances(session: Session, task_id: int, task: TaskToStore) -> list[int]:
    """Store the task's instances and scores; returns the instance ids in index order."""
    rows = []
    for idx, inst in enumerate(task.candidate.instances):
        v = task.instance_verdicts[idx] if idx < len(task.instance_verdicts) else None
        ok = v is not None and v.accepted
        rows.append(
            Instance(
                task_id=task_id,
                idx=idx,
                input=inst.input,
                output=inst.output,
                status=TaskStatus.ACCEPTED if ok else TaskStatus.REJECTED,
                reject_rule=None if ok or v is None else v.rule,
                reject_rule_version=None if ok or v is None else v.rule_version,
                reject_reason=(
                    None if ok else v.reason if v is not None else "task rejected first"
                ),
                generation_id=inst.generation_id or task.candidate.instances_generation_id,
            )
        )
    session.add_all(rows)
    session.flush()
    ids = [r.id for r in rows]
    session.add_all(
        Score(
            task_id=task_id,
            instance_id=ids[i] if i is not None else None,
            scorer=s.scorer,
            scorer_version=s.version,
            value=s.value,
            details=s.details,
        )
        for i, s in task.scores
    )
    return ids


def _in_pool(run: Run) -> ColumnElement[bool]:
    """The run's pool: its seed set's accepted seed tasks and its own accepted machine tasks."""
    return and_(
        Task.seed_set_id == run.seed_set_id,
        Task.status == TaskStatus.ACCEPTED,
        or_(Task.origin == "seed", Task.run_id == run.id),
    )


def load_pool(
    session: Session, run: Run
) -> tuple[list[PoolTask], list[PoolTask], list[tuple[str, str, bytes | None]]]:
    """The run's pool: its seed set's tasks and its own accepted machine tasks.

    Two statements whatever the pool's size (instances by a join, not a list of ids: a list
    of a pool's ids passes the drivers' bind-parameter limits past 65,535 tasks).

    Returns seed tasks, machine tasks, and (key, text, None) triples to build the duplicate
    index from (it needs no stored signature).
    """
    rows = session.execute(
        select(Task.id, Task.instruction, Task.is_classification, Task.origin)
        .where(_in_pool(run))
        .order_by(Task.id)
    ).all()
    instances: dict[int, list[PoolInstance]] = {}
    for task_id, inp, out in session.execute(
        select(Instance.task_id, Instance.input, Instance.output)
        .join(Task, Task.id == Instance.task_id)
        .where(_in_pool(run), Instance.status == TaskStatus.ACCEPTED)
        .order_by(Instance.task_id, Instance.idx)
    ):
        instances.setdefault(task_id, []).append(PoolInstance(inp, out))
    seeds: list[PoolTask] = []
    machine: list[PoolTask] = []
    for task_id, instruction, is_classification, origin in rows:
        pool_task = PoolTask(
            id=str(task_id),
            instruction=instruction,
            is_classification=bool(is_classification),
            origin=origin,  # type: ignore[arg-type]  # the column holds seed | machine
            instances=instances.get(task_id, []),
        )
        (seeds if origin == "seed" else machine).append(pool_task)
    index_items: list[tuple[str, str, bytes | None]] = [(str(r[0]), r[1], None) for r in rows]
    return seeds, machine, index_items


def machine_pool_ids(session: Session, run: Run) -> list[int]:
    """Ids of the run's accepted machine tasks (its few-shot machine pool), in id order.

    The order is :func:`load_pool`'s, so a task at a position is the same task in both.
    """
    return list(
        session.scalars(
            select(Task.id).where(_in_pool(run), Task.origin != "seed").order_by(Task.id)
        )
    )


def seed_pool(session: Session, run: Run) -> list[PoolTask]:
    """The seed tasks of the run's pool, with their accepted instances, in id order."""
    ids = session.scalars(
        select(Task.id).where(_in_pool(run), Task.origin == "seed").order_by(Task.id)
    )
    return pool_tasks(session, list(ids))


# Task ids per statement in pool_tasks: under every driver's bind-parameter limit.
_IDS_PER_STATEMENT = 10_000


def pool_tasks(session: Session, ids: Sequence[int]) -> list[PoolTask]:
    """Pool tasks by id, each with its accepted instances, in the order of ``ids``.

    Args:
        session: An open session.
        ids: Task ids (any number: read ``_IDS_PER_STATEMENT`` at a time).

    Returns:
        One :class:`PoolTask` per id found (an id with no task is left out).
    """
    found: dict[int, PoolTask] = {}
    for start in range(0, len(ids), _IDS_PER_STATEMENT):
        chunk = list(ids[start : start + _IDS_PER_STATEMENT])
        instances: dict[int, list[PoolInstance]] = {}
        for task_id, inp, out in session.execute(
            select(Instance.task_id, Instance.input, Instance.output)
            .where(Instance.task_id.in_(chunk), Instance.status == TaskStatus.ACCEPTED)
            .order_by(Instance.task_id, Instance.idx)
        ):
            instances.setdefault(task_id, []).append(PoolInstance(inp, out))
        for task_id, instruction, is_classification, origin in session.execute(
            select(Task.id, Task.instruction, Task.is_classification, Task.origin).where(
                Task.id.in_(chunk)
            )
        ):
            found[task_id] = PoolTask(
                id=str(task_id),
                instruction=instruction,
                is_classification=bool(is_classification),
                origin=origin,  # type: ignore[arg-type]  # the column holds seed | machine
                instances=instances.get(task_id, []),
            )
    return [found[i] for i in ids if i in found]


def committed_pool_items(
    session: Session, run_id: int, after: int | None
) -> tuple[int, list[tuple[str, str, bytes | None]]]:
    """The run's committed iteration, and the pool tasks committed after iteration ``after``.

    Args:
        session: An open session.
        run_id: The run.
        after: An iteration number: only the run's accepted machine tasks of later committed
            iterations are returned. None: the whole pool (seed tasks included).

    Returns:
        ``(committed iteration, [(task id as str, instruction, None)])`` in task id order;
        tasks of an iteration committed after the run row was read are left out.

    Raises:
        NotFound: no such run.
    """
    run = get_run(session, run_id)
    committed = run.iteration
    if after is not None and committed <= after:
        return committed, []
    done = or_(Task.origin == "seed", Task.iteration <= committed)
    where = [_in_pool(run), done]
    if after is not None:
        where += [Task.origin == "machine", Task.iteration > after]
    rows = session.execute(select(Task.id, Task.instruction).where(*where).order_by(Task.id)).all()
    return committed, [(str(task_id), text, None) for task_id, text in rows]
