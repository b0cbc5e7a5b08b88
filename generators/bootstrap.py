"""One Self-Instruct bootstrap iteration: instructions, then classification, then instances.

No database, no filters. :class:`Iteration` exposes the three stages so a caller runs them in
plain sequence and filters in between (only the instructions it keeps are worth the inference
of the two later stages)::

    it = Iteration(backend=backend, config=config, seed=seed)
    candidates = it.instructions(seed_tasks, machine_tasks)
    kept = [c for c in candidates if my_filters(c)]
    it.classify(kept)
    it.instances(kept)
    result = it.result(candidates, kept)

:func:`run_iteration` is that sequence with every candidate kept. Every model call becomes a
:class:`GenerationRecord`; every refused completion or piece of one a :class:`ParseFailure`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import assert_never

from generators.backends.base import Backend
from generators.config import BootstrapConfig
from generators.errors import BackendError, ParseError
from generators.parsing import (
    ItemFailure,
    parse_instances_input_first,
    parse_instances_output_first,
    parse_instructions,
    parse_is_classification,
)
from generators.prompts import (
    Template,
    load_template,
    render_instruction_prompt,
    render_task_prompt,
    sample_few_shot,
    sha256_text,
)
from generators.types import (
    Candidate,
    Completion,
    GenerationRecord,
    IterationResult,
    ParseFailure,
    PoolTask,
    SamplingParams,
    Stage,
    new_generation_id,
)

__all__ = ["BootstrapConfig", "Iteration", "run_iteration"]


def is_few_shot(stage: Stage) -> bool:
    """Whether a stage's templates are the paper's few-shot completion prompts.

    Every stage is named here (mypy checks the match is exhaustive over ``Stage``), so a stage
    added later must be placed on one side before it type-checks: it never falls through to a
    wrapping default (see `Iteration.wraps`).

    Raises:
        AssertionError: ``stage`` is not a ``Stage``.
    """
    match stage:
        case "instructions" | "classification" | "instances":
            return True
        case "evolution" | "answer" | "follow_up":
            return False
        case _:
            assert_never(stage)


def wraps_prompts(stage: Stage | None, *, is_chat: bool, chat_wrap: bool | None) -> bool:
    """Whether prompts go through the chat template: the one rule for every prompt we send.

    ``chat_wrap`` (the run's setting) decides when set. Unset, the paper's few-shot stages
    (instructions, classification, instances) are sent raw, as the completion prompts they are
    (Wang et al. 2023 used GPT-3 ``davinci``, a completion model), and instruction-style prompts
    (the evolution, answer and follow-up stages; ``stage=None``: a judge's or a refusal
    probe's prompt) are wrapped exactly when the backend serves a chat model. Measured on
    SmolLM2-135M-Instruct, greedy, the demo's instance sampling: 0 of 16 seed instructions gave
    parsable instances chat-wrapped (it answered the task instead of writing ``Output:``), 8 of
    8 raw.
    """
    if chat_wrap is not None:
        return chat_wrap
    return is_chat and (stage is None or not is_few_shot(stage))


def send_prompts(
    backend: Backend, prompts: Sequence[str], sampling: SamplingParams, *, wrap: bool
) -> tuple[list[str], list[Completion]]:
    """Send ``prompts`` to ``backend``, each as one chat user turn when ``wrap`` (see
    :func:`wraps_prompts`), else as raw text.

    Returns:
        The prompts as sent (wrapped or not) and the backend's completions, one each.

    Raises:
        BackendError: ``wrap`` on a model with no chat template, or the backend failed.
    """
    sent = [backend.wrap_chat(p) for p in prompts] if wrap else list(prompts)
    return sent, backend.generate(sent, sampling, chat=wrap)


class Iteration:
    """One iteration's stages and what they accumulate: records, failures, inference time.

    Args:
        backend: where the prompts go.
        config: sampling, decoding and parsing settings (validated when built).
        seed: drives few-shot sampling and, unless a sampling config fixes one, decoding seeds.
    """

    def __init__(self, *, backend: Backend, config: BootstrapConfig, seed: int) -> None:
        self.backend = backend
        self.config = config
        self.is_chat = backend.model_info.is_chat
        self.seed = seed
        self.records: list[GenerationRecord] = []
        self.failures: list[ParseFailure] = []
        self.timings: dict[str, float] = {}
        self._started = time.perf_counter()

    def instructions(
        self, seed_tasks: Sequence[PoolTask], machine_tasks: Sequence[PoolTask]
    ) -> list[Candidate]:
        """Stage 1: sample few-shot prompts from the pools, generate and parse new instructions.

        Raises:
            ConfigError: the seed pool is empty.
            TemplateError: the template version does not exist.
            BackendError: the backend failed as a whole.
        """
        return _instructions_stage(self, seed_tasks, machine_tasks, self.config)

    def classify(self, kept: list[Candidate]) -> None:
        """Stage 2: fill ``is_classification`` of each kept candidate (one call each)."""
        if kept:
            _classification_stage(self, kept, self.config)

    def instances(self, kept: list[Candidate]) -> None:
        """Stage 3: fill ``instances`` of each kept (classified) candidate (one call each)."""
        if kept:
            _instances_stage(self, kept, self.config)

    def result(self, candidates: list[Candidate], kept: list[Candidate]) -> IterationResult:
        """Close the iteration.

        Returns:
            Records, parse failures, candidates, kept candidates and timings in seconds:
            ``total_s`` since construction, ``inference_<stage>_s`` and their sum
            ``inference_s``, any caller-timed key (e.g. ``filters_s``), and ``non_inference_s``
            = total minus inference minus the caller's keys (rendering, parsing, bookkeeping).
        """
        total = time.perf_counter() - self._started
        inference = sum(v for k, v in self.timings.items() if k.startswith("inference_"))
        callers = sum(v for k, v in self.timings.items() if not k.startswith("inference_"))
        timings = {**self.timings, "total_s": total, "inference_s": inference}
        timings["non_inference_s"] = total - inference - callers
        return IterationResult(self.records, self.failures, candidates, kept, timings)

    @contextmanager
    def timed(self, key: str) -> Iterator[None]:
        """Add the wall time of the block to ``timings[key]`` (seconds)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[key] = self.timings.get(key, 0.0) + time.perf_counter() - start

    def fail(self, record: GenerationRecord, reason: str, excerpt: str) -> None:
        """Record that (part of) a completion could not be parsed."""
        self.failures.append(ParseFailure(record.id, record.stage, reason, excerpt))

    def fail_items(self, record: GenerationRecord, items: list[ItemFailure]) -> None:
        """Record each refused item of a completion."""
        for item in items:
            self.fail(record, item.reason, item.excerpt)

    def wraps(self, stage: Stage) -> bool:
        """Whether this stage's prompts go through the chat template (:func:`wraps_prompts`)."""
        return wraps_prompts(stage, is_chat=self.is_chat, chat_wrap=self.config.chat_wrap)

    def call(
        self,
        stage: Stage,
        templates: Sequence[Template],
        prompts: list[str],
        few_shot_ids: Sequence[list[str]],
        sampling: SamplingParams,
    ) -> list[GenerationRecord]:
        """Send one batch and record every call."""
        if sampling.seed is None:
            sampling = sampling.with_seed(self.seed)
        wrap = self.wraps(stage)
        with self.timed(f"inference_{stage}_s"):
            sent, completions = send_prompts(self.backend, prompts, sampling, wrap=wrap)
        if len(completions) != len(prompts):
            raise BackendError(f"{self.backend.name}: {len(completions)} answers to {len(prompts)}")
        base = sampling.to_dict()
        records = [
            GenerationRecord(
                id=new_generation_id(),
                stage=stage,
                backend=self.backend.name,
                model=self.backend.model_info,
                template_name=tpl.name,
                template_version=tpl.version,
                template_sha256=tpl.sha256,
                prompt=prompt,
                prompt_sha256=sha256_text(prompt),
                # A chat-only provider wraps a raw prompt as a continuation request.
                chat_wrapped=wrap or c.messages is not None,
                few_shot_ids=list(ids),
                # Backends seed prompt i of a batch from (seed, i): see backends.base.prompt_seed.
                sampling={**base, "prompt_index": i, "batch_size": len(sent)},
                completion=c.text,
                finish_reason=c.finish_reason,
                prompt_tokens=c.prompt_tokens,
                completion_tokens=c.completion_tokens,
                latency_s=c.latency_s,
                retries=c.retries,
                retry_log=list(c.retry_log),
                server=c.server,
                endpoint=c.endpoint,
                messages=c.messages,
            )
            for i, (tpl, prompt, ids, c) in enumerate(
                zip(templates, sent, few_shot_ids, completions, strict=True)
            )
        ]
        self.records.extend(records)
        return records


def run_iteration(
    *,
    seed_tasks: list[PoolTask],
    machine_tasks: list[PoolTask],
    backend: Backend,
    config: BootstrapConfig,
    seed: int,
) -> IterationResult:
    """Run one iteration (one batch) of Self-Instruct bootstrapping, keeping every candidate.

    A caller that filters between the stages runs :class:`Iteration`'s stages itself.

    Args:
        seed_tasks: the human-written pool.
        machine_tasks: machine tasks accepted so far (sampled into prompts).
        backend: where the prompts go.
        config: sampling, decoding and parsing settings.
        seed: drives few-shot sampling and, unless a sampling config fixes one, decoding seeds.

    Returns:
        See :meth:`Iteration.result`.

    Raises:
        ConfigError: empty seed pool.
        TemplateError: a template version does not exist.
        BackendError: the backend failed as a whole.
    """
    iteration = Iteration(backend=backend, config=config, seed=seed)
    candidates = iteration.instructions(seed_tasks, machine_tasks)
    iteration.classify(candidates)
    iteration.instances(candidates)
    return iteration.result(candidates, list(candidates))


INSTANCE_TEMPLATES = ("instances_output_first", "instances_input_first")


def stage_templates(config: BootstrapConfig) -> tuple[Template, ...]:
    """Every template the stages render under `config`: the instruction prompt (the
    classification variant when ``classification_only``), the classification question (not
    asked when ``classification_only``) and both instance orders.

    Raises:
        TemplateError: a configured version has no file.
    """
    name = "instructions_classification" if config.classification_only else "instructions"
    templates = [load_template(name, config.instructions_template_version)]
    if not config.classification_only:
        templates.append(load_template("is_classification", config.classification_template_version))
    version = config.instances_template_version
    templates += [load_template(n, version) for n in INSTANCE_TEMPLATES]
    return tuple(templates)


def _instructions_stage(
    run: Iteration,
    seed_tasks: Sequence[PoolTask],
    machine_tasks: Sequence[PoolTask],
    config: BootstrapConfig,
) -> list[Candidate]:
    name = "instructions_classification" if config.classification_only else "instructions"
    template = load_template(name, config.instructions_template_version)
    rng = random.Random(run.seed)
    few_shots = [
        sample_few_shot(
            seed_tasks,
            machine_tasks,
            rng=rng,
            num_total=config.num_prompt_instructions,
            num_machine=config.num_machine_in_prompt,
            classification_only=config.classification_only,
        )
        for _ in range(config.prompts_per_iteration)
    ]
    prompts = [render_instruction_prompt(template, tasks) for tasks in few_shots]
    ids = [[t.id for t in tasks] for tasks in few_shots]
    records = run.call(
        "instructions", [template] * len(prompts), prompts, ids, config.instruction_sampling
    )
    candidates: list[Candidate] = []
    for record in records:
        try:
            parsed = parse_instructions(
                completion_of(record),
                max_item_chars=config.max_instruction_chars,
                keep_truncated=config.keep_truncated,
            )
        except ParseError as exc:
            run.fail(record, exc.reason, exc.excerpt)
            continue
        run.fail_items(record, parsed.failures)
        candidates.extend(Candidate(text, record.id) for text in parsed.instructions)
    return candidates


def _classification_stage(run: Iteration, kept: list[Candidate], config: BootstrapConfig) -> None:
    """Ask whether each kept instruction is a classification task.

    An unreadable answer is recorded as a failure and the task treated as non-classification
    (the paper's rule: only an explicit yes counts), so it still gets input-first instances.
    """
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
    for candidate, record in zip(kept, records, strict=True):
        candidate.classification_generation_id = record.id
        try:
            candidate.is_classification = parse_is_classification(completion_of(record))
        except ParseError as exc:
            run.fail(record, exc.reason, exc.excerpt)
            candidate.is_classification = False


def _instances_stage(run: Iteration, kept: list[Candidate], config: BootstrapConfig) -> None:
    """Generate instances: output-first for classification tasks, input-first for the rest."""
    version = config.instances_template_version
    output_first, input_first = (load_template(n, version) for n in INSTANCE_TEMPLATES)
    templates = [output_first if c.is_classification else input_first for c in kept]
    prompts = [render_task_prompt(t, c.instruction) for t, c in zip(templates, kept, strict=True)]
    sampling = config.instance_sampling
    stop = f"Example {config.max_instances_per_task + 1}"
    if stop not in sampling.stop:
        sampling = SamplingParams(**{**sampling.to_dict(), "stop": (*sampling.stop, stop)})
    records = run.call("instances", templates, prompts, [[] for _ in prompts], sampling)
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
