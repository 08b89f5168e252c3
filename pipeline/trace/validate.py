"""Read one trace CSV with its exact schema; every problem becomes one error naming file, line and column."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import polars as pl

from ..errors import ManyModelsError, located
from .schema import COLUMNS, INVOCATIONS, KEY_COLUMNS, MINUTE_COLUMNS, SCHEMAS, TRIGGERS

# nullable columns: the real trace leaves Minimum/Maximum empty for a few functions
NULLABLE = {"Minimum", "Maximum"}


def check_header(path: Path, kind: str) -> None:
    expected = COLUMNS[kind]
    if path.stat().st_size == 0:
        raise located(path, "empty file (expected a header line and data rows)")
    with path.open(newline="") as handle:
        header = next(csv.reader(handle), [])
    missing = [c for c in expected if c not in header]
    extra = [c for c in header if c not in expected]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing column(s) {_names(missing)}")
        if extra:
            parts.append(f"unexpected column(s) {_names(extra)}")
        raise located(path, "; ".join(parts) + f" (expected the {len(expected)} columns of {kind})", line=1)
    if header != expected:
        raise located(path, f"columns are out of order (expected the order of {kind})", line=1)


def _names(columns: list[str]) -> str:
    shown = ", ".join(repr(c) for c in columns[:5])
    return shown + (f" and {len(columns) - 5} more" if len(columns) > 5 else "")


def _diagnose(path: Path, kind: str) -> ManyModelsError:
    """Find the first malformed cell by scanning the text (only run after a fast read failed)."""
    schema = SCHEMAS[kind]
    columns = COLUMNS[kind]
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        next(reader, None)
        for line, row in enumerate(reader, start=2):
            if len(row) != len(columns):
                what = "truncated row" if len(row) < len(columns) else "too many fields"
                return located(path, f"{what}: {len(row)} fields, expected {len(columns)}", line=line)
            for column, value in zip(columns, row):
                dtype = schema[column]
                if value == "" and column not in NULLABLE:
                    return located(path, "empty value", line=line, column=column)
                if value == "" or dtype == pl.String:
                    continue
                try:
                    int(value) if dtype in (pl.Int64, pl.Int32) else float(value)
                except ValueError:
                    expected = "an integer" if dtype in (pl.Int64, pl.Int32) else "a number"
                    return located(path, f"{value!r} is not {expected}", line=line, column=column)
    return located(path, "could not be parsed as CSV")


def read_frame(path: Path, kind: str) -> pl.DataFrame:
    """The whole file as a typed frame, or a ManyModelsError naming the bad cell."""
    check_header(path, kind)
    schema = dict(SCHEMAS[kind])
    if kind == INVOCATIONS:
        schema.update({c: pl.Int32 for c in MINUTE_COLUMNS})
    try:
        frame = pl.read_csv(path, schema=schema, has_header=True, raise_if_empty=False)
    except Exception as error:  # polars' message has no line number; find the cell ourselves
        raise _diagnose(path, kind) from error
    if frame.height == 0:
        raise located(path, "no data rows after the header (empty file)")
    _check_nulls(path, frame, kind)
    return frame


def _check_nulls(path: Path, frame: pl.DataFrame, kind: str) -> None:
    required = [c for c in COLUMNS[kind] if c not in NULLABLE]
    null_counts = frame.select(pl.col(required).null_count()).row(0)
    if not any(null_counts):
        return
    bad = frame.with_row_index("_row").filter(pl.any_horizontal(pl.col(required).is_null())).row(0, named=True)
    column = next(c for c in required if bad[c] is None)
    raise located(path, "missing value (truncated or malformed row)", line=int(bad["_row"]) + 2, column=column)


def check_keys_unique(path: Path, frame: pl.DataFrame, keys: list[str]) -> None:
    duplicated = frame.with_row_index("_row").filter(pl.struct(keys).is_duplicated())
    if duplicated.height:
        first = duplicated.row(0, named=True)
        same = duplicated.filter(pl.all_horizontal(pl.col(k) == first[k] for k in keys))["_row"].to_list()
        lines = ", ".join(str(r + 2) for r in same[:5])
        raise located(path, f"duplicate key {'/'.join(keys)} on lines {lines}", line=same[1] + 2,
                      column=keys[-1])


def check_triggers(path: Path, frame: pl.DataFrame) -> None:
    unknown = frame.with_row_index("_row").filter(~pl.col("Trigger").is_in(list(TRIGGERS)))
    if unknown.height:
        row = unknown.row(0, named=True)
        raise located(path, f"unknown trigger {row['Trigger']!r} (expected one of {', '.join(TRIGGERS)})",
                      line=int(row["_row"]) + 2, column="Trigger")


def check_non_negative(path: Path, frame: pl.DataFrame, columns: list[str]) -> None:
    negative = frame.select(pl.any_horizontal(pl.col(columns) < 0).alias("neg")).to_series()
    if negative.any():
        row = int(negative.arg_true()[0])
        values = frame.row(row, named=True)
        column = next(c for c in columns if values[c] is not None and values[c] < 0)
        raise located(path, f"negative value {values[column]}", line=row + 2, column=column)


def count_matrix(path: Path, frame: pl.DataFrame) -> np.ndarray:
    """The minute columns as a (functions x 1440) int32 matrix, after checking counts are >= 0."""
    matrix = frame.select(MINUTE_COLUMNS).to_numpy()
    if matrix.size and matrix.min() < 0:
        row, column = np.argwhere(matrix < 0)[0]
        raise located(path, f"negative invocation count {int(matrix[row, column])}", line=int(row) + 2,
                      column=MINUTE_COLUMNS[column])
    return matrix


__all__ = ["KEY_COLUMNS", "check_header", "check_keys_unique", "check_non_negative", "check_triggers",
           "count_matrix", "read_frame"]
