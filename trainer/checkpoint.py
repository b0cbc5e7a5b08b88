"""Resumable checkpoints: weights, optimizer, scheduler, RNG and the exact place in the epoch.

The epoch's row order is a pure function of (seed, epoch), so the data position is just
(epoch, micro-batch cursor); resuming rebuilds the plan and continues mid-epoch with the same
losses an uninterrupted run would have produced.
"""

from __future__ import annotations

import json
import math
import random
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from trainer.errors import CheckpointError

CHECKPOINTS_DIR = "checkpoints"
_STATE = "trainer_state.json"
_TENSORS = "training_state.pt"


@dataclass
class LoopState:
    """Where the loop is; everything here goes into a checkpoint."""

    step: int = 0
    epoch: int = 0
    cursor: int = 0
    best_val_loss: float = math.inf
    evals_without_improvement: int = 0
    curve: list[tuple[int, float]] = field(default_factory=list)
    tokens_seen: int = 0
    supervised_seen: int = 0


def save_checkpoint(
    output_dir: Path,
    state: LoopState,
    *,
    model: Any,
    optimizer: Any,
    scheduler: Any,
    config_hash: str,
) -> Path:
    """Write a checkpoint under output_dir/checkpoints/step-N (written aside, then renamed).

    Returns:
        The checkpoint directory.
    """
    root = output_dir / CHECKPOINTS_DIR
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{state.step:08d}"
    tmp = root / f".tmp-step-{state.step:08d}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    trainable = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    torch.save(
        {
            "trainable": trainable,
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "python_rng": random.getstate(),
        },
        tmp / _TENSORS,
    )
    payload = asdict(state) | {"config_hash": config_hash}
    (tmp / _STATE).write_text(json.dumps(payload, indent=2), encoding="utf-8")
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    return final


def find_checkpoint(output_dir: Path, resume_from: str) -> Path:
    """Resolve --resume-from: 'latest' under output_dir, or a checkpoint directory.

    Raises:
        CheckpointError: Nothing to resume from.
    """
    if resume_from != "latest":
        path = Path(resume_from)
        if not (path / _STATE).is_file():
            raise CheckpointError(f"{path} is not a checkpoint (no {_STATE})")
        return path
    candidates = sorted((output_dir / CHECKPOINTS_DIR).glob("step-*"))
    if not candidates:
        raise CheckpointError(f"no checkpoint under {output_dir / CHECKPOINTS_DIR}")
    return candidates[-1]


def load_checkpoint(
    path: Path, *, model: Any, optimizer: Any, scheduler: Any, config_hash: str
) -> LoopState:
    """Restore a checkpoint into the given objects.

    Raises:
        CheckpointError: The checkpoint was written with a different config.
    """
    payload = json.loads((path / _STATE).read_text(encoding="utf-8"))
    if payload.pop("config_hash") != config_hash:
        raise CheckpointError(f"{path} was written by a run with a different config")
    tensors = torch.load(path / _TENSORS, weights_only=False)
    parameters = dict(model.named_parameters())
    with torch.no_grad():
        for name, value in tensors["trainable"].items():
            parameters[name].copy_(value)
    optimizer.load_state_dict(tensors["optimizer"])
    scheduler.load_state_dict(tensors["scheduler"])
    torch.set_rng_state(tensors["torch_rng"])
    random.setstate(tensors["python_rng"])
    payload["curve"] = [tuple(point) for point in payload["curve"]]
    return LoopState(**payload)
