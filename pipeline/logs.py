"""Logging and progress for long work: every stage logs what it read and wrote."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

T = TypeVar("T")
log = logging.getLogger("manymodels")


def configure(verbose: bool = False) -> None:
    if log.handlers:
        return
    console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)
    handler = RichHandler(console=console, show_path=False, show_time=True, markup=False, rich_tracebacks=False)
    log.addHandler(handler)
    log.setLevel(logging.DEBUG if verbose else logging.INFO)
    log.propagate = False


def progress_enabled() -> bool:
    return os.environ.get("MANYMODELS_NO_PROGRESS", "") == ""


@contextmanager
def progress_bar(description: str, total: int | None) -> Iterator[callable]:
    """Yield an `advance(n=1)` function that moves a rich progress bar (to stderr)."""
    if not progress_enabled():
        yield lambda n=1: None
        return
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    console = Console(stderr=True)
    with Progress(*columns, transient=False, console=console) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n=1: progress.advance(task, n)


def track(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    items = list(items) if total is None and not hasattr(items, "__len__") else items
    n = total if total is not None else len(items)  # type: ignore[arg-type]
    with progress_bar(description, n) as advance:
        for item in items:
            yield item
            advance()
