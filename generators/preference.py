"""Candidate responses for preference pairs: k samples per prompt, each a recorded generation.

Each prompt is answered ``k`` times with its own decoding seed (``seed + j`` for sample j), so the
k responses differ and each one replays alone; the judge (:class:`filters.judge.PairwiseJudge`)
then compares them in pairs. The calls go through :class:`generators.bootstrap.Iteration` like
every other stage (stage ``answer``, template ``evol_answer``: the prompt is the task itself).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import field
from itertools import combinations
from typing import Annotated, Literal

from pydantic import ConfigDict, Field
from pydantic.dataclasses import dataclass as validated_dataclass

from generators.bootstrap import Iteration
from generators.prompts import load_template
from generators.types import GenerationRecord, PoolTask, SamplingParams


def _response_sampling() -> SamplingParams:
    # Sampled, not greedy: k greedy answers to one prompt would be one answer k times.
    return SamplingParams(temperature=0.9, top_p=0.95, max_tokens=256)


@validated_dataclass(config=ConfigDict(extra="forbid"))
class PreferenceConfig:
    """How candidate responses are sampled and which judged pairs are kept.

    Attributes:
        prompts_per_iteration: pool prompts answered per iteration (each prompt once a run).
        responses_per_prompt: k; every pair of the k responses is judged (k(k-1)/2 pairs).
        response_sampling: decoding of each response; sample j uses seed ``seed + j``.
        min_margin: the smallest mean strength (0-3, both orders) a kept pair's win needs.
        length_control: re-judge each pair at equal length and flag length-only wins.
        rubric_version: the rubric version: ``filters/rubrics/pairwise.<v>.txt`` for a text
            judge, ``pairwise_logprob.<v>.txt`` for a logprob judge.
        judge_mode: ``logprob`` reads the judge's next-token probabilities of the labels A
            and B after a fixed answer prefix (works on weak models that write no verdict);
            ``text`` reads its written verdict (``filters.pairwise_replies``).
        tie_threshold: logprob judge: a reading whose (p(A) - p(B)) / (p(A) + p(B)) is
            smaller than this in size is a tie.
        min_label_mass: logprob judge: the least p(A) + p(B) read as an answer.
    """

    prompts_per_iteration: Annotated[int, Field(ge=1, le=10_000)] = 8
    responses_per_prompt: Annotated[int, Field(ge=2, le=8)] = 4
    response_sampling: SamplingParams = field(default_factory=_response_sampling)
    min_margin: Annotated[float, Field(ge=0.0, le=3.0)] = 1.0
    length_control: bool = True
    rubric_version: str = "v1"
    judge_mode: Literal["text", "logprob"] = "logprob"
    tie_threshold: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.1
    min_label_mass: Annotated[float, Field(ge=0.0, le=1.0)] = 0.5


def sample_responses(
    run: Iteration, prompts: Sequence[str], config: PreferenceConfig
) -> list[list[GenerationRecord]]:
    """Answer each prompt ``responses_per_prompt`` times, one batch per sample index.

    Returns:
        Per prompt, its k records in sample order (``record.completion`` is the response).

    Raises:
        BackendError: the backend failed as a whole.
    """
    if not prompts:
        return []
    template = load_template("evol_answer", 1)
    rendered = [template.render(instruction=p) for p in prompts]
    base_seed = config.response_sampling.seed
    base_seed = run.seed if base_seed is None else base_seed
    per_prompt: list[list[GenerationRecord]] = [[] for _ in prompts]
    for j in range(config.responses_per_prompt):
        sampling = config.response_sampling.with_seed(base_seed + j)
        records = run.call(
            "answer", [template] * len(rendered), rendered, [[] for _ in rendered], sampling
        )
        for mine, record in zip(per_prompt, records, strict=True):
            mine.append(record)
    return per_prompt


def response_pairs(k: int) -> list[tuple[int, int]]:
    """The index pairs of k responses that the judge compares, in a fixed order."""
    return list(combinations(range(k), 2))


def pick_prompts(
    pool: Sequence[PoolTask], *, iteration: int, per_iteration: int, seed: int
) -> list[PoolTask]:
    """The pool tasks iteration ``iteration`` (1-based) answers: slices of one seeded shuffle.

    Every prompt is used once a run, and a resumed run picks the same prompts for the same
    iteration (nothing but the iteration number is needed). Past the pool's end: none.
    """
    order = sorted(pool, key=lambda t: t.id)
    random.Random(seed).shuffle(order)
    start = (iteration - 1) * per_iteration
    return order[start : start + per_iteration]
