"""Preference rows in both of TRL's forms: their shape, and DPOTrainer training on them as
written (JSONL through `datasets`, untouched) for two steps on the embedded model, on CPU."""

from __future__ import annotations

from pathlib import Path

import pytest

from dataformats.jsonl import write_jsonl
from dataformats.preference import preference_record
from tests.conftest import TRL_SMOKE_ARGS

PAIRS = [
    ("Name a fruit.", "An apple is a fruit.", "I cannot say."),
    ("What is 2 + 3?", "2 + 3 = 5.", "2 + 3 = 6."),
    ("Translate 'bonjour' into English.", "Hello.", "Goodbye."),
    ("Give an antonym of 'hot'.", "Cold.", "Warm and hot."),
]


def test_standard_and_conversational_shapes() -> None:
    row = preference_record("p", "c", "r", margin=2.0)
    assert row == {"prompt": "p", "chosen": "c", "rejected": "r", "margin": 2.0}
    conv = preference_record("p", "c", "r", conversational=True, system="Be brief.")
    assert conv["prompt"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "p"},
    ]
    assert conv["chosen"] == [{"role": "assistant", "content": "c"}]
    assert conv["rejected"] == [{"role": "assistant", "content": "r"}]
    assert preference_record("p", "c", "r", conversational=True)["prompt"] == [
        {"role": "user", "content": "p"}
    ]
    with pytest.raises(ValueError):
        preference_record("p", "c", "r", system="Be brief.")


def dpo_smoke(
    data_file: Path, model_dir: Path, tmp_path: Path, steps: int = 2
) -> list[dict[str, float]]:
    """``steps`` CPU steps of TRL's DPOTrainer on a JSONL file as written; the logged losses."""
    datasets = pytest.importorskip("datasets", reason="the dev extra's `datasets` is not installed")
    pytest.importorskip("trl", reason="the dev extra's `trl` is not installed")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    data = datasets.load_dataset("json", data_files=str(data_file), cache_dir=str(tmp_path / "c"))
    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(
        model_dir, local_files_only=True, dtype=torch.float32
    )
    args = DPOConfig(
        output_dir=str(tmp_path / "out"),
        beta=0.1,
        max_length=96,
        **{**TRL_SMOKE_ARGS, "max_steps": steps},
    )
    trainer = DPOTrainer(
        model=model, args=args, train_dataset=data["train"], processing_class=tokenizer
    )
    result = trainer.train()
    assert result.global_step == steps
    return [e for e in trainer.state.log_history if "loss" in e]


@pytest.mark.model
@pytest.mark.parametrize("conversational", [False, True])
def test_trl_dpo_trainer_trains_on_the_rows(
    conversational: bool, embedded_model_dir: Path, tmp_path: Path
) -> None:
    path = tmp_path / "train.jsonl"
    system = "You are a helpful assistant." if conversational else None
    write_jsonl(
        path,
        (
            preference_record(p, c, r, conversational=conversational, system=system, pair_id=i)
            for i, (p, c, r) in enumerate(PAIRS)
        ),
    )
    logged = dpo_smoke(path, embedded_model_dir, tmp_path)
    assert len(logged) == 2
    # The first step starts at the reference model: DPO's loss is log 2 there.
    assert logged[0]["loss"] == pytest.approx(0.6931, abs=0.01)
    assert all(0 < e["loss"] < 5 for e in logged)
