"""What a run leaves behind: metrics.jsonl, the validation curve (CSV and PNG), hashes."""

from __future__ import annotations

import csv
import hashlib
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import trainer
from dataformats.jsonl import encode_jsonl_line, iter_jsonl, write_jsonl
from trainer.dataset import sha256_file

MANIFEST_FILE = "training_manifest.json"
METRICS_FILE = "metrics.jsonl"
CURVE_CSV = "validation_curve.csv"
CURVE_PNG = "validation_curve.png"
CONFIG_FILE = "train_config.json"
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".gguf")


def sha256_text(text: str) -> str:
    """sha256 hex digest of a UTF-8 string."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def template_hash(tokenizer: Any) -> str:
    """Hash of the chat template text the examples were rendered with."""
    return sha256_text(str(tokenizer.chat_template or ""))


def tokenizer_hash(tokenizer: Any) -> str:
    """Hash of all that decides token ids: the serialized tokenizer, special tokens, template.

    A fast tokenizer serializes its vocabulary, merges, normalizer and added tokens in one JSON;
    a slow one falls back to its sorted vocabulary.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    body = (
        backend.to_str()
        if backend is not None
        else json.dumps(sorted(tokenizer.get_vocab().items()))
    )
    special = json.dumps(
        {
            "special": tokenizer.all_special_tokens,
            "bos": tokenizer.bos_token,
            "eos": tokenizer.eos_token,
            "pad": tokenizer.pad_token,
        },
        sort_keys=True,
    )
    return sha256_text(body + "\0" + special + "\0" + str(tokenizer.chat_template or ""))


def model_files_hash(model_dir: Path) -> str:
    """Hash of the weight files of a model directory (name and content, sorted by name)."""
    digest = hashlib.sha256()
    for path in sorted(model_dir.iterdir()):
        if path.is_file() and path.name.endswith(_WEIGHT_SUFFIXES):
            digest.update(path.name.encode() + b"\0" + sha256_file(path).encode() + b"\n")
    return digest.hexdigest()


def code_version() -> str:
    """The package version plus a hash of the trainer's own source files."""
    digest = hashlib.sha256()
    for path in sorted(Path(trainer.__file__).parent.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return f"{trainer.__version__}+src.{digest.hexdigest()[:12]}"


def _json_number(value: Any) -> Any:
    """A non-finite float becomes None, in nested records too: JSON has no NaN or Infinity."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_number(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_number(v) for v in value]
    return value


class MetricsWriter:
    """Appends one JSON object per line to metrics.jsonl, flushed at once (a crash keeps them).

    Lines follow `dataformats.jsonl`. A loss that is NaN or infinite (an empty validation split,
    a diverged step) is written as null: JSON has no such numbers, and Python's ``NaN`` token
    would make the file unreadable to every strict JSON reader.
    """

    def __init__(self, path: Path, *, keep_through_step: int | None = None) -> None:
        self.path = path
        self.lines: list[dict[str, Any]] = []
        if keep_through_step is not None and path.is_file():
            # A resumed run keeps what happened up to its checkpoint and drops the rest.
            for _, record in iter_jsonl(path):
                if record.get("step", 0) <= keep_through_step:
                    self.lines.append(record)
        write_jsonl(path, (_json_number(r) for r in self.lines))

    def write(self, record: dict[str, Any]) -> None:
        """Append one record."""
        self.lines.append(record)
        line = encode_jsonl_line(_json_number(record))
        with self.path.open("ab") as handle:
            handle.write(line)


def write_curve(output_dir: Path, curve: Sequence[tuple[int, float]]) -> None:
    """Write the validation curve as CSV and as a PNG plot (matplotlib, Agg backend)."""
    with (output_dir / CURVE_CSV).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["step", "val_loss"])
        writer.writerows(curve)
    import matplotlib

    matplotlib.use("Agg")  # no display: the plot is a file
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 4))
    axes.plot([s for s, _ in curve], [v for _, v in curve], marker="o")
    axes.set_xlabel("optimizer step")
    axes.set_ylabel("validation loss (token mean)")
    axes.set_title("validation loss")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(output_dir / CURVE_PNG, dpi=100)
    plt.close(figure)


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write pretty, key-sorted JSON (stable bytes for the same data)."""
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
