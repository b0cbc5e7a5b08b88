"""A run's limits: exactly `target_tasks` accepted (the rest of the last batch `over_target`),
token, wall-clock and money budgets, and what the report says each rule cost.

Scripted replies: this tests the stop logic and the stored counters, not generation.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select, update

from generators.backends.scripted import ScriptedBackend
from generators.config import BootstrapConfig
from service.errors import LeaseLost
from service.reports.compute import build_run_report
from service.runs.budgets import Budgets, TokenPrice, Usage, exhausted
from service.runs.config import RunConfig
from service.storage.db import Database
from service.storage.iterations import commit_iteration
from service.storage.models import Generation, Instance, Run, Task, utcnow
from service.storage.runs import claim_run, recent_events
from tests.service.scripted_run import (
    batches,
    claimed_run,
    queued_run,
    reply,
    scripted_pipeline,
    worker,
)


def one_prompt(**fields: Any) -> RunConfig:
    return RunConfig.model_validate(
        {"seed_set": "default", "bootstrap": {"prompts_per_iteration": 1}, **fields}
    )


def run_counts(database: Database, run_id: int) -> tuple[Run, dict[str, int], dict[str, int]]:
    """The run row, its tasks by status and its rejections by rule, counted from the rows."""
    with database.sessions() as s:
        run = s.get(Run, run_id)
        assert run is not None
        by_status = dict(
            s.execute(
                select(Task.status, func.count()).where(Task.run_id == run_id).group_by(Task.status)
            ).all()
        )
        by_rule = dict(
            s.execute(
                select(Task.reject_rule, func.count())
                .where(Task.run_id == run_id, Task.status == "rejected")
                .group_by(Task.reject_rule)
            ).all()
        )
    return run, by_status, by_rule


def stop_event(database: Database, run_id: int) -> Any:
    with database.sessions() as s:
        return next(e for e in recent_events(s, run_id) if e.kind == "completed")


@pytest.mark.parametrize(
    ("target", "sizes", "over", "iterations", "over_with_instances"),
    [
        # one batch overshoots by several: 3 (1.5 x the room) go on to the instance stage
        (2, (6,), 4, 1, 1),
        # the second batch overshoots: 2 of its 4 go on (1.5 x the 1 left, all survived so far)
        (3, (2, 4), 3, 2, 1),
        (4, (4,), 0, 1, 0),  # lands exactly: nothing over
        (1, (1, 12), 0, 1, 0),  # reached by the first batch: no second batch is made
    ],
)
def test_run_stops_with_exactly_target_accepted(
    database: Database,
    target: int,
    sizes: tuple[int, ...],
    over: int,
    iterations: int,
    over_with_instances: int,
) -> None:
    run_id = queued_run(database, one_prompt(target_tasks=target))
    worker(database, batches(*sizes)).run_forever(once=True)
    run, by_status, by_rule = run_counts(database, run_id)
    assert run.status == "completed"
    assert run.accepted_count == by_status["accepted"] == target
    assert by_rule.get("over_target", 0) == over
    assert run.rejected_by_rule.get("over_target", 0) == over
    assert run.rejected_count == by_status.get("rejected", 0)
    assert run.generated_count == sum(by_status.values())
    assert run.iteration == iterations
    event = stop_event(database, run_id)
    assert event.data["stop_reason"] == "target_tasks"
    assert event.message == f"target reached: {target} accepted"
    with database.sessions() as s:
        over_rows = list(
            s.scalars(select(Task).where(Task.run_id == run_id, Task.reject_rule == "over_target"))
        )
        kept = list(s.scalars(select(Task).where(Task.run_id == run_id, Task.status == "accepted")))
        # The first accepted in candidate order are kept; the later ones are over the target.
        assert all(o.id > max(k.id for k in kept) for o in over_rows)
        assert all(o.reject_rule_version == "1" and "target" in o.reject_reason for o in over_rows)
        instances = list(
            s.scalars(select(Instance).where(Instance.task_id.in_([o.id for o in over_rows])))
        )
        # Only those sent on to the instance stage have instances; the others were cut before.
        assert len(instances) == over_with_instances
        cut = [o for o in over_rows if o.reject_reason.startswith("target in sight")]
        assert len(cut) == over - over_with_instances
        assert all(i.status == "rejected" and i.reject_rule == "over_target" for i in instances)
        report = build_run_report(s, run_id)
    if over:
        rule = next(r for r in report.yield_.rejected_by_rule if r.rule == "over_target")
        assert (rule.stage, rule.rejected) == ("target", over)
    assert report.yield_.accepted == target
    assert report.stop_reason == event.message


@pytest.mark.parametrize(
    ("target", "per_prompt", "prompts_second", "over"),
    [
        (7, 1, 2, 1),  # 1 a prompt: full batches until 1 is left, then 2 prompts (1.5 x 1)
    ],
)
def test_the_last_batch_is_sized_to_the_room_left(
    database: Database, target: int, per_prompt: int, prompts_second: int, over: int
) -> None:
    """Exactly the target, and the last batch asks only as many prompts as the yield measured
    so far needs for 1.5 x the room: the over_target waste is bounded by the margin."""
    config = RunConfig.model_validate(
        {"seed_set": "default", "bootstrap": {"prompts_per_iteration": 2}, "target_tasks": target}
    )
    run_id = queued_run(database, config)
    worker(database, batches(*[per_prompt] * 20)).run_forever(once=True)
    run, by_status, by_rule = run_counts(database, run_id)
    assert run.status == "completed" and run.accepted_count == by_status["accepted"] == target
    assert by_rule.get("over_target", 0) == over
    with database.sessions() as s:
        prompts = dict(
            s.execute(
                select(Generation.iteration, func.count())
                .where(Generation.run_id == run_id, Generation.stage == "instructions")
                .group_by(Generation.iteration)
            ).all()
        )
    assert prompts[1] == 2 and prompts[run.iteration] == prompts_second
    assert over <= math.ceil(0.5 * per_prompt * prompts_second)


def test_stale_worker_cannot_add_past_the_target(database: Database) -> None:
    """Two workers compute the same batch (the first's lease expired mid-batch): only one
    commit lands, so the target is still exact and nothing is stored twice."""
    config = RunConfig(
        seed_set="default", bootstrap=BootstrapConfig(prompts_per_iteration=1), target_tasks=3
    )
    run_id = claimed_run(database, config, owner="a")
    run_a, pipe_a = scripted_pipeline(database, run_id, config)
    pipe_a.backend = ScriptedBackend(batches(6))
    outcome_a = pipe_a.step(1)
    with database.transaction() as s:
        s.execute(update(Run).values(lease_expires_at=utcnow() - timedelta(seconds=1)))
    with database.transaction() as s:
        assert claim_run(s, owner="b", lease_seconds=60) == run_id
    run_b, pipe_b = scripted_pipeline(database, run_id, config)
    pipe_b.backend = ScriptedBackend(batches(5))
    outcome_b = pipe_b.step(1)
    with database.transaction() as s:
        commit_iteration(s, run=run_b, owner="b", lease_seconds=60, outcome=outcome_b)
    with pytest.raises(LeaseLost), database.transaction() as s:
        commit_iteration(s, run=run_a, owner="a", lease_seconds=60, outcome=outcome_a)
    run, by_status, by_rule = run_counts(database, run_id)
    assert run.accepted_count == by_status["accepted"] == 3
    assert by_rule == {"over_target": 2} and run.generated_count == 5


def tokens_of_one_batch(
    database: Database, replies: Callable[[str], str] | None = None
) -> tuple[int, int]:
    """(prompt, completion) tokens of one batch of the scripted run."""
    run_id = queued_run(database, one_prompt(target_tasks=1000, max_iterations=1))
    worker(database, replies or batches(3)).run_forever(once=True)
    with database.sessions() as s:
        run = s.get(Run, run_id)
        assert run is not None
        return run.prompt_tokens, run.completion_tokens


def test_token_budget_stops_the_run_within_one_batch(database: Database) -> None:
    per_batch = sum(tokens_of_one_batch(database))
    limit = int(per_batch * 1.5)  # reached during the second batch
    run_id = queued_run(database, one_prompt(target_tasks=1000, budgets={"max_tokens": limit}))
    worker(database, batches(3, 3, 3, 3)).run_forever(once=True)
    run, _, _ = run_counts(database, run_id)
    used = run.prompt_tokens + run.completion_tokens
    assert run.status == "completed" and run.iteration == 2
    assert limit <= used < limit + per_batch * 1.5  # overshoot at most the batch in flight
    event = stop_event(database, run_id)
    assert event.data == {"stop_reason": "token_budget", "used": used, "limit": limit}
    with database.sessions() as s:
        stored = s.scalar(
            select(func.sum(Generation.prompt_tokens + Generation.completion_tokens)).where(
                Generation.run_id == run_id
            )
        )
    assert stored == used


def test_cost_budget_from_prices_and_the_report_costs(database: Database) -> None:
    price = TokenPrice(prompt_per_million=2.0, completion_per_million=8.0)
    # The default script: one task accepted, then rejections by three rules (heuristics and
    # near-duplicates), so every stage has a cost to report.
    prompt, completion = tokens_of_one_batch(database, reply)
    config = one_prompt(
        target_tasks=1000,
        model="scripted-model",
        budgets={
            "max_cost": price.cost(prompt, completion) * 1.5,  # reached in the second batch
            "max_tokens": (prompt + completion) * 100,  # far: money is the first limit reached
            "currency": "EUR",
            "prices": {"scripted-model": price.model_dump(), "other": price.model_dump()},
        },
    )
    run_id = queued_run(database, config)
    worker(database, reply).run_forever(once=True)
    run, _, _ = run_counts(database, run_id)
    spent = price.cost(run.prompt_tokens, run.completion_tokens)
    assert run.status == "completed", run.error
    event = stop_event(database, run_id)
    assert event.data["stop_reason"] == "cost_budget" and event.data["currency"] == "EUR"
    assert event.data["used"] == pytest.approx(spent) and spent >= config.budgets.max_cost
    # Later batches accept nothing, so they cost less than the first: at most one batch over.
    assert run.iteration >= 2 and spent < config.budgets.max_cost + price.cost(prompt, completion)
    with database.sessions() as s:
        report = build_run_report(s, run_id)
    y = report.yield_
    assert y.currency == "EUR" and y.cost == pytest.approx(spent)
    assert y.cost_per_accepted == pytest.approx(spent / run.accepted_count)
    assert y.tokens_per_accepted == pytest.approx(
        (run.prompt_tokens + run.completion_tokens) / run.accepted_count
    )
    for rule in y.rejected_by_rule:
        assert rule.cost == pytest.approx(price.cost(rule.prompt_tokens, rule.completion_tokens))
    assert y.rejected_cost_by_stage is not None and len(y.rejected_cost_by_stage) >= 2
    assert (
        set(y.rejected_cost_by_stage) == set(y.rejected_by_stage) == set(y.rejected_tokens_by_stage)
    )
    for stage, cost in y.rejected_cost_by_stage.items():
        rules = [r for r in y.rejected_by_rule if r.stage == stage]
        assert cost == pytest.approx(sum(r.cost or 0.0 for r in rules))
        assert y.rejected_tokens_by_stage[stage] == pytest.approx(
            sum(r.prompt_tokens + r.completion_tokens for r in rules)
        )
    per_iteration = sum(i.yield_.cost or 0.0 for i in report.iterations)
    assert per_iteration == pytest.approx(spent)
    assert report.stop_reason == event.message


def test_wall_clock_budget(database: Database) -> None:
    run_id = queued_run(database, one_prompt(target_tasks=1000, budgets={"max_wall_seconds": 1e-9}))
    worker(database, batches(3, 3)).run_forever(once=True)
    run, _, _ = run_counts(database, run_id)
    assert run.status == "completed" and run.iteration == 1
    assert stop_event(database, run_id).data["stop_reason"] == "wall_clock_budget"


def test_unpriced_report_has_no_cost(database: Database) -> None:
    run_id = queued_run(database, one_prompt(target_tasks=2))
    worker(database, batches(3)).run_forever(once=True)
    with database.sessions() as s:
        y = build_run_report(s, run_id).yield_
    assert y.cost is y.cost_per_accepted is y.currency is y.rejected_cost_by_stage is None
    assert all(r.cost is None for r in y.rejected_by_rule)


@pytest.mark.parametrize(
    ("budgets", "usage", "reason"),
    [
        ({"max_tokens": 100}, Usage(60, 39, 0.0), None),
        ({"max_tokens": 100}, Usage(60, 40, 0.0), "token_budget"),
        ({"max_wall_seconds": 5}, Usage(0, 0, 5.0), "wall_clock_budget"),
        # The first in order wins when several are reached at once.
        ({"max_tokens": 10, "max_wall_seconds": 1}, Usage(10, 0, 9.0), "token_budget"),
        (
            {
                "max_cost": 1.0,
                "prices": {"m": {"prompt_per_million": 1, "completion_per_million": 3}},
            },
            Usage(250_000, 250_000, 0.0),
            "cost_budget",
        ),
        (
            {
                "max_cost": 1.0,
                "prices": {"m": {"prompt_per_million": 1, "completion_per_million": 3}},
            },
            Usage(250_000, 249_999, 0.0),
            None,
        ),
        ({}, Usage(10**12, 10**12, 1e9), None),
    ],
)
def test_first_limit_reached(budgets: dict[str, Any], usage: Usage, reason: str | None) -> None:
    found = exhausted(Budgets.model_validate(budgets), "m", usage)
    assert (found.reason if found else None) == reason


@pytest.mark.parametrize(
    "budgets",
    [
        {"max_cost": 5.0},  # no price for the run's model
        {
            "max_cost": 5.0,
            "prices": {"other": {"prompt_per_million": 1, "completion_per_million": 1}},
        },
        {"max_tokens": 0},
        {"max_wall_seconds": -1},
        {"prices": {"m": {"prompt_per_million": -1, "completion_per_million": 1}}},
        {"max_tokens": 10, "unknown": 1},
    ],
)
def test_invalid_budgets_are_refused(budgets: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        RunConfig.model_validate({"seed_set": "s", "model": "m", "budgets": budgets})
