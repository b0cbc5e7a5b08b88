"""One Self-Instruct bootstrap iteration: instructions, then classification, then instances.

No database, no filters: the caller hands over the pools and a backend, and may pass an
``accept`` callback (its filters) that decides which parsed instructions are worth the inference
of the two later stages. Every model call becomes a :class:`GenerationRecord`; every refused
completion or piece of one a :class:`ParseFailure`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from generators.backends.base import Backend
from generators.config import BootstrapConfig
from generators.errors import BackendError, ConfigError, ParseError
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

__all__ = ["BootstrapConfig", "run_iteration"]

Accept = Callable[[list[Candidate]], list[bool]]


@dataclass
class _Run:
    """What one iteration accumulates: records, failures and time spent in inference."""

    backend: Backend
    wrap: bool
    seed: int
    records: list[GenerationRecord] = field(default_factory=list)
    failures: list[ParseFailure] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def timed(self, key: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[key] = self.timings.get(key, 0.0) + time.perf_counter() - start

    def fail(self, record: GenerationRecord, reason: str, excerpt: str) -> None:
        self.failures.append(ParseFailure(record.id, record.stage, reason, excerpt))

    def fail_items(self, record: GenerationRecord, items: list[ItemFailure]) -> None:
        for item in items:
            self.fail(record, item.reason, item.excerpt)

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
        sent = [self.backend.wrap_chat(p) for p in prompts] if self.wrap else prompts
        with self.timed(f"inference_{stage}_s"):
            completions = self.backend.generate(sent, sampling)
        if len(completions) != len(sent):
            raise BackendError(f"{self.backend.name}: {len(completions)} answers to {len(sent)}")
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
                chat_wrapped=self.wrap,
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
    accept: Accept | None = None,
) -> IterationResult:
    """Run one iteration (one batch) of Self-Instruct bootstrapping.

    Args:
        seed_tasks: the human-written pool.
        machine_tasks: machine tasks accepted so far (sampled into prompts).
        backend: where the prompts go.
        config: sampling, decoding and parsing settings.
        seed: drives few-shot sampling and, unless a sampling config fixes one, decoding seeds.
        accept: given every parsed candidate, says which to keep; only kept ones are classified
            and get instances. None keeps all.

    Returns:
        Records, parse failures, all candidates, kept candidates and timings (``total_s``,
        ``inference_s``, ``accept_s``, ``non_inference_s`` = rendering + parsing + bookkeeping).

    Raises:
        ConfigError: inconsistent config, empty seed pool, or a bad accept answer.
        TemplateError: a template version does not exist.
        BackendError: the backend failed as a whole.
    """
    config.validate()
    wrap = backend.model_info.is_chat if config.chat_wrap is None else config.chat_wrap
    run = _Run(backend=backend, wrap=wrap, seed=seed)
    with run.timed("total_s"):
        candidates = _instructions_stage(run, seed_tasks, machine_tasks, config)
        with run.timed("accept_s"):
            verdicts = accept(list(candidates)) if accept else [True] * len(candidates)
        if len(verdicts) != len(candidates):
            raise ConfigError(f"accept answered {len(verdicts)} verdicts for {len(candidates)}")
        kept = [c for c, ok in zip(candidates, verdicts, strict=True) if ok]
        if kept:
            _classification_stage(run, kept, config)
            _instances_stage(run, kept, config)
    timings = dict(run.timings)
    timings["inference_s"] = sum(v for k, v in timings.items() if k.startswith("inference_"))
    timings.setdefault("accept_s", 0.0)
    timings["non_inference_s"] = timings["total_s"] - timings["inference_s"] - timings["accept_s"]
    return IterationResult(run.records, run.failures, candidates, kept, timings)


def _instructions_stage(
    run: _Run, seed_tasks: list[PoolTask], machine_tasks: list[PoolTask], config: BootstrapConfig
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
    candidates = []
    for record in records:
        try:
            parsed = parse_instructions(
                _completion_of(record),
                max_item_chars=config.max_instruction_chars,
                keep_truncated=config.keep_truncated,
            )
        except ParseError as exc:
            run.fail(record, exc.reason, exc.excerpt)
            continue
        run.fail_items(record, parsed.failures)
        candidates.extend(Candidate(text, record.id) for text in parsed.instructions)
    return candidates


def _classification_stage(run: _Run, kept: list[Candidate], config: BootstrapConfig) -> None:
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
            candidate.is_classification = parse_is_classification(_completion_of(record))
        except ParseError as exc:
            run.fail(record, exc.reason, exc.excerpt)
            candidate.is_classification = False


def _instances_stage(run: _Run, kept: list[Candidate], config: BootstrapConfig) -> None:
    """Generate instances: output-first for classification tasks, input-first for the rest."""
    version = config.instances_template_version
    output_first = load_template("instances_output_first", version)
    input_first = load_template("instances_input_first", version)
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
                _completion_of(record),
                max_instances=config.max_instances_per_task,
                max_chars=config.max_instance_chars,
            )
        except ParseError as exc:
            run.fail(record, exc.reason, exc.excerpt)
            continue
        run.fail_items(record, parsed.failures)
        candidate.instances = parsed.instances


def _completion_of(record: GenerationRecord) -> Completion:
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
