"""What a run would cost before it runs (``POST /v1/runs?dry_run=true``), from the measured
yield of earlier runs.

The basis, in order of preference:

1. ``same_model_and_templates``: earlier bootstrap runs with the same backend and model whose
   generation calls all rendered templates this config renders (same files: compared by
   sha256, so an edited template no longer matches).
2. ``same_templates``: the same templates on any other model: the yield of the prompts, with
   another model's token counts; a weaker basis, named so in the answer.
3. ``none``: no earlier run to measure; every figure is null (the service does not guess a
   yield it has never seen).

Rates are pooled (sum of tokens over sum of accepted across the matching runs), so a long run
weighs more than a short one. The figures are expectations at the measured yield, not bounds:
a run also spends up to one batch past the limit that stops it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from generators.bootstrap import stage_templates
from service.runs.config import RunConfig
from service.storage.db import Session
from service.storage.runs import MeasuredRun, measured_runs

Basis = Literal["same_model_and_templates", "same_templates", "none"]
Limit = Literal[
    "target_tasks", "max_iterations", "token_budget", "wall_clock_budget", "cost_budget"
]


class RunEstimate(BaseModel):
    """The expected spend of a run of this config; nothing is stored."""

    basis: Basis = Field(description="Which earlier runs the rates come from (see above).")
    measured_runs: list[int] = Field(description="Ids of the earlier runs measured.")
    measured_accepted: int = Field(description="Accepted tasks of those runs, together.")
    target_tasks: int
    stops_at: Limit | None = Field(description="The limit expected to stop the run first.")
    accepted: float | None = Field(description="Accepted tasks expected when it stops.")
    iterations: float | None
    prompt_tokens: float | None
    completion_tokens: float | None
    tokens: float | None = Field(description="Prompt plus completion tokens.")
    wall_seconds: float | None = Field(description="As measured on the earlier runs' workers.")
    cost: float | None = Field(description="At budgets.prices of the model; null unpriced.")
    currency: str | None
    tokens_per_accepted: float | None
    cost_per_accepted: float | None


def estimate_run(session: Session, config: RunConfig) -> RunEstimate:
    """Estimate `config`'s run from the runs stored in `session`'s database.

    Raises:
        TemplateError: the config names a template version that does not exist.
    """
    shas = frozenset(t.sha256 for t in stage_templates(config.bootstrap))
    same_templates = [
        r for r in measured_runs(session) if r.template_sha256 and r.template_sha256 <= shas
    ]
    same_model = [
        r
        for r in same_templates
        if r.config.get("backend", "transformers") == config.backend
        and r.config.get("model", "smollm2-135m") == config.model
    ]
    basis: Basis
    basis, runs = (
        ("same_model_and_templates", same_model)
        if same_model
        else ("same_templates", same_templates)
        if same_templates
        else ("none", [])
    )
    return _estimate(config, basis, runs)


def _estimate(config: RunConfig, basis: Basis, runs: list[MeasuredRun]) -> RunEstimate:
    accepted = sum(r.accepted for r in runs)
    price = config.budgets.prices.get(config.model)
    empty = RunEstimate(
        basis=basis,
        measured_runs=[r.id for r in runs],
        measured_accepted=accepted,
        target_tasks=config.target_tasks,
        stops_at=None,
        accepted=None,
        iterations=None,
        prompt_tokens=None,
        completion_tokens=None,
        tokens=None,
        wall_seconds=None,
        cost=None,
        currency=None,
        tokens_per_accepted=None,
        cost_per_accepted=None,
    )
    if not accepted:
        return empty
    # Per accepted task, pooled over the runs.
    prompt = sum(r.prompt_tokens for r in runs) / accepted
    completion = sum(r.completion_tokens for r in runs) / accepted
    seconds = sum(r.wall_seconds for r in runs) / accepted
    iterations = sum(r.iterations for r in runs) / accepted
    money = price.cost(prompt, completion) if price is not None else None
    budgets = config.budgets
    reachable: list[tuple[float, Limit]] = [(float(config.target_tasks), "target_tasks")]
    if config.max_iterations is not None:
        reachable.append((config.max_iterations / iterations, "max_iterations"))
    if budgets.max_tokens is not None:
        reachable.append((budgets.max_tokens / (prompt + completion), "token_budget"))
    if budgets.max_wall_seconds is not None and seconds > 0:
        reachable.append((budgets.max_wall_seconds / seconds, "wall_clock_budget"))
    if budgets.max_cost is not None and money:
        reachable.append((budgets.max_cost / money, "cost_budget"))
    n, limit = min(reachable, key=lambda x: x[0])  # the first listed wins a tie
    return empty.model_copy(
        update={
            "stops_at": limit,
            "accepted": n,
            "iterations": n * iterations,
            "prompt_tokens": n * prompt,
            "completion_tokens": n * completion,
            "tokens": n * (prompt + completion),
            "wall_seconds": n * seconds,
            "cost": n * money if money is not None else None,
            "currency": budgets.currency if price is not None else None,
            "tokens_per_accepted": prompt + completion,
            "cost_per_accepted": money,
        }
    )
