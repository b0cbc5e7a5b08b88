"""The training config: one typed dataclass whose fields carry help text and become CLI flags.

Every field of `TrainConfig` is a flag (`max_length` -> `--max-length`). The resolved config is
saved next to the model and hashed (`config_hash`), so a trained model names exactly the settings
that made it.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from trainer.errors import ConfigError

Precision = Literal["auto", "bf16", "fp32"]
PaddingSide = Literal["right", "left"]
# Fields that say where or how fast, not what is trained: left out of the config hash, so a
# resumed run (or the same run written elsewhere) keeps the hash of the run it continues.
UNHASHED_FIELDS = (
    "output_dir",
    "resume_from",
    "num_threads",
    "keep_freed_memory",
    "gradient_checkpointing",
)


def _help(text: str, default: Any = dataclasses.MISSING) -> Any:
    """Declare a config field with its help text (the CLI flag's help)."""
    return field(default=default, metadata={"help": text})


METHODS = ("sft", "dpo")
LOSS_TYPES = ("sigmoid", "ipo", "hinge")


@dataclass
class TrainConfig:
    """Everything that decides a training run; saved and hashed with the model."""

    model: str = _help("Base model: a local directory, or a prepared name such as 'smollm2-135m'.")
    method: str = _help(
        "sft: supervised fine-tuning on a dataset version's messages; dpo: direct preference "
        "optimisation on a preference export (instructforge export-preference), the starting "
        "model as the frozen reference.",
        "sft",
    )
    beta: float = _help("DPO: strength of the pull towards the reference model.", 0.1)
    loss_type: str = _help(
        "DPO loss of the reward margin h (summed log-ratios): sigmoid -log(sigmoid(beta*h)) "
        "(Rafailov et al. 2023), ipo (h - 1/(2*beta))^2 (Azar et al. 2023), hinge "
        "max(0, 1 - beta*h) (SLiC).",
        "sigmoid",
    )
    dataset: str | None = _help(
        "Dataset version as NAME@VERSION (resolved to a directory by the instructforge CLI).", None
    )
    model_cache_dir: str = _help(
        "Where prepared models (e.g. smollm2-135m) are cached.", "./data/model-cache"
    )
    output_dir: str | None = _help("Output directory; default ./data/models/RUN_NAME/.", None)
    run_name: str | None = _help(
        "Name of the trained model; default DATASET-vVERSION-CONFIGHASH8.", None
    )
    max_length: int = _help("Tokens per row (packed) or per example (padded).", 512)
    batch_size: int = _help("Rows per micro-batch.", 4)
    gradient_accumulation_steps: int = _help("Micro-batches per optimizer step.", 1)
    epochs: int = _help("Passes over the training split (ignored when --max-steps > 0).", 1)
    max_steps: int = _help("Optimizer steps to run; <= 0 means run --epochs epochs.", 0)
    learning_rate: float = _help("Peak AdamW learning rate.", 5e-5)
    weight_decay: float = _help("AdamW weight decay.", 0.0)
    warmup_steps: int = _help("Linear warmup steps before the cosine decay.", 0)
    min_lr_ratio: float = _help("Cosine decays to this fraction of the peak learning rate.", 0.0)
    max_grad_norm: float = _help("Gradient clipping norm; <= 0 disables clipping.", 1.0)
    packing: bool = _help(
        "Pack examples into full rows (best-fit decreasing, no attention across examples).", True
    )
    padding_side: PaddingSide = field(
        default="right", metadata={"help": "Where pads go when not packing."}
    )
    attn_implementation: str = _help(
        "Attention kernel. auto: sdpa_varlen when packing, sdpa when padding. sdpa_varlen: packed "
        "rows flattened to their real tokens, exact causal attention per example on CPU (no mask, "
        "no pad tokens); sdpa or eager: a block-diagonal causal mask from the segment ids; "
        "flash_attention_2: the flash-attn varlen kernel, where installed.",
        "auto",
    )
    precision: Precision = field(
        default="auto",
        metadata={"help": "auto: bf16 autocast where the hardware supports it, else fp32."},
    )
    device: str = _help(
        "Where to train: auto (cuda when a CUDA device is visible, else cpu), cpu, cuda or cuda:N.",
        "auto",
    )
    eval_steps: int = _help("Evaluate on the validation split every N steps (and at step 0).", 50)
    eval_batch_size: int = _help("Rows per evaluation batch.", 8)
    early_stopping_patience: int = _help(
        "Stop after this many evaluations without improvement; 0 disables early stopping.", 0
    )
    early_stopping_min_delta: float = _help(
        "Smallest validation-loss decrease that counts as an improvement.", 0.0
    )
    save_steps: int = _help("Write a resumable checkpoint every N steps; 0 disables.", 0)
    resume_from: str | None = _help(
        "Checkpoint directory to resume from, or 'latest' for the newest under the output dir.",
        None,
    )
    seed: int = _help("Seed for sampling, shuffling and initialisation.", 0)
    task_weights: dict[str, float] | None = field(
        default=None,
        metadata={"help": "Sampling weight per task type, e.g. 'classification=1,generation=2'."},
    )
    max_truncated_fraction: float = _help(
        "Abort when more than this fraction of examples lose all supervision to truncation.", 0.05
    )
    lora: bool = _help("Train LoRA adapters (peft) instead of all weights.", False)
    lora_r: int = _help("LoRA rank.", 8)
    lora_alpha: int = _help("LoRA alpha.", 16)
    lora_dropout: float = _help("LoRA dropout.", 0.0)
    lora_target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"],
        metadata={"help": "Modules that get LoRA adapters (comma-separated)."},
    )
    logging_steps: int = _help("Write a metrics line every N steps.", 1)
    num_threads: int = _help("torch intra-op threads; 0 keeps torch's default.", 0)
    keep_freed_memory: bool = _help(
        "Linux (glibc): keep memory the process frees for reuse instead of handing it back to the "
        "OS, so each step's activations are not page-faulted in anew (much faster on CPU); the "
        "process keeps its peak resident size. Process-wide, until it exits.",
        True,
    )
    gradient_checkpointing: bool = _help(
        "Keep only each decoder layer's input for the backward pass and recompute the rest "
        "(transformers' gradient checkpointing, non-reentrant): the activations of a step shrink "
        "from gigabytes to one layer's worth, for one more forward pass of compute. The same "
        "loss and gradients either way.",
        True,
    )
    save_model: bool = _help("Save the trained model and tokenizer to the output dir.", True)

    def __post_init__(self) -> None:
        """Reject values that cannot train, early and by name."""
        positive = ("max_length", "batch_size", "gradient_accumulation_steps", "eval_batch_size")
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.model:
            raise ConfigError("model is required (a directory or a prepared name)")
        if self.epochs < 1 and self.max_steps <= 0:
            raise ConfigError("set epochs >= 1 or max_steps > 0")
        if self.padding_side not in ("right", "left"):
            raise ConfigError(f"padding_side must be right or left, got {self.padding_side!r}")
        if self.device != "auto" and not re.fullmatch(r"cpu|cuda(:\d+)?", self.device):
            raise ConfigError(f"device must be auto, cpu, cuda or cuda:N, got {self.device!r}")
        if self.precision not in ("auto", "bf16", "fp32"):
            raise ConfigError(f"precision must be auto, bf16 or fp32, got {self.precision!r}")
        if not 0.0 <= self.max_truncated_fraction <= 1.0:
            raise ConfigError("max_truncated_fraction must lie in [0, 1]")
        if self.method not in METHODS:
            raise ConfigError(f"method must be one of {METHODS}, got {self.method!r}")
        if self.loss_type not in LOSS_TYPES:
            raise ConfigError(f"loss_type must be one of {LOSS_TYPES}, got {self.loss_type!r}")
        if self.beta <= 0:
            raise ConfigError(f"beta must be > 0, got {self.beta}")
        if self.method == "dpo" and (self.save_steps > 0 or self.resume_from is not None):
            raise ConfigError("checkpoints and resuming are for sft runs only")
        if self.task_weights is not None and any(w < 0 for w in self.task_weights.values()):
            raise ConfigError("task weights must be >= 0")

    def to_dict(self) -> dict[str, Any]:
        """Return the config as plain JSON-ready data."""
        return dataclasses.asdict(self)


