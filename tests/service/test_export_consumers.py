"""The real consumers read an exported version as-is: HF `datasets` (every config the card
declares, and every file with its builder) and TRL's SFTTrainer with assistant-only loss."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from service.export import ExportSpec, VersionInfo, create_version
from service.storage.db import Database
from tests.conftest import TRL_SMOKE_ARGS
from tests.service.test_export import DATA_FILES, import_seeds, read_jsonl

Exporter = Callable[[ExportSpec], VersionInfo]
# Specs whose cards differ: all formats, JSONL only, one format, an empty validation split.
SPECS = {
    "all": ExportSpec(validation_ratio=0.2),
    "jsonl": ExportSpec(validation_ratio=0.2, formats=["messages", "alpaca"]),
    "alpaca-parquet": ExportSpec(validation_ratio=0.2, formats=["alpaca", "parquet"]),
    "messages-jsonl": ExportSpec(validation_ratio=0.3, formats=["messages"]),
    "empty-validation": ExportSpec(validation_ratio=0.0),
    "empty-validation-jsonl": ExportSpec(validation_ratio=0.0, formats=["messages", "alpaca"]),
}


@pytest.fixture(scope="module")
def exporter(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Exporter:
    """Export the default seed set with a spec (SQLite, one database per export, cached)."""
    done: dict[str, VersionInfo] = {}

    def export(spec: ExportSpec) -> VersionInfo:
        key = spec.spec_hash()
        if key not in done:
            root = tmp_path_factory.mktemp("consumers")
            shutil.copyfile(sqlite_template, root / "db.sqlite")
            database = Database(f"sqlite:///{root / 'db.sqlite'}")
            try:
                import_seeds(database)
                done[key] = create_version(database, dataset="seeds", spec=spec, datasets_dir=root)
            finally:
                database.dispose()
        return done[key]

    return export


@pytest.fixture(scope="module")
def version(exporter: Exporter) -> VersionInfo:
    return exporter(SPECS["all"])


def _datasets() -> Any:
    return pytest.importorskip("datasets", reason="the dev extra's `datasets` is not installed")


def card_metadata(path: Path) -> dict[str, Any]:
    """The YAML front matter of a version's README.md, parsed."""
    text = (path / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n")
    meta = yaml.safe_load(text.split("---\n", 2)[1])
    assert isinstance(meta, dict)
    return meta


@pytest.mark.parametrize("fmt", ["messages", "alpaca"])
@pytest.mark.parametrize("ext", ["jsonl", "parquet"])
def test_datasets_loads_every_file(
    version: VersionInfo, fmt: str, ext: str, tmp_path: Path
) -> None:
    assert version.path is not None
    files = {s: str(version.path / f"{s}.{fmt}.{ext}") for s in ("train", "validation")}
    builder = "json" if ext == "jsonl" else "parquet"
    loaded = _datasets().load_dataset(builder, data_files=files, cache_dir=str(tmp_path))
    for split in ("train", "validation"):
        expected = read_jsonl(version.path / f"{split}.{fmt}.jsonl")
        assert loaded[split].num_rows == len(expected) > 0
        assert loaded[split].to_list() == expected


@pytest.mark.parametrize("spec", SPECS.values(), ids=SPECS.keys())
def test_every_config_the_card_declares_loads(
    exporter: Exporter, spec: ExportSpec, tmp_path: Path
) -> None:
    version = exporter(spec)
    assert version.path is not None
    configs = card_metadata(version.path)["configs"]
    assert [c["config_name"] for c in configs] == spec.text_formats()
    assert [c.get("default", False) for c in configs] == [True] + [False] * (len(configs) - 1)
    by_split = version.counts["by_split"]
    datasets = _datasets()
    for config in configs:
        loaded = datasets.load_dataset(
            str(version.path), config["config_name"], cache_dir=str(tmp_path / "cache")
        )
        declared = {entry["split"]: entry["path"] for entry in config["data_files"]}
        # Every split with examples, and only those: `datasets` builds no empty split.
        assert (
            sorted(loaded)
            == sorted(declared)
            == sorted(s for s in by_split if by_split[s]["examples"])
        )
        for split, name in declared.items():
            # The JSONL is the reference text: every config, of either file type, equals it.
            expected = read_jsonl(version.path / f"{split}.{config['config_name']}.jsonl")
            assert len(expected) == by_split[split]["examples"]
            assert loaded[split].to_list() == expected, name
    # No config name: the default one, which is the first.
    default = datasets.load_dataset(str(version.path), cache_dir=str(tmp_path / "cache"))
    first = configs[0]["config_name"]
    assert default["train"].to_list() == read_jsonl(version.path / f"train.{first}.jsonl")


def test_the_card_names_every_data_file(version: VersionInfo) -> None:
    assert version.path is not None
    card = (version.path / "README.md").read_text()
    manifest = json.loads((version.path / "manifest.json").read_text())
    data_files = sorted(set(manifest["files"]) - {"README.md"})
    assert data_files == sorted(DATA_FILES)
    for name in data_files:
        assert f"`{name}`" in card
    assert manifest["counts"]["by_split"]["validation"]["examples"] > 0


def _masked_spans(labels: list[int]) -> list[list[int]]:
    """Contiguous runs of supervised tokens (label != -100)."""
    spans: list[list[int]] = []
    previous = -100
    for label in labels:
        if label != -100:
            if previous == -100:
                spans.append([])
            spans[-1].append(label)
        previous = label
    return spans


def sft_assistant_only(
    version_dir: Path, model_dir: Path, tmp_path: Path, *, rows: int, max_length: int
) -> int:
    """Load `version_dir`'s `messages` config as `datasets` does, untouched, into TRL's
    SFTTrainer with assistant-only loss; check that exactly the assistant turns (each with its
    end-of-turn token, every one of them) are supervised, and train two CPU steps.

    Returns:
        How many of the first `rows` training rows fit `max_length` whole (the others are
        checked as a prefix of their replies).
    """
    pytest.importorskip("trl", reason="the dev extra's `trl` is not installed")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    data = _datasets().load_dataset(str(version_dir), "messages", cache_dir=str(tmp_path / "c"))
    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(
        model_dir, local_files_only=True, dtype=torch.float32
    )
    args = SFTConfig(
        output_dir=str(tmp_path / "out"),
        assistant_only_loss=True,
        max_length=max_length,
        **TRL_SMOKE_ARGS,
    )
    train = data["train"].select(range(min(rows, data["train"].num_rows)))
    trainer = SFTTrainer(model=model, args=args, train_dataset=train, processing_class=tokenizer)
    assert trainer.chat_template is None  # TRL took the model's own template: nothing patched

    tokenized = trainer.train_dataset
    assert len(tokenized) == len(train)
    whole = 0
    for row, example in zip(train, tokenized, strict=True):
        replies = [t["content"] + "<|im_end|>" for t in row["messages"] if t["role"] == "assistant"]
        supervised = [tokenizer.decode(span) for span in _masked_spans(example["labels"])]
        assert supervised, row["id"]  # never an example with nothing to learn
        if len(example["input_ids"]) < max_length:
            # Exactly the assistant turns and their end-of-turn token, nothing of the prompt.
            assert supervised == replies, row["id"]
            whole += 1
        else:  # truncated: the supervised text is the start of the replies
            assert "".join(replies).startswith("".join(supervised)), row["id"]

    result = trainer.train()
    assert result.global_step == 2
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert len(losses) == 2 and all(0 < loss < 20 for loss in losses)
    return whole


@pytest.mark.slow
@pytest.mark.model
def test_trl_sft_trainer_takes_the_messages_config_with_assistant_only_loss(
    version: VersionInfo, embedded_model_dir: Path, tmp_path: Path
) -> None:
    assert version.path is not None
    # 24 rows: enough shapes; the CPU is shared.
    whole = sft_assistant_only(version.path, embedded_model_dir, tmp_path, rows=24, max_length=192)
    assert whole >= 24 // 2


@pytest.mark.slow
@pytest.mark.model
def test_trl_sft_trainer_supervises_every_assistant_turn_of_a_multiturn_export(
    sqlite_template: Path, embedded_model_dir: Path, tmp_path: Path
) -> None:
    """A multiturn run's `messages` export (system prompt, 2-4 user turns): TRL supervises each
    assistant turn and no user or system text (issue 21)."""
    from tests.service.test_evol_pipeline import multiturn_run

    shutil.copyfile(sqlite_template, tmp_path / "db.sqlite")
    database = Database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    try:
        run_id = multiturn_run(database, "You are a careful assistant.")
        spec = ExportSpec(runs=[run_id], include_seeds=False, validation_ratio=0.0)
        version = create_version(database, dataset="talk", spec=spec, datasets_dir=tmp_path)
    finally:
        database.dispose()
    assert version.path is not None
    rows = read_jsonl(version.path / "train.messages.jsonl")
    assert rows and all([m["role"] for m in r["messages"]].count("assistant") >= 2 for r in rows)
    whole = sft_assistant_only(version.path, embedded_model_dir, tmp_path, rows=8, max_length=512)
    assert whole == min(8, len(rows))  # short scripted turns: every conversation whole


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
