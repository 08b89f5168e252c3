"""The files of a workload directory, as `manymodels synthesize` writes them."""

from __future__ import annotations

from pathlib import Path

from ..errors import ManyModelsError

WORKLOAD_FILES = ("requests.parquet", "models.parquet", "manifest.json")


def require_workload(directory: Path) -> Path:
    """`directory` if it holds every workload file, else one clear error."""
    directory = Path(directory)
    for name in WORKLOAD_FILES:
        if not (directory / name).exists():
            raise ManyModelsError(
                f"{directory / name}: not found (is {directory} a workload written by `manymodels synthesize`?)")
    return directory
