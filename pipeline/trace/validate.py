"""Read one trace CSV with its exact schema; every problem becomes one error naming file, line and column."""

from __future__ import annotations

import codecs
import csv
import itertools
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl

from ..errors import ManyModelsError, located
from .schema import (
    COLUMNS,
    COMPRESSIONS,
    INVOCATIONS,
    KEY_COLUMNS,
    MINUTE_COLUMNS,
    SCHEMAS,
    TRIGGERS,
    open_binary,
)

# nullable columns: the real trace leaves Minimum/Maximum empty for a few functions
NULLABLE = {"Minimum", "Maximum"}


INT_RANGES = {pl.Int32: 2**31 - 1, pl.Int64: 2**63 - 1}


def _lines(path: Path) -> Iterator[str]:
    """The file's lines as text; bytes that are not UTF-8 are one error naming line and position."""
    with open_binary(path) as handle:
        head = handle.read(4)
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
            raise located(path, "the file is UTF-16/UTF-32 text; trace files are UTF-8 CSV "
                          "(convert it, e.g. iconv -f UTF-16 -t UTF-8)", line=1)
        first = True
        for number, raw in enumerate(_rejoin(head, handle), start=1):
            try:
                text = raw.decode("utf-8-sig" if first else "utf-8")
            except UnicodeDecodeError as error:
                raise located(path, f"byte 0x{raw[error.start]:02x} at position {error.start + 1} is not UTF-8 text "
                              "(trace files are UTF-8 CSV)", line=number) from None
            first = False
            yield text


def _rejoin(head: bytes, handle) -> Iterator[bytes]:
    rest = handle.readline()
    yield head + rest if head else rest
    yield from handle


def _data(path: Path) -> bytes | Path:
    """What polars reads: the path itself, or the decompressed bytes of a .gz/.xz file."""
    if path.suffix in COMPRESSIONS:
        with open_binary(path) as handle:
            return handle.read()
    return path


def check_header(path: Path, kind: str) -> None:
    expected = COLUMNS[kind]
    if path.stat().st_size == 0:
        raise located(path, "empty file (expected a header line and data rows)")
    header = next(csv.reader(itertools.islice(_lines(path), 1)), [])
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


def _diagnose(path: Path, kind: str, schema: dict) -> ManyModelsError:
    """Find the first malformed cell by scanning the text (only run after a fast read failed)."""
    columns = COLUMNS[kind]
    try:
        reader = csv.reader(_lines(path))
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
                    number = int(value) if dtype in INT_RANGES else float(value)
                except ValueError:
                    expected = "an integer" if dtype in INT_RANGES else "a number"
                    return located(path, f"{value!r} is not {expected}", line=line, column=column)
                if dtype in INT_RANGES and not -INT_RANGES[dtype] - 1 <= number <= INT_RANGES[dtype]:
                    return located(path, f"{value} is out of range (at most {INT_RANGES[dtype]:,} here)",
                                   line=line, column=column)
    except ManyModelsError as error:
        return error
    return located(path, "could not be parsed as CSV")


def read_frame(path: Path, kind: str) -> pl.DataFrame:
    """The whole file as a typed frame, or a ManyModelsError naming the bad cell."""
    check_header(path, kind)
    schema = dict(SCHEMAS[kind])
    if kind == INVOCATIONS:
        schema.update({c: pl.Int32 for c in MINUTE_COLUMNS})
    try:
        frame = pl.read_csv(_data(path), schema=schema, has_header=True, raise_if_empty=False)
    except Exception as error:  # polars' message has no line number; find the cell ourselves
        raise _diagnose(path, kind, schema) from error
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


def non_finite_to_null(frame: pl.DataFrame, columns: list[str]) -> tuple[pl.DataFrame, int]:
    """NaN and +-inf in float columns become null (so no statistic mixes them in); the number of rows touched."""
    floats = [c for c in columns if frame.schema[c] == pl.Float64]
    if not floats:
        return frame, 0
    bad = frame.select(pl.any_horizontal(pl.col(floats).is_nan() | pl.col(floats).is_infinite()).fill_null(False)).to_series()
    rows = int(bad.sum())
    if rows:
        frame = frame.with_columns(pl.when(pl.col(c).is_finite()).then(pl.col(c)).otherwise(None).alias(c) for c in floats)
    return frame, rows


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
