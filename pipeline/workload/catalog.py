"""The model catalog: memory, load, exec and unload time of real models (DESIGN.md 3)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import polars as pl

from ..errors import ManyModelsError, located

CATALOG_COLUMNS = ["model", "load_ms", "exec_ms", "unload_ms", "size_mb"]
POSITIVE = ["load_ms", "exec_ms", "unload_ms", "size_mb"]


def default_catalog_path() -> Path:
    return Path(str(resources.files("pipeline") / "data" / "model_catalog.csv"))


def load_catalog(path: Path | None = None) -> pl.DataFrame:
    """Read and validate a catalog CSV: the five columns, unique names, every number positive."""
    path = Path(path) if path else default_catalog_path()
    if not path.exists():
        raise ManyModelsError(f"{path}: catalog file not found")
    try:
        catalog = pl.read_csv(path, infer_schema_length=None)
    except Exception as error:
        raise located(path, f"not a readable CSV ({error})") from error
    missing = [c for c in CATALOG_COLUMNS if c not in catalog.columns]
    if missing:
        raise located(path, f"missing column(s) {', '.join(missing)} (expected {', '.join(CATALOG_COLUMNS)})", line=1)
    if catalog.height == 0:
        raise located(path, "no models in the catalog")
    catalog = catalog.with_row_index("_row")
    for column in POSITIVE:
        values = catalog[column].cast(pl.Float64, strict=False)
        bad = catalog.filter(values.is_null() | (values <= 0))
        if bad.height:
            row = bad.row(0, named=True)
            raise located(path, f"{column} must be a positive number, got {row[column]!r}", line=row["_row"] + 2,
                          column=column)
    duplicated = catalog.filter(pl.col("model").is_duplicated())
    if duplicated.height:
        raise located(path, f"model {duplicated['model'][0]!r} appears more than once", line=duplicated["_row"][1] + 2,
                      column="model")
    return catalog.select(
        pl.col("model").cast(pl.String), *[pl.col(c).cast(pl.Float64) for c in POSITIVE])
