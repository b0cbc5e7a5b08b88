"""Direct preference optimisation on a preference export: the same outputs as SFT, plus rewards.

DPO (Rafailov et al. 2023, *Direct Preference Optimization*) trains the policy pi on pairs
(prompt x, chosen y_w, rejected y_l) against a frozen reference pi_ref, here the starting model:

    h = [log pi(y_w|x) - log pi_ref(y_w|x)] - [log pi(y_l|x) - log pi_ref(y_l|x)]
    sigmoid: -log sigmoid(beta * h);  ipo: (h - 1/(2 beta))^2;  hinge: max(0, 1 - beta * h)

with log pi(y|x) the summed log-probability of the response's tokens (the assistant turn as the
chat template renders it, end-of-turn token included, exactly the tokens SFT supervises). The
implicit rewards are beta times each log-ratio; the reward margin is their difference and the
reward accuracy the share of pairs whose chosen reward is the higher.

The reference never changes, so its log-probabilities are computed once, before the first step,
in evaluation mode: no second copy of the model is kept in memory and no reference forward
runs per step (TRL's ``precompute_ref_log_probs``, here always on). Chosen and rejected
sequences of a micro-batch go through one forward, packed into rows with the same isolation as
SFT (``--packing``), and each sequence's log-probability is summed from its own tokens.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from dataformats.jsonl import iter_jsonl
from trainer.config import TrainConfig, config_hash
from trainer.dataset import ChatExample, sha256_file
from trainer.errors import ConfigError, DatasetIntegrityError
from trainer.loop import TrainResult, apply_gradients, lr_schedule
from trainer.manifest import base_model_record
from trainer.memory import keep_freed_memory
from trainer.modeling import (
    attention_kernel,
    autocast,
    load_model_and_tokenizer,
    model_device,
    resolve_model_dir,
    resolve_precision,
    sequence_logps,
    verify_isolation,
)
from trainer.outputs import (
    CONFIG_FILE,
    MANIFEST_FILE,
    METRICS_FILE,
    MetricsWriter,
    code_version,
    template_hash,
    tokenizer_hash,
    write_curve,
    write_json,
)
from trainer.packing import collate, pack_rows, single_rows
from trainer.tokenization import ChatTokenizer, TokenizedExample, token_ids_hash

PAIR_FORM = "conversational"  # the export's message-list form: rendered by the chat template
SPLITS = ("train", "validation")
MANIFEST_VERSION = 1


@dataclass(frozen=True)
class TokenizedPair:
    """One pair: prompt+chosen and prompt+rejected, each with its assistant mask."""

    pair_id: str
    chosen: TokenizedExample
    rejected: TokenizedExample


@dataclass
class PreferenceSplit:
    """A split's kept pairs, the ids dropped to truncation, and the reference log-probs."""

    pairs: list[TokenizedPair]
    dropped_ids: list[str]
    n_input: int
    reference: torch.Tensor | None = None  # (n, 2): chosen, rejected

    def report(self) -> dict[str, Any]:
        """Counts for the manifest."""
        examples = [e for p in self.pairs for e in (p.chosen, p.rejected)]
        return {
            "pairs_in": self.n_input,
            "pairs": len(self.pairs),
            "dropped": len(self.dropped_ids),
            "tokens": sum(len(e.input_ids) for e in examples),
            "token_ids_hash": token_ids_hash(examples),
        }


def load_pairs(directory: Path) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """Read a preference export's conversational splits after checking every file's sha256.

    Returns:
        The export's manifest and the rows of each split.

    Raises:
        DatasetIntegrityError: no manifest, a file missing, or a file that differs from it.
    """
    manifest_path = directory / "manifest.json"
    if not manifest_path.is_file():
        raise DatasetIntegrityError(
            f"{directory}: no manifest.json (instructforge export-preference)"
        )

    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    rows: dict[str, list[dict[str, Any]]] = {}
    for split in SPLITS:
        name = f"{PAIR_FORM}/{split}.jsonl"
        entry = manifest.get("files", {}).get(name)
        path = directory / name
        if entry is None or not path.is_file():
            raise DatasetIntegrityError(f"{directory}: {name} is missing")
        if sha256_file(path) != entry["sha256"]:
            raise DatasetIntegrityError(f"{path}: sha256 differs from the manifest's")
        rows[split] = [row for _, row in iter_jsonl(path)]
    return manifest, rows


