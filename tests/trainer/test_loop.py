"""End-to-end runs of the training loop on the tiny model: outputs, resume, manifest, learning."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from dataformats.jsonl import read_jsonl
from tests.trainer.builders import chat_row, write_dataset_version
from tests.trainer.test_data import as_example
from trainer.__main__ import main
from trainer.config import TrainConfig, config_from_dict, config_hash
from trainer.errors import DatasetIntegrityError
from trainer.loop import evaluate, train
from trainer.manifest import retokenize_from_manifest
from trainer.sampling import mixing_report, plan_epoch
from trainer.tokenization import ChatTokenizer, token_ids_hash


def config(model_dir: Path, out: Path, **overrides: Any) -> TrainConfig:
    values: dict[str, Any] = {
        "model": str(model_dir),
        "output_dir": str(out),
        "max_length": 64,
        "batch_size": 2,
        "max_steps": 4,
        "eval_steps": 2,
        "learning_rate": 1e-3,
        "precision": "fp32",
    }
    return TrainConfig(**(values | overrides))


def records(out: Path, kind: str) -> list[dict[str, Any]]:
    return [r for _, r in read_jsonl(out / "metrics.jsonl") if r["type"] == kind]


def test_run_writes_model_metrics_curve_and_manifest(
    model_dir: Path, dataset_dir: Path, tmp_path: Path
) -> None:
    result = train(config(model_dir, tmp_path / "out"), dataset_dir=dataset_dir)
    out = result.output_dir
    for name in (
        "model.safetensors",
        "tokenizer.json",
        "metrics.jsonl",
        "validation_curve.csv",
        "validation_curve.png",
        "training_manifest.json",
        "train_config.json",
    ):
        assert (out / name).is_file(), name
    assert (out / "validation_curve.png").read_bytes()[:4] == b"\x89PNG"
    manifest = result.manifest
    assert manifest["dataset"]["name"] == "toy" and manifest["dataset"]["version"] == 1
    for key in ("template_hash", "tokenizer_hash", "config_hash", "code_version", "seed"):
        assert manifest[key] is not None
    assert len(manifest["base_model"]["hash"]) == 64
    assert [r["step"] for r in records(out, "eval")] == [0, 2, 4]
    assert result.metrics["steps"] == 4
    assert result.metrics["attention"] == "sdpa_varlen"  # auto, packing on
    data = records(out, "data")[0]
    assert 0 < data["packing_efficiency"] <= 1
    assert set(data["task_mix"]) == {"classification", "generation"}


def test_step0_eval_equals_an_independent_computation(
    model_dir: Path, dataset_dir: Path, tmp_path: Path, tokenizer: Any, rows: list
) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    result = train(config(model_dir, tmp_path / "out", max_steps=1), dataset_dir=dataset_dir)
    reported = records(result.output_dir, "eval")[0]
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    chat, total, count = ChatTokenizer(tokenizer), 0.0, 0
    for row in rows[:4]:  # the validation split
        example = chat.tokenize(as_example(row))
        with torch.no_grad():
            loss = model(
                torch.tensor([example.input_ids]), labels=torch.tensor([example.labels])
            ).loss
        total, count = total + float(loss) * example.n_supervised, count + example.n_supervised
    assert reported["step"] == 0
    assert reported["val_loss"] == pytest.approx(total / count, abs=1e-5)


@pytest.mark.parametrize(
    ("left", "right"),
    [
        (
            {"batch_size": 8, "gradient_accumulation_steps": 1},
            {"batch_size": 1, "gradient_accumulation_steps": 8},
        ),
        ({"padding_side": "left"}, {"padding_side": "right"}),
        ({"packing": True, "batch_size": 8}, {"packing": False, "batch_size": 8}),
    ],
    ids=["8x1-vs-1x8", "left-vs-right-padding", "packed-vs-padded"],
)
def test_step_losses_do_not_depend_on_layout(
    model_dir: Path, tmp_path: Path, rows: list, left: dict, right: dict
) -> None:
    dataset = write_dataset_version(tmp_path / "ds", "eight", 1, rows[:8], rows[:4])
    runs = []
    for name, overrides in (("a", left), ("b", right)):
        cfg = config(model_dir, tmp_path / name, max_steps=1, eval_steps=1, packing=False)
        cfg = TrainConfig(**(cfg.to_dict() | overrides))
        runs.append(train(cfg, dataset_dir=dataset))
    if "packing" in left:  # auto attention: the varlen kernel packed, SDPA's padding mask padded
        assert [r.metrics["attention"] for r in runs] == ["sdpa_varlen", "sdpa"]
    a, b = (records(r.output_dir, "train")[0] for r in runs)
    assert a["loss"] == pytest.approx(b["loss"], abs=1e-5)
    assert a["grad_norm"] == pytest.approx(b["grad_norm"], rel=1e-4)
    assert a["supervised_tokens"] == b["supervised_tokens"]
    after = [records(r.output_dir, "eval")[-1]["val_loss"] for r in runs]
    assert after[0] == pytest.approx(after[1], abs=1e-4)


def test_resume_mid_epoch_equals_an_uninterrupted_run(
    model_dir: Path, dataset_dir: Path, tmp_path: Path
) -> None:
    # Padded rows: 12 rows / 2 per batch = 6 steps per epoch, so step 3 is mid-epoch and
    # the run crosses into the second epoch.
    base = config(
        model_dir, tmp_path / "full", max_steps=8, save_steps=3, packing=False, eval_steps=4
    )
    full = train(base, dataset_dir=dataset_dir)
    checkpoint = full.output_dir / "checkpoints" / "step-00000003"
    resumed_cfg = TrainConfig(
        **(
            base.to_dict()
            | {"output_dir": str(tmp_path / "resumed"), "resume_from": str(checkpoint)}
        )
    )
    resumed = train(resumed_cfg, dataset_dir=dataset_dir)
    expected = [r["loss"] for r in records(full.output_dir, "train")[3:]]
    got = [r["loss"] for r in records(resumed.output_dir, "train")]
    assert len(got) == 5
    assert got == pytest.approx(expected, abs=1e-6)
    assert resumed.metrics["val_loss"] == pytest.approx(full.metrics["val_loss"], abs=1e-6)
    assert resumed.manifest["config_hash"] == full.manifest["config_hash"]


def test_manifest_round_trips(model_dir: Path, dataset_dir: Path, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    result = train(config(model_dir, tmp_path / "out", max_steps=1), dataset_dir=dataset_dir)
    manifest = json.loads((result.output_dir / "training_manifest.json").read_text())
    assert config_hash(config_from_dict(manifest["config"])) == manifest["config_hash"]
    tokenizer = AutoTokenizer.from_pretrained(result.output_dir)
    split = retokenize_from_manifest(manifest, tokenizer=tokenizer)
    assert token_ids_hash(split.examples) == manifest["data"]["train"]["token_ids_hash"]


def test_tiny_model_learns_the_toy_task(model_dir: Path, dataset_dir: Path, tmp_path: Path) -> None:
    # CPU time, not wall time: the machine is shared, and waiting for a core is not our cost.
    started = time.process_time()
    cfg = config(
        model_dir,
        tmp_path / "out",
        max_steps=120,
        eval_steps=40,
        learning_rate=1e-2,
        warmup_steps=5,
        max_grad_norm=1.0,
        save_model=False,
    )
    result = train(cfg, dataset_dir=dataset_dir)
    assert result.metrics["initial_val_loss"] > 3.0
    assert result.metrics["val_loss"] < 0.05
    assert time.process_time() - started < 60  # ~1 s unloaded; OpenMP spin under load


def test_early_stopping(model_dir: Path, dataset_dir: Path, tmp_path: Path) -> None:
    cfg = config(
        model_dir,
        tmp_path / "out",
        max_steps=10,
        eval_steps=1,
        early_stopping_patience=2,
        early_stopping_min_delta=100.0,
        save_model=False,
    )
    result = train(cfg, dataset_dir=dataset_dir)
    assert result.metrics["steps"] == 2
    assert records(result.output_dir, "early_stop")[0]["step"] == 2


def test_task_weights_set_the_sampled_shares(tokenizer: Any) -> None:
    chat = ChatTokenizer(tokenizer)
    rows = [
        chat_row(i, f"Echo {i}", f"{i} {i}", task_type="classification" if i % 4 else "generation")
        for i in range(400)
    ]
    examples = [chat.tokenize(as_example(r)) for r in rows]
    plan = plan_epoch(
        examples,
        seed=0,
        epoch=0,
        max_length=64,
        packing=True,
        weights={"classification": 1.0, "generation": 3.0},
    )
    report = mixing_report(examples, plan)
    assert report["generation"]["share"] == pytest.approx(0.75, abs=0.06)
    assert report["generation"]["supervised_tokens"] > 0


def test_cli_runs_and_refuses_tampered_data(
    model_dir: Path, dataset_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "--dataset-dir",
        str(dataset_dir),
        "--model",
        str(model_dir),
        "--output-dir",
        str(tmp_path / "cli"),
        "--max-steps",
        "1",
        "--max-length",
        "64",
        "--precision",
        "fp32",
        "--no-save-model",
    ]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["metrics"]["steps"] == 1
    (dataset_dir / "train.messages.jsonl").write_text("{}\n")
    assert main(argv) == 2
    assert "DatasetIntegrityError" in capsys.readouterr().err
    with pytest.raises(DatasetIntegrityError):
        train(config(model_dir, tmp_path / "x"), dataset_dir=dataset_dir)


def test_lora_trains_adapters_only(model_dir: Path, dataset_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("peft", reason="LoRA needs peft")
    result = train(
        config(
            model_dir,
            tmp_path / "lora",
            max_steps=2,
            lora=True,
            lora_target_modules=["q_proj", "v_proj"],
        ),
        dataset_dir=dataset_dir,
    )
    assert (result.output_dir / "adapter_config.json").is_file()
    assert result.manifest["outputs"]["lora_adapter"] is True


def test_evaluate_is_the_same_packed_or_padded(model_dir: Path, tokenizer: Any, rows: list) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    chat = ChatTokenizer(tokenizer)
    examples = [chat.tokenize(as_example(r)) for r in rows]
    packed = evaluate(model, examples, max_length=64, packing=True, batch_size=2, pad_id=3)
    padded = evaluate(model, examples, max_length=64, packing=False, batch_size=5, pad_id=3)
    assert packed[1] == padded[1]
    assert packed[0] == pytest.approx(padded[0], abs=1e-5)
