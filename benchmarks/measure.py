"""Run a command in a subprocess; return wall seconds and the peak summed RSS of its process tree."""

from __future__ import annotations

import subprocess
import sys
import time

import psutil


def measure(code: str, env: dict | None = None) -> tuple[float, float]:
    """Run `python -c code`; (seconds, peak MB of the whole process tree, sampled every 50 ms)."""
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-c", code], env=env)
    parent = psutil.Process(process.pid)
    peak = 0
    while process.poll() is None:
        try:
            rss = parent.memory_info().rss + sum(
                child.memory_info().rss for child in parent.children(recursive=True))
            peak = max(peak, rss)
        except psutil.Error:
            pass
        time.sleep(0.05)
    seconds = time.perf_counter() - start
    if process.returncode != 0:
        raise RuntimeError(f"benchmark step failed ({process.returncode}): {code[:200]}")
    return seconds, peak / 1e6


def best_of(function, repeat: int) -> tuple[float, object]:
    """The shortest wall time of `repeat` calls, and the last call's result."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return min(times), result


def markdown_table(rows: list[dict]) -> str:
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(f"{v:.2f}" if isinstance(v, float) else str(v) for v in row.values()) + " |")
    return "\n".join(lines)