def tokenize_pairs(
    chat: ChatTokenizer, rows: Sequence[dict[str, Any]], *, max_length: int
) -> PreferenceSplit:
    """Render each pair's two conversations, truncate to ``max_length``, drop the unlearnable.

    A pair is dropped when either side keeps no response token after truncation.
    """
    split = PreferenceSplit(pairs=[], dropped_ids=[], n_input=len(rows))
    for n, row in enumerate(rows):
        pair_id = str(row.get("comparison_id", n))
        sides = []
        for side in ("chosen", "rejected"):
            example = ChatExample(
                f"{pair_id}:{side}", str(row.get("task_id", "")), "preference",
                [*row["prompt"], *row[side]],
            )  # fmt: skip
            tokenized = chat.tokenize(example)
            if len(tokenized.input_ids) > max_length:
                tokenized = TokenizedExample(
                    tokenized.example_id,
                    tokenized.task_type,
                    tokenized.input_ids[:max_length],
                    tokenized.assistant_mask[:max_length],
                )
            sides.append(tokenized)
        if any(s.n_supervised == 0 for s in sides):
            split.dropped_ids.append(pair_id)
            continue
        split.pairs.append(TokenizedPair(pair_id, sides[0], sides[1]))
    return split


def dpo_loss(
    policy: torch.Tensor, reference: torch.Tensor, *, beta: float, loss_type: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-pair DPO losses and the chosen and rejected implicit rewards.

    Args:
        policy: (n, 2) summed log-probabilities of chosen and rejected under the policy.
        reference: the same under the reference model.
        beta: the config's beta (> 0).
        loss_type: sigmoid, ipo or hinge.

    Returns:
        (losses, chosen rewards, rejected rewards), each (n,).
    """
    ratios = policy - reference
    margin = ratios[:, 0] - ratios[:, 1]
    if loss_type == "sigmoid":
        losses = -F.logsigmoid(beta * margin)
    elif loss_type == "ipo":
        losses = (margin - 1 / (2 * beta)) ** 2
    else:
        losses = torch.relu(1 - beta * margin)
    rewards = beta * ratios.detach()
    return losses, rewards[:, 0], rewards[:, 1]


def pair_logps(
    model: Any, pairs: Sequence[TokenizedPair], *, packing: bool, max_length: int, pad_id: int
) -> torch.Tensor:
    """(n, 2) summed response log-probabilities of each pair's chosen and rejected, one forward."""
    examples = [p.chosen for p in pairs] + [p.rejected for p in pairs]
    rows = pack_rows(examples, max_length) if packing else single_rows(examples)
    batch = collate(examples, rows, pad_id=pad_id)
    logps = sequence_logps(model, batch, rows, len(examples))
    return torch.stack([logps[: len(pairs)], logps[len(pairs) :]], dim=1)


@dataclass
class _Run:
    config: TrainConfig
    model: Any
    tokenizer: Any
    model_dir: Path
    precision: str
    pad_id: int
    train: PreferenceSplit
    validation: PreferenceSplit
    manifest: dict[str, Any]
    output_dir: Path
    config_hash: str
    reference_seconds: float = 0.0  # the one pass of the starting model over every pair


def _logps(run: _Run, pairs: Sequence[TokenizedPair]) -> torch.Tensor:
    with autocast(run.precision, model_device(run.model).type):
        return pair_logps(
            run.model,
            pairs,
            packing=run.config.packing,
            max_length=run.config.max_length,
            pad_id=run.pad_id,
        )


def _reference(run: _Run, split: PreferenceSplit) -> torch.Tensor:
    """The starting model's log-probs of every pair, in evaluation mode (the frozen reference)."""
    size = run.config.eval_batch_size
    out = []
    run.model.eval()
    with torch.no_grad():
        for start in range(0, len(split.pairs), size):
            out.append(_logps(run, split.pairs[start : start + size]).cpu())
    run.model.train()
    return torch.cat(out) if out else torch.zeros(0, 2)


def evaluate_pairs(run: _Run, split: PreferenceSplit) -> dict[str, float]:
    """Mean loss, rewards, reward margin and reward accuracy over a split (no gradients)."""
    if not split.pairs or split.reference is None:
        nan = math.nan
        return {"loss": nan, "reward_margin": nan, "reward_accuracy": nan}
    size, cfg = run.config.eval_batch_size, run.config
    losses, chosen, rejected = [], [], []
    run.model.eval()
    with torch.no_grad():
        for start in range(0, len(split.pairs), size):
            policy = _logps(run, split.pairs[start : start + size]).cpu()
            ref = split.reference[start : start + size]
            loss, rc, rr = dpo_loss(policy, ref, beta=cfg.beta, loss_type=cfg.loss_type)
            losses.append(loss)
            chosen.append(rc)
            rejected.append(rr)
    run.model.train()
    return _summary(torch.cat(losses), torch.cat(chosen), torch.cat(rejected))


def _summary(
    losses: torch.Tensor, chosen: torch.Tensor, rejected: torch.Tensor
) -> dict[str, float]:
    return {
        "loss": float(losses.mean()),
        "reward_chosen": float(chosen.mean()),
        "reward_rejected": float(rejected.mean()),
        "reward_margin": float((chosen - rejected).mean()),
        "reward_accuracy": float((chosen > rejected).float().mean()),
    }


def prepare(config: TrainConfig, pairs_dir: Path) -> _Run:
    """Verify and tokenize the pairs, load the model, compute the reference log-probs."""
    if config.num_threads > 0:
        torch.set_num_threads(config.num_threads)
    if config.keep_freed_memory:
        keep_freed_memory()
    manifest, rows = load_pairs(Path(pairs_dir))
    torch.manual_seed(config.seed)
    random.seed(config.seed)
    model_dir = resolve_model_dir(config.model, config.model_cache_dir)
    model, tokenizer = load_model_and_tokenizer(model_dir, config)
    chat = ChatTokenizer(tokenizer)
    train, validation = (
        tokenize_pairs(chat, rows[s], max_length=config.max_length) for s in SPLITS
    )
    if not train.pairs:
        raise DatasetIntegrityError(f"{pairs_dir}: no training pair left to learn from")
    if config.packing:
        verify_isolation(model, seed=config.seed)
    digest = config_hash(config)
    run_name = config.run_name or f"dpo-run{manifest.get('run_id', 'x')}-{digest[:8]}"
    output_dir = Path(config.output_dir or Path("data") / "models" / run_name)
    output_dir.mkdir(parents=True, exist_ok=True)
    pad_id = tokenizer.pad_token_id
    pad_id = pad_id if pad_id is not None else (tokenizer.eos_token_id or 0)
    run = _Run(
        config, model, tokenizer, model_dir,
        resolve_precision(config.precision, model_device(model)), pad_id, train, validation,
        manifest, output_dir, digest,
    )  # fmt: skip
    started = time.perf_counter()
    train.reference = _reference(run, train)
    validation.reference = _reference(run, validation)
    run.reference_seconds = time.perf_counter() - started
    return run


def _total_steps(config: TrainConfig, n_pairs: int) -> int:
    if config.max_steps > 0:
        return config.max_steps
    per_step = config.batch_size * config.gradient_accumulation_steps
    return config.epochs * math.ceil(n_pairs / per_step)


def _order(n: int, seed: int, epoch: int) -> list[int]:
    order = list(range(n))
    random.Random(seed * 1_000_003 + epoch).shuffle(order)
    return order


def _step(run: _Run, optimizer: Any, scheduler: Any, chunks: list[list[int]]) -> dict[str, Any]:
    """One optimizer step over micro-batches of pair indexes; the loss is the pairs' mean."""
    cfg, split = run.config, run.train
    assert split.reference is not None
    started = time.perf_counter()
    n_pairs = sum(len(c) for c in chunks)
    losses, chosen, rejected = [], [], []
    tokens = 0
    for chunk in chunks:
        pairs = [split.pairs[i] for i in chunk]
        policy = _logps(run, pairs)
        ref = split.reference[chunk].to(policy.device)
        loss, rc, rr = dpo_loss(policy, ref, beta=cfg.beta, loss_type=cfg.loss_type)
        (loss.sum() / n_pairs).backward()
        losses.append(loss.detach().cpu())
        chosen.append(rc.cpu())
        rejected.append(rr.cpu())
        tokens += sum(len(p.chosen.input_ids) + len(p.rejected.input_ids) for p in pairs)
    grad_norm, lr = apply_gradients(run.model, optimizer, scheduler, cfg.max_grad_norm)
    elapsed = time.perf_counter() - started
    summary = _summary(torch.cat(losses), torch.cat(chosen), torch.cat(rejected))
    return summary | {
        "lr": lr,
        "grad_norm": grad_norm,
        "pairs": n_pairs,
        "tokens": tokens,
        "step_seconds": elapsed,
        "tokens_per_s": tokens / elapsed if elapsed > 0 else 0.0,
    }


def run_dpo(run: _Run) -> tuple[list[dict[str, Any]], list[tuple[int, dict[str, float]]]]:
    """Train; returns the step records and the validation evaluations (step, figures)."""
    cfg = run.config
    writer = MetricsWriter(run.output_dir / METRICS_FILE)
    params = [p for p in run.model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    total = _total_steps(cfg, len(run.train.pairs))
    scheduler = lr_schedule(optimizer, cfg, total)
    evaluations: list[tuple[int, dict[str, float]]] = []

    def evaluate(step: int) -> None:
        figures = evaluate_pairs(run, run.validation)
        evaluations.append((step, figures))
        writer.write({"type": "eval", "step": step, **{f"val_{k}": v for k, v in figures.items()}})

    evaluate(0)
    steps: list[dict[str, Any]] = []
    epoch, queue = 0, _order(len(run.train.pairs), cfg.seed, 0)
    run.model.train()
    for step in range(1, total + 1):
        chunks = []
        for _ in range(cfg.gradient_accumulation_steps):
            if not queue:
                epoch += 1
                queue = _order(len(run.train.pairs), cfg.seed, epoch)
            chunks.append(queue[: cfg.batch_size])
            queue = queue[cfg.batch_size :]
        record = {
            "type": "train",
            "step": step,
            "epoch": epoch,
            **_step(run, optimizer, scheduler, chunks),
        }
        steps.append(record)
        if step % max(cfg.logging_steps, 1) == 0:
            writer.write(record)
        if cfg.eval_steps > 0 and step % cfg.eval_steps == 0:
            evaluate(step)
    if evaluations[-1][0] != total:
        evaluate(total)
    return steps, evaluations


def train_dpo(config: TrainConfig, *, pairs_dir: Path) -> TrainResult:
    """Train with DPO on a preference export and write the model and its records.

    Args:
        config: The run's configuration (``method`` dpo; ``beta``, ``loss_type``).
        pairs_dir: The directory ``instructforge export-preference`` wrote.

    Returns:
        The output directory, the training manifest and the final metrics (``val_loss``,
        ``val_reward_margin``, ``val_reward_accuracy`` ... on the validation split).

    Raises:
        DatasetIntegrityError: a file is missing or differs from the export's manifest.
        ChatTemplateError: the chat template cannot label a response exactly.
        PackingError: packing was asked for but sequences cannot be isolated.
        ConfigError: the model cannot be resolved.
    """
    if config.method != "dpo":
        raise ConfigError(f"train_dpo needs method dpo, got {config.method!r}")
    run = prepare(config, pairs_dir)
    write_json(run.output_dir / CONFIG_FILE, config.to_dict() | {"config_hash": run.config_hash})
    steps, evaluations = run_dpo(run)
    seconds = sum(s["step_seconds"] for s in steps)
    first, last = evaluations[0][1], evaluations[-1][1]
    metrics = {
        "steps": len(steps),
        "train_loss": steps[-1]["loss"] if steps else None,
        "initial_val_loss": first["loss"],
        **{f"val_{k}": v for k, v in last.items()},
        "tokens": sum(s["tokens"] for s in steps),
        "tokens_per_s": sum(s["tokens"] for s in steps) / seconds if seconds else None,
        "reference_seconds": run.reference_seconds,
        "precision": run.precision,
        "attention": attention_kernel(run.model),
    }
    write_curve(run.output_dir, [(step, f["loss"]) for step, f in evaluations])
    if config.save_model:
        run.model.save_pretrained(run.output_dir)
        run.tokenizer.save_pretrained(run.output_dir)
    manifest = _manifest(run, metrics, pairs_dir)
    write_json(run.output_dir / MANIFEST_FILE, manifest)
    return TrainResult(output_dir=run.output_dir, manifest=manifest, metrics=metrics)


def _manifest(run: _Run, metrics: dict[str, Any], pairs_dir: Path) -> dict[str, Any]:
    cfg = run.config
    files = run.manifest.get("files", {})
    return {
        "manifest_version": MANIFEST_VERSION,
        "method": "dpo",
        "dataset": {
            "preference_run": run.manifest.get("run_id"),
            "path": str(Path(pairs_dir).resolve()),
            "files": {name: entry.get("sha256") for name, entry in sorted(files.items())},
            "judge_models": run.manifest.get("judge_models"),
        },
        "template_hash": template_hash(run.tokenizer),
        "tokenizer_hash": tokenizer_hash(run.tokenizer),
        "base_model": base_model_record(cfg.model, run.model_dir),
        "reference_model": "base_model",
        "config": cfg.to_dict(),
        "config_hash": run.config_hash,
        "seed": cfg.seed,
        "code_version": code_version(),
        "precision": run.precision,
        "data": {"train": run.train.report(), "validation": run.validation.report()},
        "outputs": {
            "model_dir": str(run.output_dir.resolve()),
            "model_saved": cfg.save_model,
            "lora_adapter": cfg.lora,
        },
        "final_metrics": metrics,
    }
