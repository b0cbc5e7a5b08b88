"""The training loop, top to bottom: prepare, evaluate at step 0, step, evaluate, checkpoint, save.

Loss is the token-level mean over the supervised tokens of a whole optimizer step: each
micro-batch contributes its summed loss divided by the step's supervised-token count, so packing,
padding and the gradient-accumulation split all give the same loss and gradients.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from trainer.checkpoint import LoopState, find_checkpoint, load_checkpoint, save_checkpoint
from trainer.config import TrainConfig, config_hash
from trainer.dataset import ExportedDataset, load_dataset_version
from trainer.manifest import build_manifest
from trainer.memory import keep_freed_memory
from trainer.modeling import (
    attention_kernel,
    autocast,
    load_model_and_tokenizer,
    model_device,
    resolve_model_dir,
    resolve_precision,
    supervised_loss_sum,
    verify_isolation,
)
from trainer.outputs import CONFIG_FILE, MANIFEST_FILE, METRICS_FILE, MetricsWriter, write_curve
from trainer.outputs import write_json as write_json_file
from trainer.packing import collate, pack_rows, packing_efficiency, single_rows
from trainer.sampling import EpochPlan, mixing_report, plan_epoch
from trainer.tokenization import ChatTokenizer, TokenizedExample, TokenizedSplit, tokenize_split


@dataclass
class TrainResult:
    """What a finished run hands back: where it wrote, its manifest and its final metrics."""

    output_dir: Path
    manifest: dict[str, Any]
    metrics: dict[str, Any]


@dataclass
class PreparedRun:
    """Everything resolved before the first step."""

    config: TrainConfig
    config_hash: str
    dataset: ExportedDataset
    model_dir: Path
    model: Any
    tokenizer: Any
    train_split: TokenizedSplit
    validation_split: TokenizedSplit
    precision: str
    output_dir: Path
    pad_id: int


def evaluate(
    model: Any,
    examples: Sequence[TokenizedExample],
    *,
    max_length: int,
    packing: bool,
    batch_size: int,
    pad_id: int,
    precision: str = "fp32",
) -> tuple[float, int]:
    """Token-level mean loss of the model over examples (no gradients).

    Returns:
        (mean loss, supervised-token count); (nan, 0) for no examples.
    """
    if not examples:
        return math.nan, 0
    rows = pack_rows(examples, max_length) if packing else single_rows(examples)
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(rows), batch_size):
            batch = collate(examples, rows[start : start + batch_size], pad_id=pad_id)
            with autocast(precision, model_device(model).type):
                total += float(supervised_loss_sum(model, batch))
            count += batch.n_supervised
    model.train(was_training)
    return total / count, count


def prepare_run(config: TrainConfig, dataset_dir: Path) -> PreparedRun:
    """Verify the data, load model and tokenizer, tokenize both splits, check packing isolation."""
    if config.num_threads > 0:
        torch.set_num_threads(config.num_threads)
    if config.keep_freed_memory:
        keep_freed_memory()
    dataset = load_dataset_version(Path(dataset_dir))
    torch.manual_seed(config.seed)
    random.seed(config.seed)
    model_dir = resolve_model_dir(config.model, config.model_cache_dir)
    model, tokenizer = load_model_and_tokenizer(model_dir, config)
    chat = ChatTokenizer(tokenizer)
    train_split, validation_split = (
        tokenize_split(
            chat,
            examples,
            max_length=config.max_length,
            max_truncated_fraction=config.max_truncated_fraction,
        )
        for examples in (dataset.train, dataset.validation)
    )
    if config.packing:
        verify_isolation(model, seed=config.seed)
    digest = config_hash(config)
    run_name = config.run_name or f"{dataset.name}-v{dataset.version}-{digest[:8]}"
    output_dir = Path(config.output_dir or Path("data") / "models" / run_name)
    output_dir.mkdir(parents=True, exist_ok=True)
    pad_id = (
        tokenizer.pad_token_id
        if tokenizer.pad_token_id is not None
        else (tokenizer.eos_token_id or 0)
    )
    return PreparedRun(
        config,
        digest,
        dataset,
        model_dir,
        model,
        tokenizer,
        train_split,
        validation_split,
        resolve_precision(config.precision, model_device(model)),
        output_dir,
        pad_id,
    )


def _plan(run: PreparedRun, epoch: int) -> EpochPlan:
    cfg = run.config
    return plan_epoch(
        run.train_split.examples,
        seed=cfg.seed,
        epoch=epoch,
        max_length=cfg.max_length,
        packing=cfg.packing,
        weights=cfg.task_weights,
    )


def _steps_in(plan: EpochPlan, config: TrainConfig) -> int:
    micro = math.ceil(len(plan.rows) / config.batch_size)
    return math.ceil(micro / config.gradient_accumulation_steps)


def lr_schedule(optimizer: torch.optim.Optimizer, config: TrainConfig, total: int) -> Any:
    """Linear warmup, then cosine decay to min_lr_ratio of the peak."""
    warmup, floor = config.warmup_steps, config.min_lr_ratio

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def apply_gradients(
    model: Any, optimizer: Any, scheduler: Any, max_grad_norm: float
) -> tuple[float, float]:
    """Clip the accumulated gradients, step optimizer and schedule, clear the gradients.

    Returns:
        The gradient norm before clipping and the learning rate the step used.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    max_norm = max_grad_norm if max_grad_norm > 0 else math.inf
    grad_norm = float(torch.nn.utils.clip_grad_norm_(params, max_norm))
    lr = scheduler.get_last_lr()[0]
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return grad_norm, lr