def config_hash(config: TrainConfig) -> str:
    """Return the sha256 of the config's canonical JSON (sorted keys, no whitespace).

    Args:
        config: The resolved config.

    Returns:
        A hex digest that changes whenever a field that can change the trained model changes
        (where outputs go, resuming and thread count do not).
    """
    data = {k: v for k, v in config.to_dict().items() if k not in UNHASHED_FIELDS}
    payload = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


def parse_task_weights(text: str) -> dict[str, float]:
    """Parse 'type=weight,type=weight' into a dict.

    Args:
        text: The flag's value.

    Returns:
        Task type -> weight.

    Raises:
        argparse.ArgumentTypeError: On a malformed pair or a non-numeric weight.
    """
    weights: dict[str, float] = {}
    for pair in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = pair.partition("=")
        try:
            weights[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not name.strip():
            raise argparse.ArgumentTypeError(f"expected TYPE=WEIGHT, got {pair!r}")
    return weights


def _parse_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _flag_kwargs(hint: Any) -> dict[str, Any]:
    """Map a field's type hint to argparse keyword arguments."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(hint) if a is not type(None)]
        return _flag_kwargs(inner[0])
    if hint is bool:
        return {"action": argparse.BooleanOptionalAction}
    if origin is Literal:
        return {"choices": list(typing.get_args(hint))}
    if origin is dict:
        return {"type": parse_task_weights}
    if origin is list:
        return {"type": _parse_list}
    return {"type": hint}


def build_arg_parser() -> argparse.ArgumentParser:
    """Build the CLI parser whose flags are exactly the fields of TrainConfig.

    Returns:
        A parser; `--model` is required, every other flag has the field's default.
    """
    parser = argparse.ArgumentParser(
        prog="python -m trainer", description="Supervised fine-tuning on an exported dataset."
    )
    hints = typing.get_type_hints(TrainConfig)
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        kwargs = _flag_kwargs(hints[f.name])
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            parser.add_argument(flag, dest=f.name, required=True, help=f.metadata["help"], **kwargs)
            continue
        # mypy cannot narrow the factory's MISSING away through the check above.
        factory: Callable[[], object] = f.default_factory  # type: ignore[assignment]
        default = f.default if f.default is not dataclasses.MISSING else factory()
        help_text = f"{f.metadata['help']} (default: {default})"
        parser.add_argument(flag, dest=f.name, default=default, help=help_text, **kwargs)
    return parser


def config_from_namespace(namespace: argparse.Namespace) -> TrainConfig:
    """Build a TrainConfig from parsed arguments, ignoring attributes that are not fields."""
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in vars(namespace).items() if k in names})


def config_from_args(argv: list[str]) -> TrainConfig:
    """Parse CLI arguments into a validated TrainConfig.

    Args:
        argv: Arguments without the program name, e.g. ["--model", "smollm2-135m"].

    Returns:
        The config.

    Raises:
        SystemExit: On unknown or malformed flags (argparse's behaviour).
        ConfigError: When the values parse but cannot train.
    """
    return config_from_namespace(build_arg_parser().parse_args(argv))


def config_from_dict(data: dict[str, Any]) -> TrainConfig:
    """Rebuild a TrainConfig from `to_dict()` output (e.g. from a training manifest)."""
    return TrainConfig(**data)
