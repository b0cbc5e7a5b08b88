"""A version's manifest: its spec, counts, score distributions, lineage and file hashes."""

from __future__ import annotations

from importlib import metadata
from typing import Any

import pyarrow as pa

from service.storage.db import Session
from service.storage.lineage import generation_sources, runs_lineage, seed_sets_lineage

# Bumped whenever the bytes written for the same rows change (layout, JSON shape, Parquet options).
EXPORT_FORMAT_VERSION = "1"


def package_version() -> str:
    try:
        return metadata.version("instructforge")
    except metadata.PackageNotFoundError:  # running from a checkout that is not installed
        return "0+unknown"


def lineage(
    session: Session,
    *,
    version_id: int,
    run_ids: set[int | None],
    seed_set_ids: set[int],
    scorers: dict[str, Any],
    decontamination: dict[str, Any],
) -> dict[str, Any]:
    """Where the version's tasks came from.

    Args:
        session: The export's session; it sees the items inserted in its own transaction.
        version_id: The dataset version (models and templates are read back from its items).
        run_ids: Runs of the exported tasks (None for seeds).
        seed_set_ids: Seed sets of the exported tasks.
        scorers: scorer -> versions seen on exported items.
        decontamination: the eval sets checked, threshold, rule and version.
    """
    models, templates = generation_sources(session, version_id)
    return {
        "runs": runs_lineage(session, run_ids),
        "seed_sets": seed_sets_lineage(session, seed_set_ids),
        "models": models,
        "templates": templates,
        "scorers": scorers,
        "decontamination": decontamination,
        "exporter": {
            "instructforge": package_version(),
            "export_format": EXPORT_FORMAT_VERSION,
            "pyarrow": pa.__version__,
        },
    }


def build_manifest(
    *,
    dataset: str,
    version: int,
    spec: dict[str, Any],
    spec_hash: str,
    content_hash: str,
    counts: dict[str, Any],
    score_distributions: dict[str, Any],
    lineage: dict[str, Any],
    files: dict[str, dict[str, Any]],
    created_at: str,
) -> dict[str, Any]:
    """Assemble manifest.json (the only file that may carry wall-clock time)."""
    return {
        "dataset": dataset,
        "version": version,
        "content_hash": content_hash,
        "spec": spec,
        "spec_hash": spec_hash,
        "counts": counts,
        "score_distributions": score_distributions,
        "lineage": lineage,
        "created_by": f"instructforge {package_version()}",
        "created_at": created_at,
        "files": files,
    }
