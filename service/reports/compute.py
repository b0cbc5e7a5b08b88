"""The run report from stored rows: each number is one documented function of the rows that
:func:`service.storage.reports.read_run_rows` reads (tasks, generation calls, parse failures,
scores, events), so it can be re-computed by SQL over the same tables."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np

from filters.diversity import (
    cluster_count,
    distinct_n,
    mean_pairwise_cosine_distance,
    verb_noun_stats,
)
from filters.evolution import RULES as EVOL_RULES
from filters.heuristics import INSTRUCTION_RULES
from filters.judge import NO_PAIR_RULE
from filters.near_duplicates import RULE_NAME as NEAR_DUPLICATE_RULE
from filters.turns import RULES as TURN_RULES
from service.reports.audits import judge_audit, preference_audit, refusals
from service.reports.collapse import collapse_radars
from service.reports.schema import (
    CLUSTER_RADIUS,
    Diversity,
    IterationReport,
    RuleYield,
    RunReport,
    Yield,
)
from service.runs.budgets import TokenPrice, price_of
from service.statuses import TaskStatus
from service.storage.db import Session
from service.storage.iterations import OVER_TARGET_RULE
from service.storage.reports import GenerationRow, RunRows, TaskRow, read_run_rows

Cost = tuple[float, float]  # (prompt tokens, completion tokens)


def build_run_report(session: Session, run_id: int) -> RunReport:
    """The report of run `run_id`, per iteration and cumulative.

    Raises:
        NotFound: no such run.
    """
    return report_from_rows(read_run_rows(session, run_id))


def report_from_rows(rows: RunRows) -> RunReport:
    """The report of the rows of one run (no database access)."""
    costs = task_costs(rows.tasks, rows.generations)
    price = price_of(rows.config)
    numbers = rows.iteration_numbers()
    parts = rows.by_iteration()
    radars = collapse_radars(rows, numbers)
    iterations = [
        IterationReport(
            iteration=i,
            yield_=yield_of(
                parts[i].tasks,
                parts[i].generations,
                [reason for _, reason in parts[i].parse_failures],
                costs,
                price,
            ),
            diversity=diversity_of(parts[i].tasks, rows.embeddings, rows.embedding_model),
            collapse=radars[i],
        )
        for i in numbers
    ]
    stop = rows.events.get("stop_rule")
    if stop is None and rows.status == "completed":
        stop = rows.events.get("completed")
    return RunReport(
        run_id=rows.run_id,
        status=rows.status,
        stop_reason=stop["message"] if stop else None,
        yield_=yield_of(
            rows.tasks, rows.generations, [r for _, r in rows.parse_failures], costs, price
        ),
        diversity=diversity_of(rows.tasks, rows.embeddings, rows.embedding_model),
        iterations=iterations,
        judge=judge_audit(rows.scores),
        refusals=refusals(rows.scores, rows.events.get("refusal_probe")),
        preference=preference_audit(rows.comparisons),
    )


def stage_of(rule: str) -> str:
    """The pipeline stage a task rejection rule belongs to (its own name when unknown)."""
    if rule in INSTRUCTION_RULES:
        return "heuristics"
    if rule == NEAR_DUPLICATE_RULE:
        return "near_duplicates"
    if rule in EVOL_RULES:
        return "elimination"
    if rule in TURN_RULES:
        return "turns"
    if rule == OVER_TARGET_RULE[0]:
        return "target"
    if rule == NO_PAIR_RULE[0]:
        return "preference"
    return rule


def task_costs(tasks: Sequence[TaskRow], generations: Sequence[GenerationRow]) -> dict[int, Cost]:
    """What each task cost in generation tokens.

    A task is charged, for each of its three generation calls (instructions, classification,
    instances), that call's tokens divided by the number of tasks that share the call in the
    same role: an instruction completion that gave 4 tasks charges each a quarter. Calls no
    task refers to (e.g. a completion that failed to parse) are charged to nobody; they still
    count in the totals.

    Returns:
        task id -> (prompt tokens, completion tokens).
    """
    by_id = {g.id: g for g in generations}
    sharing: Counter[tuple[int, str | None]] = Counter()
    for t in tasks:
        for role, gid in enumerate(t.generation_ids):
            if gid is not None:
                sharing[(role, gid)] += 1
    costs: dict[int, Cost] = {}
    for t in tasks:
        prompt = completion = 0.0
        for role, gid in enumerate(t.generation_ids):
            gen = by_id.get(gid) if gid is not None else None
            if gen is not None:
                prompt += gen.prompt_tokens / sharing[(role, gid)]
                completion += gen.completion_tokens / sharing[(role, gid)]
        costs[t.id] = (prompt, completion)
    return costs


def yield_of(
    tasks: Sequence[TaskRow],
    generations: Sequence[GenerationRow],
    parse_failures: Sequence[str],
    costs: dict[int, Cost],
    price: tuple[TokenPrice | None, str] = (None, ""),
) -> Yield:
    """Counts by stage and rule, parse failures by reason, tokens per accepted task and rule,
    and with a price (:func:`service.runs.budgets.price_of`) what they cost."""
    rate, currency = price

    def money(prompt: float, completion: float) -> float | None:
        return rate.cost(prompt, completion) if rate is not None else None

    accepted = sum(t.status == TaskStatus.ACCEPTED for t in tasks)
    rules: dict[str, list[float]] = {}
    for t in tasks:
        if t.status != TaskStatus.ACCEPTED:
            entry = rules.setdefault(t.reject_rule or "unknown", [0, 0.0, 0.0])
            prompt, completion = costs.get(t.id, (0.0, 0.0))
            entry[0] += 1
            entry[1] += prompt
            entry[2] += completion
    by_stage: Counter[str] = Counter()
    stage_tokens: dict[str, list[float]] = {}
    for rule, (n, prompt, completion) in rules.items():
        by_stage[stage_of(rule)] += int(n)
        spent = stage_tokens.setdefault(stage_of(rule), [0.0, 0.0])
        spent[0] += prompt
        spent[1] += completion
    prompt_total = sum(g.prompt_tokens for g in generations)
    completion_total = sum(g.completion_tokens for g in generations)
    total_cost = money(prompt_total, completion_total)
    return Yield(
        candidates=len(tasks),
        accepted=accepted,
        rejected=len(tasks) - accepted,
        rejected_by_stage=dict(sorted(by_stage.items())),
        rejected_tokens_by_stage={k: p + c for k, (p, c) in sorted(stage_tokens.items())},
        rejected_cost_by_stage=(
            {k: rate.cost(p, c) for k, (p, c) in sorted(stage_tokens.items())}
            if rate is not None
            else None
        ),
        rejected_by_rule=[
            RuleYield(
                rule=rule,
                stage=stage_of(rule),
                rejected=int(n),
                prompt_tokens=prompt,
                completion_tokens=completion,
                cost=money(prompt, completion),
            )
            for rule, (n, prompt, completion) in sorted(rules.items(), key=lambda kv: -kv[1][0])
        ],
        parse_failures_by_reason=dict(Counter(parse_failures).most_common()),
        prompt_tokens=prompt_total,
        completion_tokens=completion_total,
        prompt_tokens_per_accepted=prompt_total / accepted if accepted else None,
        completion_tokens_per_accepted=completion_total / accepted if accepted else None,
        tokens_per_accepted=(prompt_total + completion_total) / accepted if accepted else None,
        cost=total_cost,
        cost_per_accepted=total_cost / accepted if accepted and total_cost is not None else None,
        currency=currency if rate is not None else None,
    )


def diversity_of(
    tasks: Sequence[TaskRow],
    embeddings: Mapping[int, np.ndarray] | None = None,
    embedding_model: str | None = None,
) -> Diversity:
    """Diversity of the accepted instructions among ``tasks``.

    distinct-1/2, the classification share, the Self-Instruct verb-noun analysis
    (:func:`filters.diversity.verb_noun_stats`) and, over the stored vectors of those tasks
    (``embeddings``, task id -> unit vector, :mod:`service.storage.embeddings`), the mean
    pairwise cosine distance and the cluster count at :data:`CLUSTER_RADIUS` in task id order.
    """
    kept = [t for t in tasks if t.status == TaskStatus.ACCEPTED]
    texts = [t.instruction for t in kept]
    labelled = [t.is_classification for t in kept if t.is_classification is not None]
    verbs = verb_noun_stats(texts)
    stored = embeddings or {}
    vectors = [stored[t.id] for t in sorted(kept, key=lambda t: t.id) if t.id in stored]
    matrix = np.stack(vectors) if vectors else None
    spread = None if matrix is None or len(vectors) < 2 else mean_pairwise_cosine_distance(matrix)
    return Diversity(
        instructions=len(kept),
        distinct_1=distinct_n(texts, 1) if texts else None,
        distinct_2=distinct_n(texts, 2) if texts else None,
        classification_share=sum(labelled) / len(labelled) if labelled else None,
        verb_noun_version=verbs.version,
        verb_noun_parsed=verbs.parsed,
        distinct_verbs=verbs.distinct_verbs,
        verb_noun_pairs=verbs.distinct_pairs,
        top20_verb_share=verbs.top_verb_share if verbs.parsed else None,
        top_verbs=verbs.top_verbs,
        embedding_model=embedding_model if vectors else None,
        embedded=len(vectors),
        embedding_mean_distance=spread,
        embedding_clusters=(
            cluster_count(matrix, radius=CLUSTER_RADIUS) if matrix is not None else None
        ),
    )
