"""Writing one iteration: every row it produced, in one transaction, guarded by the lease."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session, undefer

from generators.types import GenerationRecord, PoolTask
from generators.types import Instance as PoolInstance
from service.storage.models import Generation, Instance, ParseFailure, Run, Score, Task
from service.storage.runs import add_event, add_rejections, advance_iteration

if TYPE_CHECKING:
    from service.runs.pipeline import IterationOutcome, PendingTask


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


def _nearest_id(task: PendingTask, key_to_id: dict[str, int]) -> int | None:
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
    outcome: IterationOutcome,
) -> list[tuple[int, PendingTask]]:
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
    stored: list[tuple[int, PendingTask]] = []
    for task in outcome.tasks:
        row = _task_row(task, run, outcome.iteration, key_to_id)
        session.add(row)
        session.flush()
        key_to_id[task.key] = row.id
        stored.append((row.id, task))
        _store_instances(session, row.id, task)
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


def _task_row(task: PendingTask, run: Run, iteration: int, key_to_id: dict[str, int]) -> Task:
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
        status="accepted" if verdict.accepted else "rejected",
        reject_rule=None if verdict.accepted else verdict.rule,
        reject_rule_version=None if verdict.accepted else verdict.rule_version,
        reject_reason=None if verdict.accepted else verdict.reason,
        nearest_task_id=_nearest_id(task, key_to_id),
        similarity=verdict.similarity,
        minhash=task.signature,
    )


def _store_instances(session: Session, task_id: int, task: PendingTask) -> None:
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
                status="accepted" if ok else "rejected",
                reject_rule=None if ok or v is None else v.rule,
                reject_rule_version=None if ok or v is None else v.rule_version,
                reject_reason=(
                    None if ok else v.reason if v is not None else "task rejected first"
                ),
                generation_id=task.candidate.instances_generation_id,
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


def load_pool(
    session: Session, run: Run
) -> tuple[list[PoolTask], list[PoolTask], list[tuple[str, str, bytes | None]]]:
    """The run's pool: its seed set's tasks and its own accepted machine tasks.

    Returns seed tasks, machine tasks, and (key, text, stored signature) triples to rebuild
    the duplicate index without re-hashing stored tasks.
    """
    tasks = list(
        session.scalars(
            select(Task)
            .options(undefer(Task.minhash))
            .where(
                Task.seed_set_id == run.seed_set_id,
                Task.status == "accepted",
                (Task.origin == "seed") | (Task.run_id == run.id),
            )
            .order_by(Task.id)
        )
    )
    instances: dict[int, list[PoolInstance]] = {}
    for inst in (
        session.scalars(
            select(Instance)
            .where(Instance.task_id.in_([t.id for t in tasks]), Instance.status == "accepted")
            .order_by(Instance.task_id, Instance.idx)
        )
        if tasks
        else []
    ):
        instances.setdefault(inst.task_id, []).append(PoolInstance(inst.input, inst.output))
    seeds: list[PoolTask] = []
    machine: list[PoolTask] = []
    for t in tasks:
        pool_task = PoolTask(
            id=str(t.id),
            instruction=t.instruction,
            is_classification=bool(t.is_classification),
            origin=t.origin,  # type: ignore[arg-type]
            instances=instances.get(t.id, []),
        )
        (seeds if t.origin == "seed" else machine).append(pool_task)
    index_items = [(str(t.id), t.instruction, t.minhash) for t in tasks]
    return seeds, machine, index_items
