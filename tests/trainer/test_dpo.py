"""The DPO trainer: its loss against an independent computation, log 2 at the reference, outputs.

A tiny random Llama and tokenizer built on the spot (tests/trainer/conftest.py). The independent
computation runs each sequence alone through a plain forward with eager attention and sums the
response tokens' log-probabilities by hand; the trainer packs chosen and rejected sequences into
rows (varlen kernel) and credits each token to its sequence.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch

from dataformats.jsonl import read_jsonl, write_jsonl
from dataformats.preference import preference_record
from tests.trainer.builders import build_tiny_model
from tests.trainer.test_loop import config as sft_config
from tests.trainer.test_loss_invariants import load
from trainer.config import TrainConfig
from trainer.dpo import PreferenceSplit, dpo_loss, pair_logps, tokenize_pairs, train_dpo
from trainer.errors import ConfigError, DatasetIntegrityError
from trainer.tokenization import ChatTokenizer, TokenizedExample

BETA = 0.1


def _pairs(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Prompt of row i, its own answer chosen, the next row's answer rejected."""
    out = []
    for i, row in enumerate(rows):
        user, answer = row["messages"][0]["content"], row["messages"][1]["content"]
        other = rows[(i + 1) % len(rows)]["messages"][1]["content"]
        out.append(
            preference_record(user, answer, other, conversational=True, comparison_id=i, task_id=i)
        )
    return out


def write_pairs(directory: Path, rows: list[dict[str, Any]], *, seen: bool = False) -> Path:
    """A preference export as `instructforge export-preference` writes it (conversational).

    Four validation pairs, held out; with `seen` they are trained on too (a fit check).
    """
    pairs = _pairs(rows)
    splits = {"train": pairs if seen else pairs[4:], "validation": pairs[:4]}
    files = {}
    for split, split_rows in splits.items():
        path = directory / "conversational" / f"{split}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        count = write_jsonl(path, split_rows)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        files[f"conversational/{split}.jsonl"] = {"sha256": digest, "rows": count}
    manifest = {"run_id": 7, "judge_models": ["m"], "files": files}
    (directory / "manifest.json").write_text(json.dumps(manifest))
    return directory


def plain_logp(model: Any, example: TokenizedExample) -> float:
    """Sum of log p(token | prefix) over the response tokens, one sequence, a plain forward."""
    ids = torch.tensor([example.input_ids])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0].double()
    logps = torch.log_softmax(logits, dim=-1)
    total = 0.0
    for t in range(1, len(example.input_ids)):
        if example.assistant_mask[t]:
            total += float(logps[t - 1, example.input_ids[t]])
    return total


def hand_loss(h: float, loss_type: str) -> float:
    if loss_type == "sigmoid":
        return -math.log(1 / (1 + math.exp(-BETA * h)))
    if loss_type == "ipo":
        return (h - 1 / (2 * BETA)) ** 2
    return max(0.0, 1 - BETA * h)


@pytest.fixture
def split(tokenizer: Any, rows: list[dict[str, Any]]) -> PreferenceSplit:
    return tokenize_pairs(ChatTokenizer(tokenizer), _pairs(rows), max_length=64)


@pytest.mark.parametrize("loss_type", ["sigmoid", "ipo", "hinge"])
@pytest.mark.parametrize("packing", [True, False])
def test_loss_equals_an_independent_computation(
    loss_type: str,
    packing: bool,
    split: PreferenceSplit,
    tokenizer: Any,
    model_dir: Path,
    tmp_path: Path,
) -> None:
    reference = load(model_dir, "eager")
    policy_dir = build_tiny_model(tokenizer, tmp_path / "policy", seed=1)  # policy != reference
    policy_plain = load(policy_dir, "eager")
    policy = load(policy_dir, "sdpa_varlen" if packing else "sdpa")
    pairs = split.pairs[:5]
    with torch.no_grad():
        got_policy = pair_logps(policy, pairs, packing=packing, max_length=64, pad_id=0)
        got_reference = pair_logps(reference, pairs, packing=packing, max_length=64, pad_id=0)
    losses, chosen, rejected = dpo_loss(got_policy, got_reference, beta=BETA, loss_type=loss_type)
    for n, pair in enumerate(pairs):
        pc, pr = plain_logp(policy_plain, pair.chosen), plain_logp(policy_plain, pair.rejected)
        rc, rr = plain_logp(reference, pair.chosen), plain_logp(reference, pair.rejected)
        assert float(got_policy[n, 0]) == pytest.approx(pc, abs=1e-3)
        assert float(got_policy[n, 1]) == pytest.approx(pr, abs=1e-3)
        h = (pc - rc) - (pr - rr)
        assert float(losses[n]) == pytest.approx(hand_loss(h, loss_type), rel=1e-3, abs=1e-4)
        assert float(chosen[n]) == pytest.approx(BETA * (pc - rc), abs=1e-4)
        assert float(rejected[n]) == pytest.approx(BETA * (pr - rr), abs=1e-4)
    assert abs(float(losses.mean()) - math.log(2)) > 1e-3 or loss_type != "sigmoid"


