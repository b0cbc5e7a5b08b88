"""The bootstrap configuration: the paper's defaults, every one recorded with a run."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

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


@dataclass
class BootstrapConfig:
    """How one bootstrap iteration samples, prompts, decodes and parses.

    Attributes:
        num_prompt_instructions: tasks listed in each instruction prompt.
        num_seed_in_prompt: seed tasks per prompt (more while the machine pool is small).
        num_machine_in_prompt: machine tasks per prompt at most.
        prompts_per_iteration: instruction prompts in one batch.
        classification_only: use the classification variant (and only classification tasks).
        chat_wrap: wrap prompts with the chat template; None wraps exactly when the backend
            serves a chat model.
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

    num_prompt_instructions: int = 8
    num_seed_in_prompt: int = 6
    num_machine_in_prompt: int = 2
    prompts_per_iteration: int = 32
    classification_only: bool = False
    chat_wrap: bool | None = None
    instruction_sampling: SamplingParams = field(default_factory=_instruction_sampling)
    classification_sampling: SamplingParams = field(default_factory=_classification_sampling)
    instance_sampling: SamplingParams = field(default_factory=_instance_sampling)
    max_instances_per_task: int = 5
    max_instruction_chars: int = 1000
    max_instance_chars: int = 5000
    keep_truncated: bool = False
    instructions_template_version: int = 1
    classification_template_version: int = 1
    instances_template_version: int = 1

    def validate(self) -> None:
        """Check the numbers agree.

        Raises:
            ConfigError: counts are inconsistent or not positive.
        """
        if self.num_seed_in_prompt + self.num_machine_in_prompt != self.num_prompt_instructions:
            raise ConfigError(
                "num_seed_in_prompt + num_machine_in_prompt must equal num_prompt_instructions"
            )
        for name in ("num_prompt_instructions", "prompts_per_iteration", "max_instances_per_task"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1")
        if self.num_seed_in_prompt < 1 or self.num_machine_in_prompt < 0:
            raise ConfigError("a prompt needs at least one seed task")

    def to_dict(self) -> dict[str, Any]:
        """Return every setting as a JSON-ready dict (sampling nested as dicts)."""
        data = dataclasses.asdict(self)
        for key in ("instruction_sampling", "classification_sampling", "instance_sampling"):
            data[key] = getattr(self, key).to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BootstrapConfig:
        """Rebuild a config from :meth:`to_dict` output (missing keys take the defaults).

        Raises:
            ConfigError: an unknown key or bad sampling entry.
        """
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown bootstrap config keys: {sorted(unknown)}")
        values = dict(data)
        try:
            for key in ("instruction_sampling", "classification_sampling", "instance_sampling"):
                if isinstance(values.get(key), dict):
                    entry = dict(values[key])
                    entry["stop"] = tuple(entry.get("stop", ()))
                    values[key] = SamplingParams(**entry)
        except TypeError as exc:
            raise ConfigError(f"bad sampling parameters: {exc}") from exc
        return cls(**values)