def _optimizer_step(
    run: PreparedRun, optimizer: Any, scheduler: Any, micro_rows: list[list[list[int]]]
) -> dict[str, Any]:
    """One optimizer step over a few micro-batches; returns the step's metrics."""
    cfg, examples = run.config, run.train_split.examples
    started = time.perf_counter()
    batches = [
        collate(examples, rows, pad_id=run.pad_id, padding_side=cfg.padding_side)
        for rows in micro_rows
    ]
    n_supervised = sum(b.n_supervised for b in batches)
    loss_total = 0.0
    for batch in batches:
        with autocast(run.precision, model_device(run.model).type):
            loss_sum = supervised_loss_sum(run.model, batch)
        (loss_sum / n_supervised).backward()
        loss_total += float(loss_sum.detach())
    grad_norm, lr = apply_gradients(run.model, optimizer, scheduler, cfg.max_grad_norm)
    elapsed = time.perf_counter() - started
    tokens = sum(b.n_real_tokens for b in batches)
    return {
        "loss": loss_total / n_supervised,
        "lr": lr,
        "grad_norm": grad_norm,
        "tokens": tokens,
        "slots": sum(b.n_slots for b in batches),
        "supervised_tokens": n_supervised,
        "step_seconds": elapsed,
        "tokens_per_s": tokens / elapsed if elapsed > 0 else 0.0,
    }


def _evaluate_into(run: PreparedRun, state: LoopState, writer: MetricsWriter) -> float:
    cfg = run.config
    loss, count = evaluate(
        run.model,
        run.validation_split.examples,
        max_length=cfg.max_length,
        packing=cfg.packing,
        batch_size=cfg.eval_batch_size,
        pad_id=run.pad_id,
        precision=run.precision,
    )
    if count:
        state.curve.append((state.step, loss))
        writer.write(
            {"type": "eval", "step": state.step, "val_loss": loss, "val_supervised_tokens": count}
        )
        if loss < state.best_val_loss - cfg.early_stopping_min_delta:
            state.best_val_loss, state.evals_without_improvement = loss, 0
        else:
            state.evals_without_improvement += 1
    return loss


def _data_record(run: PreparedRun, plan: EpochPlan, *, epoch: int, step: int) -> dict[str, Any]:
    examples = run.train_split.examples
    efficiency = (
        packing_efficiency(examples, plan.rows, run.config.max_length)
        if run.config.packing
        else None
    )
    return {
        "type": "data",
        "step": step,
        "epoch": epoch,
        "rows": len(plan.rows),
        "packing_efficiency": efficiency,
        "task_mix": mixing_report(examples, plan),
    }


