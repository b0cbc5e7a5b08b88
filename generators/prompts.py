"""Prompt templates (versioned files with a sha256), rendering, and seeded few-shot sampling.

A template lives in ``generators/templates/NAME.vN.txt``; its text is the file's exact content
(so an instruction prompt can end on ``9.`` without a newline) and ``${field}`` marks a slot,
filled by the project's one single-pass renderer (:mod:`templating`; a literal dollar is ``$$``).
The same pool, seed and config always render the same prompts: sampling takes an explicit
``random.Random`` and nothing else.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources

from generators.errors import ConfigError, TemplateError
from generators.types import PoolTask
from templating import SlotError, fill_slots, slot_names

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def sha256_text(text: str) -> str:
    """Return the hex sha256 of ``text`` encoded as UTF-8."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Template:
    """A loaded prompt template."""

    name: str
    version: int
    text: str
    sha256: str

    @property
    def fields(self) -> frozenset[str]:
        """The slot names the template expects.

        Raises:
            TemplateError: the text holds a stray ``$``.
        """
        try:
            return slot_names(self.text)
        except SlotError as exc:
            raise TemplateError(f"template {self.name}.v{self.version}: {exc}") from exc

    def render(self, **values: str) -> str:
        """Fill every slot in one pass; a value is inserted verbatim, never re-read.

        Args:
            **values: one string per slot; extra or missing names are an error.

        Returns:
            The rendered prompt.

        Raises:
            TemplateError: a slot is missing, an unknown one was given, or the text is malformed.
        """
        try:
            return fill_slots(self.text, values)
        except SlotError as exc:
            raise TemplateError(f"template {self.name}.v{self.version}: {exc}") from exc


def load_template(name: str, version: int) -> Template:
    """Load ``generators/templates/{name}.v{version}.txt``.

    Args:
        name: template name, lowercase letters, digits and underscores.
        version: positive version number.

    Returns:
        The template with the sha256 of its file's bytes.

    Raises:
        TemplateError: bad name or version, or no such file.
    """
    if not _NAME.match(name) or version < 1:
        raise TemplateError(f"bad template reference {name!r} v{version!r}")
    resource = resources.files("generators") / "templates" / f"{name}.v{version}.txt"
    try:
        data = resource.read_bytes()
    except FileNotFoundError as exc:
        raise TemplateError(f"no template {name}.v{version}") from exc
    return Template(name, version, data.decode("utf-8"), hashlib.sha256(data).hexdigest())


def normalize_instruction(text: str) -> str:
    """Collapse whitespace and drop a trailing colon, as the paper does before listing a task."""
    return re.sub(r"\s+", " ", text).strip().rstrip(":")


def sample_few_shot(
    seed_tasks: Sequence[PoolTask],
    machine_tasks: Sequence[PoolTask],
    *,
    rng: random.Random,
    num_total: int,
    num_machine: int,
    classification_only: bool = False,
) -> list[PoolTask]:
    """Pick the tasks one instruction prompt lists, in shuffled order.

    Takes up to ``num_machine`` machine tasks and fills the rest with seed tasks, so while the
    machine pool is small the prompt holds more seed tasks (the paper's rule).

    Args:
        seed_tasks: the human-written pool.
        machine_tasks: the machine-generated pool accepted so far.
        rng: the only source of randomness (seeded by the caller).
        num_total: tasks per prompt (8 in the paper).
        num_machine: machine tasks per prompt at most (2 in the paper).
        classification_only: draw only classification tasks (the classification variant).

    Returns:
        ``num_total`` tasks (fewer only if the pools are too small), shuffled.

    Raises:
        ConfigError: no seed task is available.
    """
    if classification_only:
        seed_tasks = [t for t in seed_tasks if t.is_classification]
        machine_tasks = [t for t in machine_tasks if t.is_classification]
    if not seed_tasks:
        raise ConfigError("no seed tasks to sample from")
    # A Sequence, not a copy: a pool read on demand (service.runs.few_shot_pool) gives the
    # same draw as the list and reads only the tasks drawn.
    machine = rng.sample(machine_tasks, min(num_machine, len(machine_tasks)))
    seeds = rng.sample(list(seed_tasks), min(num_total - len(machine), len(seed_tasks)))
    chosen = seeds + machine
    rng.shuffle(chosen)
    return chosen


def render_instruction_prompt(template: Template, tasks: Sequence[PoolTask]) -> str:
    """Render the numbered list of instructions, ending with the next number for the model.

    Args:
        template: an instruction template with ``numbered_instructions`` and ``next_number``.
        tasks: the few-shot tasks in prompt order.

    Returns:
        The prompt text.
    """
    lines = [f"{i}. {normalize_instruction(t.instruction)}" for i, t in enumerate(tasks, 1)]
    return template.render(numbered_instructions="\n".join(lines), next_number=str(len(tasks) + 1))


def render_task_prompt(template: Template, instruction: str) -> str:
    """Render a per-task prompt (classification or instances) for one instruction."""
    return template.render(instruction=normalize_instruction(instruction))
