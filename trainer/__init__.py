"""Supervised fine-tuning on an exported instructforge dataset version.

Reads a dataset version directory (verifying every file's hash), trains with assistant-only,
packing-safe loss, and writes the model with a manifest naming exactly which data made it.
Heavy modules (torch, transformers) load only when `train` is called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from trainer.config import TrainConfig, build_arg_parser, config_from_args
from trainer.errors import TrainerError

if TYPE_CHECKING:
    from trainer.loop import TrainResult

__version__ = "0.1.0"
__all__ = [
    "TrainConfig",
    "TrainResult",
    "TrainerError",
    "build_arg_parser",
    "config_from_args",
    "train",
]


def train(config: TrainConfig, *, dataset_dir: Any) -> TrainResult:
    """Run a training job; see `trainer.loop.train`."""
    from trainer.loop import train as run_training

    return run_training(config, dataset_dir=dataset_dir)


def __getattr__(name: str) -> Any:
    if name == "TrainResult":
        from trainer.loop import TrainResult

        return TrainResult
    raise AttributeError(name)
