"""Clean-up after a builder that died: what it left in a dataset's directory."""

from __future__ import annotations

import shutil
from pathlib import Path


def clear_unpublished(parent: Path, version: int) -> list[Path]:
    """Remove a version's leftovers: `.tmp-vN-*` directories and a `vN` that is not ready.

    Call it only while holding the version's lease with the version not ready: then no live
    builder owns those directories (a builder that lost its lease can no longer publish), and
    a `vN` is one renamed into place just before a commit that never came.

    Args:
        parent: `<datasets_dir>/<dataset>`.
        version: The version number N.

    Returns:
        The directories removed.
    """
    stale = [*parent.glob(f".tmp-v{version}-*"), parent / f"v{version}"]
    removed = [path for path in stale if path.exists()]
    for path in removed:
        shutil.rmtree(path)
    return removed
