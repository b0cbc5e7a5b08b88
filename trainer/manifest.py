"""training_manifest.json: which data, template, tokenizer, base model and config made a model.

The manifest carries enough to re-tokenize the training data and prove it: the dataset's content
hash, the config (max length), the tokenizer saved beside the model, and a hash of the token ids
that were trained on.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from trainer.config import config_from_dict
from trainer.dataset import load_dataset_version
from trainer.errors import DatasetIntegrityError
from trainer.outputs import code_version, model_files_hash, template_hash, tokenizer_hash
from trainer.packing import pack_rows, packing_efficiency
from trainer.tokenization import ChatTokenizer, TokenizedSplit, token_ids_hash, tokenize_split

if TYPE_CHECKING:
    from trainer.loop import PreparedRun

MANIFEST_VERSION = 1


def _split_record(split: TokenizedSplit, max_length: int, packing: bool) -> dict[str, Any]:
    record = split.report() | {"token_ids_hash": token_ids_hash(split.examples)}
    if packing and split.examples:
        rows = pack_rows(split.examples, max_length)
        record["packed_rows"] = len(rows)
        record["packing_efficiency"] = packing_efficiency(split.examples, rows, max_length)
    return record


def base_model_record(name: str, model_dir: Path) -> dict[str, Any]:
    """The starting model as the manifest names it: name, resolved path, files' hash."""
    return {"name": name, "path": str(model_dir.resolve()), "hash": model_files_hash(model_dir)}


def build_manifest(run: PreparedRun, metrics: dict[str, Any]) -> dict[str, Any]:
    """Assemble the training manifest for a finished run.

    Args:
        run: The prepared run (data, model, tokenizer, config).
        metrics: The final metrics.

    Returns:
        JSON-ready data for training_manifest.json.
    """
    cfg = run.config
    return {
        "manifest_version": MANIFEST_VERSION,
        "dataset": {
            "name": run.dataset.name,
            "version": run.dataset.version,
            "content_hash": run.dataset.content_hash,
            "spec_hash": run.dataset.manifest.get("spec_hash"),
            "path": str(run.dataset.path.resolve()),
        },
        "template_hash": template_hash(run.tokenizer),
        "tokenizer_hash": tokenizer_hash(run.tokenizer),
        "base_model": base_model_record(cfg.model, run.model_dir),
        "config": cfg.to_dict(),
        "config_hash": run.config_hash,
        "seed": cfg.seed,
        "code_version": code_version(),
        "precision": run.precision,
        "data": {
            "train": _split_record(run.train_split, cfg.max_length, cfg.packing),
            "validation": _split_record(run.validation_split, cfg.max_length, cfg.packing),
        },
        "outputs": {
            "model_dir": str(run.output_dir.resolve()),
            "model_saved": cfg.save_model,
            "lora_adapter": cfg.lora,
        },
        "final_metrics": metrics,
    }


def retokenize_from_manifest(
    manifest: dict[str, Any], *, tokenizer: Any, dataset_dir: Path | None = None
) -> TokenizedSplit:
    """Re-tokenize a run's training split from its manifest, checking the dataset first.

    Args:
        manifest: A training manifest.
        tokenizer: The tokenizer saved with the model (its hash must match the manifest's).
        dataset_dir: The dataset version; default the path recorded in the manifest.

    Returns:
        The re-tokenized training split; compare `token_ids_hash(split.examples)` with
        `manifest["data"]["train"]["token_ids_hash"]`.

    Raises:
        DatasetIntegrityError: The dataset or tokenizer is not the one the manifest names.
    """
    dataset = load_dataset_version(Path(dataset_dir or manifest["dataset"]["path"]))
    if dataset.content_hash != manifest["dataset"]["content_hash"]:
        raise DatasetIntegrityError("the dataset's content hash differs from the manifest's")
    if tokenizer_hash(tokenizer) != manifest["tokenizer_hash"]:
        raise DatasetIntegrityError("the tokenizer's hash differs from the manifest's")
    config = config_from_dict(manifest["config"])
    return tokenize_split(
        ChatTokenizer(tokenizer),
        dataset.train,
        max_length=config.max_length,
        max_truncated_fraction=config.max_truncated_fraction,
    )
