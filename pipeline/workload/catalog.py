"""The model catalog: memory, load, exec and unload time of real models (DESIGN.md 3)."""

from __future__ import annotations

import math
from importlib import resources
from pathlib import Path

import polars as pl

from ..errors import ManyModelsError, located
from ..logs import log

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


# ---------------------------------------------------------------- the memory mechanisms' columns (issue 13)
MECHANISM_COLUMNS = ["family", "accuracy_top1", "weights_mb", "instance_mb"]
EMBEDDED_CATALOG_PATH = "pipeline/data/model_catalog.csv"  # as a workload manifest names the embedded catalog


def load_catalog_mechanisms(path: Path | None = None) -> pl.DataFrame:
    """The catalog with the columns the memory mechanisms read (DESIGN 8; `model_catalog.md`):
    `family` (variants of one model that trade accuracy for memory), `accuracy_top1` (ImageNet
    top-1, 0..1), `weights_mb` (the weights, shared by the instances of one model on a server
    under --shared-weights) and `instance_mb` (each instance's private runtime memory). A catalog
    without them still loads, with defaults derived and logged: family = the model's own name
    (no variants), accuracy unknown (null), weights_mb = size_mb, instance_mb = 0."""
    path = Path(path) if path else default_catalog_path()
    catalog = load_catalog(path)
    raw = pl.read_csv(path, infer_schema_length=None)
    derived = []
    if "family" in raw.columns:
        family = raw["family"].cast(pl.String)
        blank = family.is_null() | (family.str.strip_chars() == "")
        catalog = catalog.with_columns(pl.when(blank).then(catalog["model"]).otherwise(family).alias("family"))
    else:
        derived.append("family = model")
        catalog = catalog.with_columns(pl.col("model").alias("family"))
    for column, default, low, high in (("accuracy_top1", None, 0.0, 1.0), ("weights_mb", "size_mb", 0.0, math.inf),
                                       ("instance_mb", 0.0, 0.0, math.inf)):
        if column not in raw.columns:
            derived.append(f"{column} = {default if default is not None else 'unknown'}")
            value = pl.col(default) if isinstance(default, str) else pl.lit(default, pl.Float64)
            catalog = catalog.with_columns(value.cast(pl.Float64).alias(column))
            continue
        values = raw[column].cast(pl.Float64, strict=False)
        bad = (raw[column].is_not_null() & values.is_null()) | (values < low) | (values > high)
        if column == "weights_mb":
            bad = bad | values.is_null() | (values <= 0)
        if bad.any():
            row = int(bad.arg_true()[0])
            raise located(path, f"{column} must be a number in [{low:g}, {high:g}]"
                          f"{' and positive' if column == 'weights_mb' else ''}, got {raw[column][row]!r}",
                          line=row + 2, column=column)
        if column == "instance_mb":
            values = values.fill_null(0.0)
        catalog = catalog.with_columns(values.alias(column))
    if derived:
        log.info("%s: no column(s) %s; derived defaults: %s", path,
                 ", ".join(c for c in MECHANISM_COLUMNS if c not in raw.columns), "; ".join(derived))
    return catalog