def test_gradients_flow_only_through_the_policy(split: PreferenceSplit, model_dir: Path) -> None:
    policy = load(model_dir, "sdpa_varlen")
    pairs = split.pairs[:3]
    with torch.no_grad():
        reference = pair_logps(policy, pairs, packing=True, max_length=64, pad_id=0)
    logps = pair_logps(policy, pairs, packing=True, max_length=64, pad_id=0)
    losses, _, _ = dpo_loss(logps, reference, beta=BETA, loss_type="sigmoid")
    assert losses.detach().tolist() == pytest.approx([math.log(2)] * 3, abs=1e-5)
    losses.mean().backward()
    grads = [p.grad for p in policy.parameters() if p.grad is not None]
    # At the reference, d loss / d h = -beta/2: the gradient is that of the log-ratio margin.
    assert grads and any(float(g.abs().sum()) > 0 for g in grads)


def config(model_dir: Path, out: Path, **overrides: Any) -> TrainConfig:
    """The SFT tests' tiny config (4 steps, evaluations every 2), as a DPO run."""
    return sft_config(model_dir, out, **({"method": "dpo", "beta": BETA} | overrides))


def test_dpo_run_starts_at_log_2_and_writes_the_sft_outputs(
    model_dir: Path, rows: list[dict[str, Any]], tmp_path: Path
) -> None:
    pairs_dir = write_pairs(tmp_path / "pairs", rows)
    result = train_dpo(config(model_dir, tmp_path / "out"), pairs_dir=pairs_dir)
    out = result.output_dir
    for name in (
        "training_manifest.json",
        "config.json",
        "metrics.jsonl",
        "validation_curve.csv",
        "validation_curve.png",
        "model.safetensors",
    ):
        assert (out / name).is_file(), name
    records = [r for _, r in read_jsonl(out / "metrics.jsonl")]
    evals = [r for r in records if r["type"] == "eval"]
    trains = [r for r in records if r["type"] == "train"]
    # Policy == reference before the first update: every pair's loss is log 2, margins 0.
    assert evals[0]["step"] == 0
    assert evals[0]["val_loss"] == pytest.approx(math.log(2), abs=1e-5)
    assert evals[0]["val_reward_margin"] == pytest.approx(0.0, abs=1e-5)
    assert trains[0]["loss"] == pytest.approx(math.log(2), abs=1e-5)
    assert [r["step"] for r in evals] == [0, 2, 4] and len(trains) == 4
    assert evals[-1]["val_reward_margin"] != 0  # the policy moved away from the reference
    metrics = result.metrics
    assert metrics["steps"] == 4 and metrics["initial_val_loss"] == pytest.approx(math.log(2))
    assert 0 <= metrics["val_reward_accuracy"] <= 1 and metrics["tokens_per_s"] > 0
    manifest = json.loads((out / "training_manifest.json").read_text())
    assert manifest["method"] == "dpo" and manifest["reference_model"] == "base_model"
    assert manifest["dataset"]["preference_run"] == 7
    assert manifest["data"]["train"]["pairs"] == len(rows) - 4
    assert manifest["config"]["beta"] == BETA and manifest["config"]["loss_type"] == "sigmoid"
    curve = (out / "validation_curve.csv").read_text().splitlines()
    assert curve[0] == "step,val_loss" and len(curve) == 4


def test_dpo_fits_the_pairs_it_trains_on(
    model_dir: Path, rows: list[dict[str, Any]], tmp_path: Path
) -> None:
    pairs_dir = write_pairs(tmp_path / "pairs", rows, seen=True)
    cfg = config(model_dir, tmp_path / "out", max_steps=12, eval_steps=12, save_model=False)
    metrics = train_dpo(cfg, pairs_dir=pairs_dir).metrics
    # Chosen answers pulled up against the rejected ones: loss below log 2, margins positive.
    assert metrics["val_loss"] < math.log(2) and metrics["val_reward_margin"] > 0


def test_a_changed_pair_file_is_refused(
    model_dir: Path, rows: list[dict[str, Any]], tmp_path: Path
) -> None:
    pairs_dir = write_pairs(tmp_path / "pairs", rows)
    path = pairs_dir / "conversational" / "train.jsonl"
    path.write_text(path.read_text().replace("red", "blue", 1))
    with pytest.raises(DatasetIntegrityError):
        train_dpo(config(model_dir, tmp_path / "out"), pairs_dir=pairs_dir)


@pytest.mark.parametrize(
    "overrides",
    [
        {"method": "ppo"},
        {"loss_type": "kto"},
        {"beta": 0.0},
        {"method": "dpo", "save_steps": 5},
    ],
)
def test_bad_dpo_settings_are_refused(overrides: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        TrainConfig(model="m", **overrides)
