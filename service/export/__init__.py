"""Versioned dataset export: a frozen, content-addressed selection of accepted tasks.

`create_version` exports synchronously; `start_version` + `build_version` split the same work
for an export job (a worker claims it with `storage.export_jobs.claim_export`). Versions live
in `<datasets_dir>/<NAME>/v<N>/`.
"""

from service.export.build import (
    VersionInfo,
    allocate_version_in,
    build_version,
    create_version,
    start_version,
    version_info,
)
from service.export.spec import ExportSpec
from service.storage.datasets import (
    DatasetSummary,
    VersionDiff,
    diff_versions,
    get_version,
    list_datasets,
    list_versions,
)

__all__ = [
    "DatasetSummary",
    "ExportSpec",
    "VersionDiff",
    "VersionInfo",
    "allocate_version_in",
    "build_version",
    "create_version",
    "diff_versions",
    "get_version",
    "list_datasets",
    "list_versions",
    "start_version",
    "version_info",
]