class _Loop:
    """The loop's moving parts: optimizer, schedule, epoch plans, state and the metrics file."""

    def __init__(self, run: PreparedRun) -> None:
        self.run, cfg = run, run.config
        params = [p for p in run.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(
            params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay
        )
        self.plans: dict[int, EpochPlan] = {}
        self.total = (
            cfg.max_steps
            if cfg.max_steps > 0
            else sum(_steps_in(self.plan_of(e), cfg) for e in range(cfg.epochs))
        )
        self.scheduler = lr_schedule(self.optimizer, cfg, self.total)
        self.state = LoopState()
        resumed = cfg.resume_from is not None
        if resumed:
            path = find_checkpoint(run.output_dir, str(cfg.resume_from))
            self.state = load_checkpoint(
                path,
                model=run.model,
                optimizer=self.optimizer,
                scheduler=self.scheduler,
                config_hash=run.config_hash,
            )
        self.writer = MetricsWriter(
            run.output_dir / METRICS_FILE, keep_through_step=self.state.step if resumed else None
        )
        if not resumed:
            self.writer.write(_data_record(run, self.plan_of(0), epoch=0, step=0))
            _evaluate_into(run, self.state, self.writer)
        self.steps: list[dict[str, Any]] = []

    def plan_of(self, epoch: int) -> EpochPlan:
        """The epoch's plan, built once."""
        if epoch not in self.plans:
            self.plans[epoch] = _plan(self.run, epoch)
        return self.plans[epoch]

    def next_chunk(self) -> list[list[list[int]]]:
        """The micro-batches of the next optimizer step, moving to the next epoch as needed."""
        cfg, state = self.run.config, self.state
        micro = self.plan_of(state.epoch).micro_batches(cfg.batch_size)
        while state.cursor >= len(micro):
            state.epoch, state.cursor = state.epoch + 1, 0
            self.writer.write(
                _data_record(
                    self.run, self.plan_of(state.epoch), epoch=state.epoch, step=state.step
                )
            )
            micro = self.plan_of(state.epoch).micro_batches(cfg.batch_size)
        return micro[state.cursor : state.cursor + cfg.gradient_accumulation_steps]

    def step(self) -> bool:
        """Run one optimizer step and what follows it; False when early stopping says stop."""
        cfg, state = self.run.config, self.state
        chunk = self.next_chunk()
        record = _optimizer_step(self.run, self.optimizer, self.scheduler, chunk)
        state.cursor += len(chunk)
        state.step += 1
        state.tokens_seen += record["tokens"]
        state.supervised_seen += record["supervised_tokens"]
        record = {"type": "train", "step": state.step, "epoch": state.epoch} | record
        self.steps.append(record)
        if state.step % max(1, cfg.logging_steps) == 0 or state.step == self.total:
            self.writer.write(record)
        if cfg.eval_steps > 0 and state.step % cfg.eval_steps == 0:
            _evaluate_into(self.run, state, self.writer)
        if cfg.save_steps > 0 and state.step % cfg.save_steps == 0:
            save_checkpoint(
                self.run.output_dir,
                state,
                model=self.run.model,
                optimizer=self.optimizer,
                scheduler=self.scheduler,
                config_hash=self.run.config_hash,
            )
        patience = cfg.early_stopping_patience
        if patience > 0 and state.evals_without_improvement >= patience:
            self.writer.write(
                {"type": "early_stop", "step": state.step, "best_val_loss": state.best_val_loss}
            )
            return False
        return True


def run_loop(run: PreparedRun) -> tuple[LoopState, list[dict[str, Any]]]:
    """Train until max steps, the epochs run out, or early stopping; returns state and step logs."""
    run.model.train()
    loop = _Loop(run)
    while loop.state.step < loop.total and loop.step():
        pass
    state = loop.state
    if not state.curve or state.curve[-1][0] != state.step:
        _evaluate_into(run, state, loop.writer)
    return state, loop.steps


def _final_metrics(
    run: PreparedRun, state: LoopState, steps: list[dict[str, Any]]
) -> dict[str, Any]:
    seconds = sum(s["step_seconds"] for s in steps)
    return {
        "steps": state.step,
        "epochs_started": state.epoch + 1,
        "train_loss": steps[-1]["loss"] if steps else None,
        "val_loss": state.curve[-1][1] if state.curve else None,
        "initial_val_loss": state.curve[0][1] if state.curve else None,
        "best_val_loss": state.best_val_loss if state.curve else None,
        "tokens": state.tokens_seen,
        "supervised_tokens": state.supervised_seen,
        "tokens_per_s": sum(s["tokens"] for s in steps) / seconds if seconds else None,
        "precision": run.precision,
        "attention": attention_kernel(run.model),
    }


def train(config: TrainConfig, *, dataset_dir: Path) -> TrainResult:
    """Fine-tune a causal LM on an exported dataset version and write the model and its records.

    Args:
        config: The run's configuration.
        dataset_dir: The dataset version directory (`<datasets_dir>/<NAME>/v<N>/`).

    Returns:
        The output directory, the training manifest and the final metrics.

    Raises:
        DatasetIntegrityError: A file differs from the dataset's manifest.
        ChatTemplateError: The chat template cannot give exact assistant labels.
        TruncationError: Too many examples lost all supervision to truncation.
        PackingError: Packing was asked for but examples cannot be isolated.
        CheckpointError: --resume-from names no usable checkpoint.
        ConfigError: The model cannot be resolved.
    """
    run = prepare_run(config, dataset_dir)
    write_json_file(
        run.output_dir / CONFIG_FILE, config.to_dict() | {"config_hash": run.config_hash}
    )
    state, steps = run_loop(run)
    metrics = _final_metrics(run, state, steps)
    if state.curve:
        write_curve(run.output_dir, state.curve)
    if config.save_model:
        run.model.save_pretrained(run.output_dir)
        run.tokenizer.save_pretrained(run.output_dir)
    manifest = build_manifest(run, metrics)
    write_json_file(run.output_dir / MANIFEST_FILE, manifest)
    return TrainResult(output_dir=run.output_dir, manifest=manifest, metrics=metrics)
