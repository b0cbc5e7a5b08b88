"""Evol-Instruct: grow harder (in-depth) or new same-domain (in-breadth) tasks from pool tasks.

Xu et al. (2023), *WizardLM: Empowering Large Language Models to Follow Complex Instructions*:
a parent task is rewritten by one operation, then the model answers the rewritten task. The
in-depth operations are the paper's (add constraints, deepen, concretize, increase reasoning
steps, complicate the input); in-breadth writes a new, rarer task of the same domain. The
prompts are versioned, hashed files (``generators/templates/evol_<operation>.vN.txt``) and each
call is a :class:`~generators.types.GenerationRecord` of stage ``evolution`` or ``answer``, made
through :class:`generators.bootstrap.Iteration` like every other stage.

The elimination step lives with the other filters (:mod:`filters.evolution`); the caller runs it
between :func:`evolve` and :func:`answer`, as between the bootstrap stages::

    it = Iteration(backend=backend, config=bootstrap_config, seed=seed)
    candidates = evolve(it, pick_parents(seeds, machine, rng=rng, config=config), config)
    kept = [c for c in candidates if my_filters(c)]
    answer(it, kept, config)
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import field
from typing import Annotated, Literal

from pydantic import ConfigDict, Field
from pydantic.dataclasses import dataclass as validated_dataclass

from generators.bootstrap import Iteration, completion_of
from generators.errors import ParseError
from generators.prompts import load_template
from generators.types import Candidate, Completion, Instance, PoolTask, SamplingParams

Operation = Literal[
    "add_constraints",
    "deepen",
    "concretize",
    "increase_reasoning",
    "complicate_input",
    "in_breadth",
]
IN_DEPTH: tuple[Operation, ...] = (
    "add_constraints",
    "deepen",
    "concretize",
    "increase_reasoning",
    "complicate_input",
)
OPERATIONS: tuple[Operation, ...] = (*IN_DEPTH, "in_breadth")
ParentPool = Literal["seed_and_accepted", "seed"]

# Labels the model repeats before its answer (a small model often restates "#The Given
# Prompt#:" first), or the next section it starts on its own.
_LEADING_LABEL = re.compile(
    r"^(?:\s*\"?#?\s*(?:the\s+)?(?:given|rewritten|created)\s+prompt\s*#\s*:?\s*)+", re.I
)
_NEXT_SECTION = re.compile(r"\n\s*#[^#\n]{1,40}#")


def _evolution_sampling() -> SamplingParams:
    # WizardLM samples the rewrites at temperature 1; 0.7 keeps a 135M model on topic.
    return SamplingParams(temperature=0.7, top_p=0.95, max_tokens=256, stop=("\n\n\n",))


def _answer_sampling() -> SamplingParams:
    return SamplingParams(temperature=0.0, top_p=1.0, max_tokens=384)


@validated_dataclass(config=ConfigDict(extra="forbid"))
class EvolConfig:
    """How an Evol-Instruct iteration picks parents, evolves and answers (one run setting each).

    Attributes:
        operations: the operations drawn from, uniformly (the paper's five in-depth ones and
            in-breadth by default).
        parents_per_iteration: parent tasks evolved in one batch (one call each).
        parent_pool: ``seed_and_accepted`` evolves seed tasks and the run's accepted (possibly
            already evolved) tasks, so lineages deepen; ``seed`` evolves seed tasks only.
        evolution_sampling: decoding of the rewrite.
        answer_sampling: decoding of the answer to the evolved task.
        max_task_chars: a longer evolved task is refused (``item_too_long``).
        template_version: version of every ``evol_*`` template.
    """

    operations: Annotated[tuple[Operation, ...], Field(min_length=1)] = OPERATIONS
    parents_per_iteration: Annotated[int, Field(ge=1, le=1024)] = 16
    parent_pool: ParentPool = "seed_and_accepted"
    evolution_sampling: SamplingParams = field(default_factory=_evolution_sampling)
    answer_sampling: SamplingParams = field(default_factory=_answer_sampling)
    max_task_chars: Annotated[int, Field(ge=1)] = 3000
    template_version: Annotated[int, Field(ge=1)] = 1


def parent_text(task: PoolTask) -> str:
    """The parent as the evolving prompt shows it: the instruction and its first input, if any."""
    inputs = [i.input.strip() for i in task.instances if i.input.strip()]
    instruction = task.instruction.strip()
    return f"{instruction}\n{inputs[0]}" if inputs else instruction


def pick_parents(
    seed_tasks: Sequence[PoolTask],
    machine_tasks: Sequence[PoolTask],
    *,
    rng: random.Random,
    config: EvolConfig,
) -> list[tuple[PoolTask, Operation]]:
    """Draw ``parents_per_iteration`` (parent, operation) pairs, with replacement.

    Returns:
        The pairs in draw order; none from an empty pool.
    """
    pool = list(seed_tasks)
    if config.parent_pool == "seed_and_accepted":
        pool += machine_tasks
    if not pool:
        return []
    return [
        (rng.choice(pool), rng.choice(config.operations))
        for _ in range(config.parents_per_iteration)
    ]


def parse_evolved(completion: Completion, *, max_chars: int) -> str:
    """The evolved task in a rewrite completion.

    Drops the template's labels repeated at the start (``#Rewritten Prompt#:``, ``#The Given
    Prompt#:``) and anything from the next ``#Section#`` on; what is left is judged by the
    elimination rules (a copied parent adds no information).

    Raises:
        ParseError: ``truncated`` (cut by the length limit), ``empty`` or ``item_too_long``.
    """
    if completion.finish_reason == "length":
        raise ParseError("truncated", completion.text[-200:])
    text = _LEADING_LABEL.sub("", completion.text.strip())
    text = _NEXT_SECTION.split(text, maxsplit=1)[0].strip().strip('"').strip()
    if not text:
        raise ParseError("empty", completion.text)
    if len(text) > max_chars:
        raise ParseError("item_too_long", text)
    return text


def evolve(
    run: Iteration, picks: Sequence[tuple[PoolTask, Operation]], config: EvolConfig
) -> list[Candidate]:
    """Stage ``evolution``: rewrite each parent by its operation; parse each rewrite.

    Returns:
        One candidate per parsed rewrite, with ``parent_id`` and ``operation`` set (unparsable
        rewrites are recorded as parse failures on ``run``).

    Raises:
        TemplateError: the template version does not exist.
        BackendError: the backend failed as a whole.
    """
    if not picks:
        return []
    templates = [load_template(f"evol_{op}", config.template_version) for _, op in picks]
    prompts = [t.render(parent=parent_text(p)) for t, (p, _) in zip(templates, picks, strict=True)]
    ids = [[p.id] for p, _ in picks]
    records = run.call("evolution", templates, prompts, ids, config.evolution_sampling)
    out: list[Candidate] = []
    for (parent, op), record in zip(picks, records, strict=True):
        try:
            text = parse_evolved(completion_of(record), max_chars=config.max_task_chars)
        except ParseError as exc:
            run.fail(record, exc.reason, exc.excerpt)
            continue
        out.append(
            Candidate(text, record.id, is_classification=False, parent_id=parent.id, operation=op)
        )
    return out


def answer(run: Iteration, kept: list[Candidate], config: EvolConfig) -> None:
    """Stage ``answer``: the model answers each kept evolved task; the answer is its instance.

    A length-cut answer is a parse failure (``truncated``) and leaves the task without
    instances, so the caller rejects it like a task whose instances failed.
    """
    if not kept:
        return
    template = load_template("evol_answer", config.template_version)
    prompts = [template.render(instruction=c.instruction) for c in kept]
    records = run.call(
        "answer", [template] * len(kept), prompts, [[] for _ in kept], config.answer_sampling
    )
    for candidate, record in zip(kept, records, strict=True):
        candidate.instances_generation_id = record.id
        text = record.completion.strip()
        if record.finish_reason == "length":
            run.fail(record, "truncated", record.completion[-200:])
        elif not text:
            run.fail(record, "empty", record.completion)
        else:
            candidate.instances = [Instance("", text)]
