"""The bootstrap configuration: the paper's defaults, every one recorded with a run."""

from __future__ import annotations

from dataclasses import field
from typing import Annotated

from pydantic import ConfigDict, Field
from pydantic.dataclasses import dataclass as validated_dataclass

from generators.errors import ConfigError
from generators.types import SamplingParams


def _instruction_sampling() -> SamplingParams:
    # The paper's decoding for new instructions; "16" ends the list 8 prompt tasks start.
    return SamplingParams(
        temperature=0.7,
        top_p=0.5,
        presence_penalty=2.0,
        max_tokens=1024,
        stop=("\n\n", "\n16", "16.", "16 ."),
    )


def _classification_sampling() -> SamplingParams:
    # Deterministic: the answer is one word.
    return SamplingParams(temperature=0.0, top_p=1.0, max_tokens=3, stop=("\n", "Task:"))


def _instance_sampling() -> SamplingParams:
    # The paper's instance decoding: greedy with a presence penalty against repeated examples.
    return SamplingParams(
        temperature=0.0, top_p=1.0, presence_penalty=1.5, max_tokens=300, stop=("Task:",)
    )


@validated_dataclass(config=ConfigDict(extra="forbid"))
class BootstrapConfig:
    """How one bootstrap iteration samples, prompts, decodes and parses.

    The single home of these settings and their defaults (the paper's): a run's configuration
    embeds this type as it is. pydantic validates every construction, ``dataclasses.replace``
    included, so a bad value raises ``pydantic.ValidationError`` (a ``ValueError``); to and from
    JSON: ``pydantic.TypeAdapter(BootstrapConfig).dump_python(config, mode="json")`` and
    ``.validate_python(data)``.

    Attributes:
        num_prompt_instructions: tasks listed in each instruction prompt.
        num_seed_in_prompt: seed tasks per prompt (more while the machine pool is small).
        num_machine_in_prompt: machine tasks per prompt at most.
        prompts_per_iteration: instruction prompts in one batch.
        classification_only: use the classification variant (and only classification tasks).
        chat_wrap: wrap every stage's prompts with the chat template (True) or none (False);
            None sends the paper's few-shot stages raw and wraps the instruction-style stages
            exactly when the backend serves a chat model (see ``Iteration.wraps``).
        instruction_sampling: decoding of the instruction stage.
        classification_sampling: decoding of the classification stage.
        instance_sampling: decoding of the instance stage (``Example k+1`` is added to its stops).
        max_instances_per_task: instances kept per task.
        max_instruction_chars: longer parsed instructions are refused as ``item_too_long``.
        max_instance_chars: longer instances are refused as ``instance_too_long``.
        keep_truncated: keep the complete items of a length-cut instruction completion.
        instructions_template_version: version of ``instructions`` (and its classification
            variant ``instructions_classification``).
        classification_template_version: version of ``is_classification``.
        instances_template_version: version of ``instances_input_first``/``_output_first``.
    """

    num_prompt_instructions: Annotated[int, Field(ge=1, le=64)] = 8
    num_seed_in_prompt: Annotated[int, Field(ge=1, le=64)] = 6
    num_machine_in_prompt: Annotated[int, Field(ge=0, le=64)] = 2
    prompts_per_iteration: Annotated[int, Field(ge=1, le=1024)] = 32
    classification_only: bool = False
    chat_wrap: bool | None = None
    instruction_sampling: SamplingParams = field(default_factory=_instruction_sampling)
    classification_sampling: SamplingParams = field(default_factory=_classification_sampling)
    instance_sampling: SamplingParams = field(default_factory=_instance_sampling)
    max_instances_per_task: Annotated[int, Field(ge=1, le=20)] = 5
    max_instruction_chars: Annotated[int, Field(ge=1)] = 1000
    max_instance_chars: Annotated[int, Field(ge=1)] = 5000
    keep_truncated: bool = False
    instructions_template_version: Annotated[int, Field(ge=1)] = 1
    classification_template_version: Annotated[int, Field(ge=1)] = 1
    instances_template_version: Annotated[int, Field(ge=1)] = 1

    def __post_init__(self) -> None:
        """Check the counts agree (pydantic has checked each one alone).

        Raises:
            ConfigError: the seed and machine shares do not add up to the prompt's tasks
                (surfaced by pydantic as a ``ValidationError``).
        """
        if self.num_seed_in_prompt + self.num_machine_in_prompt != self.num_prompt_instructions:
            raise ConfigError(
                "num_seed_in_prompt + num_machine_in_prompt must equal num_prompt_instructions"
            )
