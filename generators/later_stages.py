"""Stages 2 and 3 of a Self-Instruct iteration: is each kept instruction a classification task,
then its instances (output-first for classification tasks, input-first for the rest).

Run as two batches (:func:`classification_stage`, then :func:`instances_stage`), or, on a
backend that takes concurrent calls, candidate by candidate (:func:`pipelined_stages`): each
instance request goes out as soon as its own classification is back. ``Iteration`` in
:mod:`generators.bootstrap` chooses (``Iteration.later_stages``).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from generators.backends.base import prompt_seed
from generators.config import BootstrapConfig
from generators.errors import BackendError, ParseError
from generators.parsing import (
    parse_instances_input_first,
    parse_instances_output_first,
    parse_is_classification,
)
from generators.prompts import Template, load_template, render_task_prompt
from generators.types import Candidate, Completion, GenerationRecord, SamplingParams

if TYPE_CHECKING:  # the iteration calls in here: only its type is needed
    from generators.bootstrap import Iteration

INSTANCE_TEMPLATES = ("instances_output_first", "instances_input_first")


def classification_stage(run: Iteration, kept: list[Candidate], config: BootstrapConfig) -> None:
    """Ask whether each kept instruction is a classification task (see :func:`_read_labels`)."""
    if config.classification_only:
        for candidate in kept:  # the variant asked for classification tasks: no model call
            candidate.is_classification = True
        return
    template = load_template("is_classification", config.classification_template_version)
    prompts = [render_task_prompt(template, c.instruction) for c in kept]
    records = run.call(
        "classification",
        [template] * len(prompts),
        prompts,
        [[] for _ in prompts],
        config.classification_sampling,
    )
    _read_labels(run, kept, records)


def _read_labels(run: Iteration, kept: list[Candidate], records: list[GenerationRecord]) -> None:
    """Fill ``is_classification`` from the classification answers.

    An unreadable answer is recorded as a failure and the task treated as non-classification
    (the paper's rule: only an explicit yes counts), so it still gets input-first instances.
    """
    for candidate, record in zip(kept, records, strict=True):
        candidate.classification_generation_id = record.id
        try:
            candidate.is_classification = parse_is_classification(completion_of(record))
        except ParseError as exc:
            run.fail(record, exc.reason, exc.excerpt)
            candidate.is_classification = False


def _instance_templates(config: BootstrapConfig) -> tuple[Template, Template]:
    """(output-first, input-first): the first for classification tasks, the other for the rest."""
    version = config.instances_template_version
    output_first, input_first = (load_template(n, version) for n in INSTANCE_TEMPLATES)
    return output_first, input_first


def _instance_sampling(config: BootstrapConfig) -> SamplingParams:
    """The instance decoding, with ``Example k+1`` among its stops (k instances at most)."""
    sampling = config.instance_sampling
    stop = f"Example {config.max_instances_per_task + 1}"
    if stop not in sampling.stop:
        sampling = SamplingParams(**{**sampling.to_dict(), "stop": (*sampling.stop, stop)})
    return sampling


def instances_stage(run: Iteration, kept: list[Candidate], config: BootstrapConfig) -> None:
    """Generate instances: output-first for classification tasks, input-first for the rest."""
    output_first, input_first = _instance_templates(config)
    templates = [output_first if c.is_classification else input_first for c in kept]
    prompts = [render_task_prompt(t, c.instruction) for t, c in zip(templates, kept, strict=True)]
    records = run.call(
        "instances", templates, prompts, [[] for _ in prompts], _instance_sampling(config)
    )
    _read_instances(run, kept, records, config)


def _read_instances(
    run: Iteration, kept: list[Candidate], records: list[GenerationRecord], config: BootstrapConfig
) -> None:
    """Fill ``instances`` from the instance completions, by each candidate's template."""
    for candidate, record in zip(kept, records, strict=True):
        candidate.instances_generation_id = record.id
        parse = (
            parse_instances_output_first
            if candidate.is_classification
            else parse_instances_input_first
        )
        try:
            parsed = parse(
                completion_of(record),
                max_instances=config.max_instances_per_task,
                max_chars=config.max_instance_chars,
            )
        except ParseError as exc:
            run.fail(record, exc.reason, exc.excerpt)
            continue
        run.fail_items(record, parsed.failures)
        candidate.instances = parsed.instances


MAX_CHAINS = 256
"""Threads of :func:`pipelined_stages` at most (the backend bounds what is in flight)."""


def pipelined_stages(run: Iteration, kept: list[Candidate], config: BootstrapConfig) -> None:
    """Classification then instances, each candidate on its own as soon as it can go.

    Candidate ``i`` is prompt ``i`` of both stages, sent alone with the seed the batch would
    give it (:func:`~generators.backends.base.prompt_seed`) and recorded as part of the
    stage's batch, so records and results equal the batched stages'. Timings: the
    classification stage lasts until its last answer, the instance stage the rest.
    """
    label_template = load_template("is_classification", config.classification_template_version)
    output_first, input_first = _instance_templates(config)
    label_sampling = run.seeded(config.classification_sampling)
    instance_sampling = run.seeded(_instance_sampling(config))
    label_wrap, instance_wrap = run.wraps("classification"), run.wraps("instances")

    def one(
        prompt: str, sampling: SamplingParams, index: int, wrap: bool
    ) -> tuple[str, Completion]:
        # Prompt `index` of the stage's batch, alone, with the seed the batch would give it.
        alone = sampling.with_seed(prompt_seed(sampling, index))
        sent, done = run.send([prompt], alone, wrap=wrap)
        if len(done) != 1:
            raise BackendError(f"{run.backend.name}: {len(done)} answers to 1")
        return sent[0], done[0]

    def chain(index: int) -> tuple[tuple[str, Completion], float, Template, tuple[str, Completion]]:
        instruction = kept[index].instruction
        label = one(
            render_task_prompt(label_template, instruction), label_sampling, index, label_wrap
        )
        labelled_at = time.perf_counter()
        try:
            is_classification = parse_is_classification(label[1])
        except ParseError:  # recorded with the batch below; input-first as the paper's rule
            is_classification = False
        template = output_first if is_classification else input_first
        prompt = render_task_prompt(template, instruction)
        return label, labelled_at, template, one(prompt, instance_sampling, index, instance_wrap)

    started = time.perf_counter()
    with ThreadPoolExecutor(
        max_workers=min(len(kept), MAX_CHAINS), thread_name_prefix="later-stages"
    ) as pool:
        chains = list(pool.map(chain, range(len(kept))))
    finished = time.perf_counter()
    labelled = max(at for _, at, _, _ in chains)
    run.timings["inference_classification_s"] = (
        run.timings.get("inference_classification_s", 0.0) + labelled - started
    )
    run.timings["inference_instances_s"] = (
        run.timings.get("inference_instances_s", 0.0) + finished - labelled
    )
    no_ids: list[list[str]] = [[] for _ in kept]
    labels = run.record(
        "classification",
        [label_template] * len(kept),
        [sent for (sent, _), _, _, _ in chains],
        no_ids,
        [done for (_, done), _, _, _ in chains],
        label_sampling,
        label_wrap,
    )
    _read_labels(run, kept, labels)
    instances = run.record(
        "instances",
        [template for _, _, template, _ in chains],
        [sent for _, _, _, (sent, _) in chains],
        no_ids,
        [done for _, _, _, (_, done) in chains],
        instance_sampling,
        instance_wrap,
    )
    _read_instances(run, kept, instances, config)


def completion_of(record: GenerationRecord) -> Completion:
    """The completion a record holds, as the parsers take it."""
    return Completion(
        record.completion,
        record.finish_reason,
        record.prompt_tokens,
        record.completion_tokens,
        record.latency_s,
        record.retries,
        record.retry_log,
    )
