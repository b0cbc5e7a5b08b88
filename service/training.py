"""`instructforge train`: resolve NAME@VERSION through the database, train, record the run."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from service.errors import InvalidInput
from service.storage.datasets import find_ready_version
from service.storage.db import Database
from service.storage.training_runs import add_training_run


def parse_dataset_ref(ref: str) -> tuple[str, int | None]:
    """'name@3' -> ('name', 3); 'name' or 'name@latest' -> ('name', None)."""
    name, _, version = ref.partition("@")
    if not name:
        raise InvalidInput(f"--dataset {ref!r}: expected NAME@VERSION")
    if version in ("", "latest"):
        return name, None
    if not version.lstrip("v").isdigit():
        raise InvalidInput(f"--dataset {ref!r}: the version is a number, e.g. {name}@1")
    return name, int(version.lstrip("v"))


def resolve_version(database: Database, ref: str) -> tuple[int, Path]:
    """The ready version's row id and directory.

    Raises:
        InvalidInput: `ref` is not NAME, NAME@N or NAME@latest.
        NotFound: no such dataset or ready version.
    """
    name, version = parse_dataset_ref(ref)
    with database.sessions() as session:
        row = find_ready_version(session, dataset=name, version=version)
        assert row.path is not None  # find_ready_version returns only published versions
        return row.id, Path(row.path)


def record_training_run(
    database: Database,
    *,
    dataset_version_id: int | None,
    result: Any,
    method: str = "sft",
    preference_run_id: int | None = None,
) -> int:
    """Link the trained model to the dataset version (sft) or preference run (dpo) it was
    trained on; the metrics are the trainer's (dpo adds reward margin and accuracy)."""
    manifest: dict[str, Any] = result.manifest
    manifest_path = Path(result.output_dir) / "training_manifest.json"
    digest = (
        hashlib.sha256(manifest_path.read_bytes()).hexdigest() if manifest_path.exists() else None
    )
    base = manifest.get("base_model", {})
    with database.transaction() as session:
        return add_training_run(
            session,
            dataset_version_id=dataset_version_id,
            output_dir=str(result.output_dir),
            base_model=str(base.get("name", "")),
            base_model_hash=base.get("hash"),
            config=manifest.get("config", {}),
            config_hash=manifest.get("config_hash", ""),
            metrics=json.loads(json.dumps(result.metrics, default=str)),
            manifest_sha256=digest,
            method=method,
            preference_run_id=preference_run_id,
        )


def preference_run_of(pairs_dir: Path) -> int | None:
    """The preference run a pairs directory was exported from (its manifest's ``run_id``);
    None for pairs made elsewhere (no manifest, or one without a run).

    Raises:
        InvalidInput: the manifest is not JSON.
    """
    from service.export.preference import PREFERENCE_MANIFEST

    path = pairs_dir / PREFERENCE_MANIFEST
    if not path.is_file():
        return None
    try:
        run_id = json.loads(path.read_text(encoding="utf-8")).get("run_id")
    except (ValueError, AttributeError) as exc:
        raise InvalidInput(f"{path}: not a JSON manifest ({exc})") from None
    return run_id if isinstance(run_id, int) else None
