"""Small helpers around a DuckDB connection to the trace database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from .errors import ManyModelsError

TRACE_TABLES = ("trace_meta", "functions", "function_days", "invocations", "durations", "memory")


def connect_read_only(db: Path) -> duckdb.DuckDBPyConnection:
    db = Path(db)
    if not db.exists():
        raise ManyModelsError(f"{db}: database not found (run `manymodels ingest` first)")
    try:
        con = duckdb.connect(str(db), read_only=True)
    except duckdb.Error as error:
        message = " ".join(str(error).split())
        raise ManyModelsError(f"{db}: not a readable DuckDB database ({message})") from error
    tables = {row[0] for row in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    missing = [t for t in TRACE_TABLES if t not in tables]
    if missing:
        con.close()
        raise ManyModelsError(f"{db}: not a trace database written by `manymodels ingest` "
                              f"(no table {', '.join(missing)})")
    return con


def frame(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> pl.DataFrame:
    """Run a query and return its result as a polars frame."""
    return con.sql(sql, params=params).pl()


def meta(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    return dict(con.execute("SELECT key, value FROM trace_meta").fetchall())


def scalar(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> Any:
    """The single value a query returns (fetched completely, as DuckDB 2 requires)."""
    rows = con.execute(sql, params).fetchall() if params else con.sql(sql).fetchall()
    return rows[0][0] if rows else None
