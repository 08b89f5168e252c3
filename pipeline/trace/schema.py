"""File names and exact columns of the Azure Functions 2019 trace (DESIGN.md 2a)."""

from __future__ import annotations

import gzip
import lzma
import re
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import polars as pl

from ..errors import ManyModelsError

MINUTES_PER_DAY = 1440
TRACE_DAYS = 14
MEMORY_DAYS = 12  # the real trace has no memory files for d13 and d14
TRIGGERS = ("http", "timer", "event", "queue", "storage", "orchestration", "others")

INVOCATIONS = "invocations_per_function_md"
DURATIONS = "function_durations_percentiles"
MEMORY = "app_memory_percentiles"
KINDS = (INVOCATIONS, DURATIONS, MEMORY)

KEY_COLUMNS = ["HashOwner", "HashApp", "HashFunction"]
MINUTE_COLUMNS = [str(m) for m in range(1, MINUTES_PER_DAY + 1)]
INVOCATION_COLUMNS = KEY_COLUMNS + ["Trigger"] + MINUTE_COLUMNS
DURATION_PERCENTILES = [f"percentile_Average_{p}" for p in (0, 1, 25, 50, 75, 99, 100)]
DURATION_COLUMNS = KEY_COLUMNS + ["Average", "Count", "Minimum", "Maximum"] + DURATION_PERCENTILES
MEMORY_PERCENTILES = [f"AverageAllocatedMb_pct{p}" for p in (1, 5, 25, 50, 75, 95, 99, 100)]
MEMORY_COLUMNS = ["HashOwner", "HashApp", "SampleCount", "AverageAllocatedMb"] + MEMORY_PERCENTILES

COLUMNS = {INVOCATIONS: INVOCATION_COLUMNS, DURATIONS: DURATION_COLUMNS, MEMORY: MEMORY_COLUMNS}

INVOCATION_SCHEMA = {**{c: pl.String for c in KEY_COLUMNS + ["Trigger"]}, **{c: pl.Int64 for c in MINUTE_COLUMNS}}
DURATION_SCHEMA = {
    **{c: pl.String for c in KEY_COLUMNS},
    "Average": pl.Float64, "Count": pl.Int64, "Minimum": pl.Float64, "Maximum": pl.Float64,
    **{c: pl.Float64 for c in DURATION_PERCENTILES},
}
MEMORY_SCHEMA = {
    "HashOwner": pl.String, "HashApp": pl.String, "SampleCount": pl.Int64,
    "AverageAllocatedMb": pl.Float64, **{c: pl.Float64 for c in MEMORY_PERCENTILES},
}
SCHEMAS = {INVOCATIONS: INVOCATION_SCHEMA, DURATIONS: DURATION_SCHEMA, MEMORY: MEMORY_SCHEMA}

FILE_PATTERN = re.compile(r"^(?P<kind>[a-z_]+)\.anon\.d(?P<day>\d+)\.csv(?P<compression>\.gz|\.xz)?$")
# a day may be kept compressed as the archive's users often do: read like the plain file
COMPRESSIONS = (".gz", ".xz")
TRACE_FILE = re.compile(r"^.*\.csv(\.[A-Za-z0-9]+)?$")
SYNTHETIC_MANIFEST = "SYNTHETIC.json"


def open_binary(path: Path) -> BinaryIO:
    """A trace file's bytes, decompressed when its name ends in .gz or .xz."""
    path = Path(path)
    if path.suffix == ".gz":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    if path.suffix == ".xz":
        return lzma.open(path, "rb")  # type: ignore[return-value]
    return path.open("rb")


def file_name(kind: str, day: int) -> str:
    return f"{kind}.anon.d{day:02d}.csv"


@dataclass(frozen=True)
class TraceFile:
    kind: str
    day: int
    path: Path


@dataclass(frozen=True)
class TraceLayout:
    """The files of a trace directory, by day and kind."""

    directory: Path
    files: dict[int, dict[str, Path]]

    @property
    def days(self) -> list[int]:
        return sorted(self.files)

    def path(self, day: int, kind: str) -> Path | None:
        return self.files.get(day, {}).get(kind)


def discover(directory: Path) -> TraceLayout:
    """Find every trace file in `directory`; reject names that are not a day of the trace.

    A day needs its invocations file; a durations or memory file for a day without one is an
    error, while a day without durations or memory (as d13 and d14 of the real trace) is fine."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ManyModelsError(f"{directory}: trace directory not found")
    files: dict[int, dict[str, Path]] = {}
    for path in sorted(directory.iterdir()):
        if not TRACE_FILE.match(path.name) or path.name.startswith("."):
            continue
        match = FILE_PATTERN.match(path.name)
        if match is None or match["kind"] not in KINDS:
            raise ManyModelsError(
                f"{path}: not a file of the Azure 2019 trace; expected "
                f"<{'|'.join(KINDS)}>.anon.dNN.csv with NN in 01..{TRACE_DAYS} "
                f"(optionally compressed: {', '.join('.csv' + c for c in COMPRESSIONS)})"
            )
        day_text = match["day"]
        day = int(day_text)
        if len(day_text) != 2 or not 1 <= day <= TRACE_DAYS:
            raise ManyModelsError(f"{path}: d{day_text} is not a day of the trace (d01..d{TRACE_DAYS})")
        same = files.setdefault(day, {}).get(match["kind"])
        if same is not None:
            raise ManyModelsError(f"{path}: d{day_text} {match['kind']} is also in {same.name}; keep one of the two")
        files[day][match["kind"]] = path
    if not files:
        raise ManyModelsError(f"{directory}: no trace files (*.anon.dNN.csv) found")
    orphans = [
        str(p) for day, kinds in files.items() if INVOCATIONS not in kinds for p in kinds.values()
    ]
    if orphans:
        raise ManyModelsError(
            f"{orphans[0]}: no {file_name(INVOCATIONS, int(FILE_PATTERN.match(Path(orphans[0]).name)['day']))}"
            " for this day (the three file kinds must cover the same days; durations and memory may be missing, "
            "invocations may not)"
        )
    return TraceLayout(directory, files)
