"""Hand-made trace files for tests: a few functions, counts given per minute."""

from __future__ import annotations

import csv
from pathlib import Path

from pipeline.trace.schema import (
    DURATION_COLUMNS,
    DURATIONS,
    INVOCATION_COLUMNS,
    INVOCATIONS,
    MEMORY,
    MEMORY_COLUMNS,
    file_name,
)


def write_invocations(directory: Path, day: int, rows: list[tuple[str, str, str, str, dict[int, int]]]) -> Path:
    """rows: (owner, app, function, trigger, {minute: count})."""
    path = directory / file_name(INVOCATIONS, day)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(INVOCATION_COLUMNS)
        for owner, app, function, trigger, counts in rows:
            writer.writerow([owner, app, function, trigger] + [counts.get(m, 0) for m in range(1, 1441)])
    return path


def write_durations(directory: Path, day: int, keys: list[tuple[str, str, str]], average_ms: float = 100.0) -> Path:
    path = directory / file_name(DURATIONS, day)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(DURATION_COLUMNS)
        for owner, app, function in keys:
            writer.writerow([owner, app, function, average_ms, 10, 1.0, 500.0, 1, 2, 50, 100, 150, 400, 500])
    return path


def write_memory(directory: Path, day: int, apps: list[tuple[str, str]]) -> Path:
    path = directory / file_name(MEMORY, day)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(MEMORY_COLUMNS)
        for owner, app in apps:
            writer.writerow([owner, app, 100, 150.0, 100, 110, 130, 150, 160, 180, 190, 200])
    return path


def tiny_trace(directory: Path) -> Path:
    """Two days, four functions in three apps; one function never fires, one only on day 2."""
    directory.mkdir(parents=True, exist_ok=True)
    day1 = [
        ("o1", "a1", "f1", "http", {1: 3, 2: 1, 1440: 2}),
        ("o1", "a1", "f2", "timer", {m: 1 for m in range(1, 1441, 60)}),
        ("o2", "a2", "f3", "queue", {}),
    ]
    day2 = [
        ("o1", "a1", "f1", "http", {700: 5}),
        ("o2", "a2", "f3", "queue", {}),
        ("o3", "a3", "f4", "event", {m: 2 for m in range(1, 1441)}),
    ]
    write_invocations(directory, 1, day1)
    write_invocations(directory, 2, day2)
    write_durations(directory, 1, [r[:3] for r in day1])
    write_durations(directory, 2, [r[:3] for r in day2])
    write_memory(directory, 1, [("o1", "a1"), ("o2", "a2")])
    return directory
