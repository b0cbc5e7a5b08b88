"""A run's limits: its exact target, and budgets of tokens, wall-clock seconds and money.

A run stops with exactly ``target_tasks`` accepted: the accepted candidates of the last batch
beyond it are stored as rejected by rule ``over_target``
(:data:`service.storage.iterations.OVER_TARGET_RULE`).

The worker checks :func:`exhausted` before each batch, so a run never overshoots a budget by
more than the batch in flight (one iteration). Money is computed from per-million-token prices
the user sets per model (``prices``), in the way providers bill: prompt tokens and completion
tokens each at their own price.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

StopReason = Literal["token_budget", "wall_clock_budget", "cost_budget"]


class TokenPrice(BaseModel):
    """A model's price, in the run's currency per million tokens."""

    model_config = ConfigDict(extra="forbid")

    prompt_per_million: float = Field(ge=0, le=1e9, description="Per million prompt tokens.")
    completion_per_million: float = Field(
        ge=0, le=1e9, description="Per million completion tokens."
    )

    def cost(self, prompt_tokens: float, completion_tokens: float) -> float:
        """What the tokens cost, in the price's currency."""
        return (
            prompt_tokens * self.prompt_per_million
            + completion_tokens * self.completion_per_million
        ) / 1e6


class Budgets(BaseModel):
    """Limits on what a run may spend; the first one reached stops it (status ``completed``,
    an event naming the limit). Unset limits are not checked.

    ``max_wall_seconds`` counts the seconds workers spent on the run's iterations (the run's
    ``wall_seconds`` counter): time queued or paused is not spent. ``max_cost`` needs a price
    for the run's model in ``prices``.
    """

    model_config = ConfigDict(extra="forbid")

    max_tokens: int | None = Field(
        None, ge=1, le=2**62, description="Prompt plus completion tokens of every call."
    )
    max_wall_seconds: float | None = Field(
        None, gt=0, le=1e9, description="Seconds spent generating and filtering."
    )
    max_cost: float | None = Field(
        None, gt=0, le=1e12, description="Money, from `prices` of the run's model."
    )
    currency: str = Field("USD", min_length=1, max_length=10)
    prices: dict[str, TokenPrice] = Field(
        default_factory=dict, description="Model name -> price per million tokens."
    )


@dataclass(frozen=True)
class Usage:
    """What a run has spent so far (its stored counters)."""

    prompt_tokens: int
    completion_tokens: int
    wall_seconds: float

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class Exhausted:
    """The limit that stops a run, with the figures stored in its event."""

    reason: StopReason
    message: str
    data: dict[str, Any]


def exhausted(budgets: Budgets, model: str, usage: Usage) -> Exhausted | None:
    """The first budget `usage` has reached, checked in the order tokens, wall clock, money.

    Returns:
        None while every set limit still has room.
    """
    if budgets.max_tokens is not None and usage.tokens >= budgets.max_tokens:
        return Exhausted(
            "token_budget",
            f"token budget reached: {usage.tokens} of {budgets.max_tokens} tokens",
            {"used": usage.tokens, "limit": budgets.max_tokens},
        )
    if budgets.max_wall_seconds is not None and usage.wall_seconds >= budgets.max_wall_seconds:
        return Exhausted(
            "wall_clock_budget",
            f"wall-clock budget reached: {usage.wall_seconds:.1f} of "
            f"{budgets.max_wall_seconds:g} s",
            {"used": usage.wall_seconds, "limit": budgets.max_wall_seconds},
        )
    price = budgets.prices.get(model)
    if budgets.max_cost is not None and price is not None:
        spent = price.cost(usage.prompt_tokens, usage.completion_tokens)
        if spent >= budgets.max_cost:
            return Exhausted(
                "cost_budget",
                f"cost budget reached: {spent:.6g} of {budgets.max_cost:g} {budgets.currency}",
                {"used": spent, "limit": budgets.max_cost, "currency": budgets.currency},
            )
    return None


def price_of(config: dict[str, Any]) -> tuple[TokenPrice | None, str]:
    """The price of a stored run config's model and the currency (None: no price set).

    Reads the stored JSON as is (old runs have no ``budgets``), so reports need not validate
    the whole config.
    """
    budgets = Budgets.model_validate(config.get("budgets") or {})
    return budgets.prices.get(str(config.get("model", ""))), budgets.currency
