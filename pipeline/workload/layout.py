"""The files of a workload directory, as `manymodels synthesize` writes them, and their verification."""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import ManyModelsError
from ..files import sha256_file
from ..logs import log

WORKLOAD_FILES = ("requests.parquet", "models.parquet", "manifest.json")
ROW_FILES = {"requests": "requests.parquet", "models": "models.parquet"}


def require_workload(directory: Path, verify: bool = True) -> Path:
    """`directory` if it holds every workload file (and, with `verify`, each file matches the
    manifest's SHA-256 checksum and row count), else one clear error naming the damaged file."""
    directory = Path(directory)
    for name in WORKLOAD_FILES:
        if not (directory / name).exists():
            raise ManyModelsError(
                f"{directory / name}: not found (is {directory} a workload written by `manymodels synthesize`?)")
    if verify:
        verify_workload(directory)
    return directory


def read_manifest(directory: Path) -> dict:
    path = Path(directory) / "manifest.json"
    try:
        manifest = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ManyModelsError(f"{path}: not a valid workload manifest ({error})") from error
    if not isinstance(manifest, dict) or not all(
            isinstance(manifest.get(key, {}), dict) for key in ("rows", "checksums")):
        raise ManyModelsError(f"{path}: not a workload manifest (expected a JSON object with 'rows' and "
                              "'checksums' objects; rerun `manymodels synthesize`)")
    return manifest


def verify_workload(directory: Path) -> dict:
    """Check every file against the manifest (checksum, row count); return the manifest.

    `manymodels synthesize` records both; a hand-made manifest without them is accepted with a
    warning (the rows themselves are still checked by `check_requests`)."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    checksums, rows = manifest.get("checksums") or {}, manifest.get("rows") or {}
    unchecked = [name for name in ROW_FILES.values() if name not in checksums]
    if unchecked:
        log.warning("%s: manifest.json has no checksum for %s; not verified", directory, ", ".join(unchecked))
    for name in ROW_FILES.values():
        expected = checksums.get(name)
        if expected is not None and sha256_file(directory / name) != expected:
            raise ManyModelsError(f"{directory / name}: damaged or changed since it was written (its SHA-256 "
                                  "differs from manifest.json); rerun `manymodels synthesize`")
    for key, name in ROW_FILES.items():
        expected = rows.get(key)
        try:
            actual = pq.ParquetFile(directory / name).metadata.num_rows
        except Exception as error:
            raise ManyModelsError(f"{directory / name}: not a readable Parquet file ({error})") from error
        if expected is not None and actual != expected:
            raise ManyModelsError(f"{directory / name}: {actual} rows, but manifest.json says {expected}")
    return manifest


def read_workload_tables(directory: Path, verify: bool = True,
                         request_columns: tuple[str, ...] = ("t_ms", "model_id")) -> tuple[pl.DataFrame, pl.DataFrame, dict]:
    """(requests, models, manifest) of a workload directory, requests with only `request_columns`
    (those present). Each file is read once: with `verify`, those very bytes are checked against the
    manifest's SHA-256 checksum (hashed in a thread beside the Parquet decoding) and row count, with
    the same errors as `verify_workload`; a damaged file is named before any decoding error."""
    directory = require_workload(directory, verify=False)
    manifest = read_manifest(directory)
    checksums, rows = (manifest.get("checksums") or {}, manifest.get("rows") or {}) if verify else ({}, {})
    if verify:
        unchecked = [name for name in ROW_FILES.values() if name not in checksums]
        if unchecked:
            log.warning("%s: manifest.json has no checksum for %s; not verified", directory, ", ".join(unchecked))
    data = {name: (directory / name).read_bytes() for name in ROW_FILES.values()}
    tables: dict[str, pl.DataFrame] = {}
    with ThreadPoolExecutor(max_workers=1) as pool:
        digests = {name: pool.submit(lambda b: hashlib.sha256(b).hexdigest(), data[name])
                   for name in ROW_FILES.values() if checksums.get(name) is not None}
        failures: dict[str, Exception] = {}
        for key, name in ROW_FILES.items():
            try:
                buffer = pa.BufferReader(data[name])
                names = pq.ParquetFile(buffer).schema_arrow.names
                wanted = [c for c in request_columns if c in names] if key == "requests" else None
                tables[key] = pl.read_parquet(data[name], columns=wanted)
            except (pa.ArrowException, pl.exceptions.PolarsError, OSError, ValueError) as error:  # named below
                failures[name] = error
        for name in ROW_FILES.values():  # checksums first: a damaged file is named as such
            if name in digests and digests[name].result() != checksums[name]:
                raise ManyModelsError(f"{directory / name}: damaged or changed since it was written (its SHA-256 "
                                      "differs from manifest.json); rerun `manymodels synthesize`")
    for name, error in failures.items():
        raise ManyModelsError(f"{directory / name}: not a readable Parquet file ({error})") from error
    for key, name in ROW_FILES.items():
        expected = rows.get(key)
        if expected is not None and tables[key].height != expected:
            raise ManyModelsError(f"{directory / name}: {tables[key].height} rows, but manifest.json says {expected}")
    return tables["requests"], tables["models"], manifest


def check_requests(path: Path, requests: pl.DataFrame, n_models: int) -> None:
    """The request stream a simulation may use: t_ms and model_id present and not null, t_ms sorted
    (non-decreasing) and >= 0, model ids in 0..n_models-1. Names the first offending row."""
    for column in ("t_ms", "model_id"):
        if column not in requests.columns:
            raise ManyModelsError(f"{path}: no column {column!r}")
        nulls = requests[column].null_count()
        if nulls:
            row = int(requests[column].is_null().arg_true()[0])
            raise ManyModelsError(f"{path}, row {row}, column {column!r}: null value ({nulls} in all)")
    t_ms = requests["t_ms"].to_numpy()
    if len(t_ms) and t_ms[0] < 0:
        raise ManyModelsError(f"{path}, row 0, column 't_ms': negative time {int(t_ms[0])}")
    backwards = t_ms[1:] < t_ms[:-1]
    if backwards.any():
        row = int(backwards.argmax()) + 1
        raise ManyModelsError(f"{path}, row {row}, column 't_ms': not sorted ({int(t_ms[row])} after "
                              f"{int(t_ms[row - 1])}); requests must be in time order")
    ids = requests["model_id"].to_numpy()
    if len(ids) and (ids.min() < 0 or ids.max() >= n_models):
        row = int(np.flatnonzero((ids < 0) | (ids >= n_models))[0])
        raise ManyModelsError(f"{path}, row {row}, column 'model_id': {int(ids[row])} is not a model of this "
                              f"workload (0..{n_models - 1})")
