"""The real consumers read an exported version as-is: HF `datasets` (JSON and Parquet) and TRL."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from service.export import ExportSpec, VersionInfo, create_version
from service.storage.db import Database
from tests.service.test_export import DATA_FILES, import_seeds, read_jsonl

MODEL_DIR = Path(__file__).resolve().parents[2] / "data" / "model-cache" / "smollm2-135m"


@pytest.fixture(scope="module")
def version(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> VersionInfo:
    """The default seed set exported once (SQLite), shared by the consumer tests."""
    root = tmp_path_factory.mktemp("consumers")
    shutil.copyfile(sqlite_template, root / "db.sqlite")
    database = Database(f"sqlite:///{root / 'db.sqlite'}")
    try:
        import_seeds(database)
        return create_version(
            database, dataset="seeds", spec=ExportSpec(validation_ratio=0.2), datasets_dir=root
        )
    finally:
        database.dispose()


def _load(kind: str, files: dict[str, str], cache: Path) -> Any:
    datasets = pytest.importorskip("datasets", reason="the dev extra's `datasets` is not installed")
    return datasets.load_dataset(kind, data_files=files, cache_dir=str(cache))


@pytest.mark.parametrize("fmt", ["messages", "alpaca"])
@pytest.mark.parametrize("ext", ["jsonl", "parquet"])
def test_datasets_loads_every_file(
    version: VersionInfo, fmt: str, ext: str, tmp_path: Path
) -> None:
    assert version.path is not None
    files = {s: str(version.path / f"{s}.{fmt}.{ext}") for s in ("train", "validation")}
    loaded = _load("json" if ext == "jsonl" else "parquet", files, tmp_path)
    for split in ("train", "validation"):
        expected = read_jsonl(version.path / f"{split}.{fmt}.jsonl")
        assert loaded[split].num_rows == len(expected) > 0
        assert loaded[split].to_list() == expected


def test_card_configs_name_the_files(version: VersionInfo) -> None:
    assert version.path is not None
    card = (version.path / "README.md").read_text()
    for name in DATA_FILES:
        assert f"path: {name}" in card
    manifest = json.loads((version.path / "manifest.json").read_text())
    assert manifest["counts"]["by_split"]["validation"]["examples"] > 0


@pytest.mark.slow
@pytest.mark.model
def test_trl_sft_trainer_takes_the_messages_file(version: VersionInfo, tmp_path: Path) -> None:
    if not (MODEL_DIR / "tokenizer.json").is_file():
        pytest.skip(f"the embedded model's tokenizer is not prepared under {MODEL_DIR}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    pytest.importorskip("trl", reason="the dev extra's `trl` is not installed")
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM
    from trl import SFTConfig, SFTTrainer

    assert version.path is not None
    files = {s: str(version.path / f"{s}.messages.jsonl") for s in ("train", "validation")}
    data = _load("json", files, tmp_path / "cache")
    tokenizer = AutoTokenizer.from_pretrained(MODEL_DIR, local_files_only=True)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
    )
    model = LlamaForCausalLM(config)
    args = SFTConfig(
        output_dir=str(tmp_path / "out"),
        max_length=256,
        per_device_train_batch_size=2,
        max_steps=2,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        dataloader_num_workers=0,
        disable_tqdm=True,
        seed=0,
    )
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=data["train"],
        eval_dataset=data["validation"],
        processing_class=tokenizer,
    )
    result = trainer.train()
    assert result.global_step == 2
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert len(losses) == 2 and all(loss > 0 for loss in losses)


def test_the_trainer_verifies_and_reads_the_version(version: VersionInfo) -> None:
    from trainer.dataset import load_dataset_version

    assert version.path is not None
    loaded = load_dataset_version(version.path)
    assert (loaded.name, loaded.version, loaded.content_hash) == (
        "seeds",
        1,
        version.content_hash,
    )
    counts = version.counts["by_split"]
    assert len(loaded.train) == counts["train"]["examples"]
    assert len(loaded.validation) == counts["validation"]["examples"]
