"""Read an exported dataset version from disk, refusing files that differ from the manifest."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dataformats.jsonl import JsonlError, iter_jsonl
from trainer.errors import DatasetIntegrityError

TRAIN_FILE = "train.messages.jsonl"
VALIDATION_FILE = "validation.messages.jsonl"
_ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class ChatExample:
    """One training example: a conversation with at least one assistant turn."""

    id: str
    task_id: str
    task_type: str
    messages: list[dict[str, str]]


@dataclass
class ExportedDataset:
    """A verified dataset version: its manifest and its chat-format splits."""

    path: Path
    name: str
    version: int
    content_hash: str
    manifest: dict[str, Any]
    train: list[ChatExample] = field(default_factory=list)
    validation: list[ChatExample] = field(default_factory=list)


def sha256_file(path: Path) -> str:
    """Return the sha256 hex digest of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_files(dataset_dir: Path, manifest: dict[str, Any]) -> None:
    """Check every file the manifest lists against its sha256 and size.

    Args:
        dataset_dir: The version directory.
        manifest: Its parsed manifest.json.

    Raises:
        DatasetIntegrityError: A listed file is missing, has another size or another sha256.
    """
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise DatasetIntegrityError(f"{dataset_dir}/manifest.json lists no files")
    for name, entry in sorted(files.items()):
        path = dataset_dir / name
        if not path.is_file():
            raise DatasetIntegrityError(f"{name}: listed in the manifest but missing")
        expected_bytes = entry.get("bytes")
        if expected_bytes is not None and path.stat().st_size != expected_bytes:
            raise DatasetIntegrityError(
                f"{name}: {path.stat().st_size} bytes, manifest says {expected_bytes}"
            )
        actual = sha256_file(path)
        if actual != entry.get("sha256"):
            raise DatasetIntegrityError(
                f"{name}: sha256 {actual} does not match the manifest's {entry.get('sha256')}"
            )


def _parse_example(row: dict[str, Any], where: str) -> ChatExample:
    try:
        messages = row["messages"]
        example = ChatExample(
            id=str(row["id"]),
            task_id=str(row.get("task_id", row["id"])),
            task_type=str(row.get("task_type", "unknown")),
            messages=[{"role": m["role"], "content": m["content"]} for m in messages],
        )
    except (KeyError, TypeError) as exc:
        raise DatasetIntegrityError(f"{where}: not a chat example ({exc!r})") from None
    roles = [m["role"] for m in example.messages]
    if any(role not in _ROLES for role in roles) or "assistant" not in roles:
        raise DatasetIntegrityError(f"{where}: roles {roles} need at least one assistant turn")
    if not all(isinstance(m["content"], str) for m in example.messages):
        raise DatasetIntegrityError(f"{where}: every message content must be a string")
    return example


def read_examples(path: Path) -> list[ChatExample]:
    """Read a `*.messages.jsonl` split; a missing file is an empty split.

    Lines are what `dataformats.jsonl` reads (the export writes them with its writer), so text
    holding U+2028 or U+0085 stays inside its example.

    Raises:
        DatasetIntegrityError: On a line that is not a valid chat example (names the line).
    """
    if not path.is_file():
        return []
    try:
        return [
            _parse_example(row, f"{path.name} line {number}") for number, row in iter_jsonl(path)
        ]
    except JsonlError as exc:
        raise DatasetIntegrityError(f"{path.name} line {exc.line}: {exc.problem}") from None


def load_dataset_version(dataset_dir: Path) -> ExportedDataset:
    """Open a dataset version directory, verify every hash, and read its chat splits.

    Args:
        dataset_dir: `<datasets_dir>/<NAME>/v<N>/`.

    Returns:
        The verified dataset.

    Raises:
        DatasetIntegrityError: No manifest, a hash mismatch, no training rows, or a bad row.
    """
    manifest_path = dataset_dir / "manifest.json"
    if not manifest_path.is_file():
        raise DatasetIntegrityError(f"{dataset_dir} has no manifest.json")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    verify_files(dataset_dir, manifest)
    if TRAIN_FILE not in manifest["files"]:
        raise DatasetIntegrityError(f"the manifest lists no {TRAIN_FILE}")
    # Only files the manifest vouches for are read: an unlisted validation file is ignored.
    validation_path = dataset_dir / VALIDATION_FILE
    dataset = ExportedDataset(
        path=dataset_dir,
        name=str(manifest["dataset"]),
        version=int(manifest["version"]),
        content_hash=str(manifest["content_hash"]),
        manifest=manifest,
        train=read_examples(dataset_dir / TRAIN_FILE),
        validation=read_examples(validation_path) if VALIDATION_FILE in manifest["files"] else [],
    )
    if not dataset.train:
        raise DatasetIntegrityError(f"{TRAIN_FILE} has no rows")
    return dataset
