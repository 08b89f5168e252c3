"""Ingest a trace directory into one DuckDB file, atomically and idempotently.

Per-day work (parse, validate, reshape the 1,440 minute columns to non-zero rows) is independent
and runs on dask.distributed; each day is staged as Parquet, then one DuckDB transaction builds
the tables in a temporary file that replaces the target only when every check has passed.

Tables:
- functions(function_id, owner, app, function, trigger, trigger_changed, first_day, last_day, days_present)
- function_days(function_id, day, trigger, invocations, active_minutes): every row of every
  invocations file, including rows with no invocation at all;
- invocations(function_id, day, minute, count): non-zero minutes only;
- durations(function_id, day, <the 11 duration columns>), memory(app_id, owner, app, day, <memory columns>),
  apps(app_id, owner, app, functions);
- ingest_log(day, kind, file, bytes, rows, functions, csv_invocations, table_invocations, status);
- quirks(day, kind, quirk, rows): the real trace's known data-quality quirks, kept and counted;
- trace_meta(key, value): source ("synthetic" or "azure2019"), days, fingerprint of the inputs.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from ..cluster import map_on_cluster
from ..db import frame, scalar
from ..errors import ManyModelsError
from ..files import fault_point, output_lock, remove_stale_temps, temp_sibling
from ..logs import log
from . import validate
from .schema import (
    DURATION_COLUMNS,
    DURATIONS,
    INVOCATIONS,
    KEY_COLUMNS,
    KINDS,
    MEMORY,
    MEMORY_COLUMNS,
    MINUTE_COLUMNS,
    SYNTHETIC_MANIFEST,
    TraceLayout,
    discover,
)

INGEST_FORMAT = "manymodels-ingest-1"


@dataclass(frozen=True)
class IngestResult:
    db: Path
    days: list[int]
    functions: int
    invocations: int
    skipped: bool


def stage_day(day: int, files: dict[str, str], staging: str) -> dict:
    """Validate one day's files and write them to Parquet under `staging`; return its ingest records."""
    staging_dir = Path(staging)
    records: list[dict] = []
    quirks: list[dict] = []

    path = Path(files[INVOCATIONS])
    frame = validate.read_frame(path, INVOCATIONS)
    validate.check_triggers(path, frame)
    matrix = validate.count_matrix(path, frame)
    validate.check_keys_unique(path, frame, KEY_COLUMNS)
    # polars hands the minute columns over column-major: its transpose (minute x function) is
    # C-contiguous, so the non-zero scan and the per-function sums run over memory in order
    by_minute = matrix.T
    n_rows = frame.height
    nonzero = np.flatnonzero(by_minute)
    minute_index, rows = np.divmod(nonzero, n_rows)
    pl.DataFrame({
        "row_id": rows.astype(np.int32),
        "minute": (minute_index + 1).astype(np.int16),
        "count": by_minute.ravel()[nonzero].astype(np.int32),
    }).write_parquet(staging_dir / f"invocations_d{day:02d}.parquet", compression="lz4")
    per_row = by_minute.sum(axis=0, dtype=np.int64)
    active = np.count_nonzero(by_minute, axis=0).astype(np.int32)
    frame.select(
        pl.int_range(pl.len(), dtype=pl.Int32).alias("row_id"),
        pl.col("HashOwner").alias("owner"), pl.col("HashApp").alias("app"),
        pl.col("HashFunction").alias("function"), pl.col("Trigger").alias("trigger"),
    ).with_columns(
        pl.lit(day, dtype=pl.Int16).alias("day"),
        pl.Series("invocations", per_row),
        pl.Series("active_minutes", active),
    ).write_parquet(staging_dir / f"keys_d{day:02d}.parquet", compression="lz4")
    records.append({"day": day, "kind": INVOCATIONS, "file": path.name, "bytes": path.stat().st_size,
                    "rows": frame.height, "functions": frame.height,
                    "csv_invocations": int(per_row.sum()), "status": "ingested"})
    del matrix, frame

    for kind, keys, out_name in ((DURATIONS, KEY_COLUMNS, "durations"), (MEMORY, ["HashOwner", "HashApp"], "memory")):
        if kind not in files:
            records.append({"day": day, "kind": kind, "file": None, "bytes": 0, "rows": 0, "functions": 0,
                            "csv_invocations": None, "status": "missing"})
            quirks.append({"day": day, "kind": kind, "quirk": "file missing for this day", "rows": 0})
            continue
        path = Path(files[kind])
        frame = validate.read_frame(path, kind)
        numeric = [c for c in frame.columns if c not in KEY_COLUMNS]
        frame, non_finite = validate.non_finite_to_null(frame, numeric)
        if non_finite:
            quirks.append({"day": day, "kind": kind, "quirk": "NaN/inf values set to null (left out of statistics)",
                           "rows": non_finite})
        validate.check_non_negative(path, frame, numeric)
        duplicates = frame.height - frame.select(keys).n_unique()
        if duplicates:
            quirks.append({"day": day, "kind": kind, "quirk": "duplicate key rows (kept)", "rows": duplicates})
        if kind == DURATIONS:
            zero = int((frame["Average"] == 0).sum())
            if zero:
                quirks.append({"day": day, "kind": kind, "quirk": "average duration of 0 ms", "rows": zero})
            no_extremes = int(frame["Minimum"].is_null().sum() + frame["Maximum"].is_null().sum())
            if no_extremes:
                quirks.append({"day": day, "kind": kind, "quirk": "Minimum/Maximum missing", "rows": no_extremes})
        frame.with_columns(pl.lit(day, dtype=pl.Int16).alias("day")).write_parquet(
            staging_dir / f"{out_name}_d{day:02d}.parquet", compression="lz4")
        records.append({"day": day, "kind": kind, "file": path.name, "bytes": path.stat().st_size,
                        "rows": frame.height, "functions": frame.select(keys).n_unique(),
                        "csv_invocations": None, "status": "ingested"})
    return {"records": records, "quirks": quirks}


def _fingerprint(layout: TraceLayout) -> str:
    entries = []
    for day in layout.days:
        for kind in KINDS:
            path = layout.path(day, kind)
            if path is not None:
                stat = path.stat()
                entries.append([path.name, stat.st_size, stat.st_mtime_ns])
    manifest = layout.directory / SYNTHETIC_MANIFEST
    if manifest.exists():
        entries.append([manifest.name, manifest.stat().st_size, manifest.stat().st_mtime_ns])
    return json.dumps({"format": INGEST_FORMAT, "files": entries}, sort_keys=True)


def _existing_fingerprint(db: Path) -> str | None:
    if not db.exists():
        return None
    try:
        with duckdb.connect(str(db), read_only=True) as con:
            return scalar(con, "SELECT value FROM trace_meta WHERE key = 'fingerprint'")
    except duckdb.Error:
        return None


def trace_source(directory: Path) -> tuple[str, dict | None]:
    manifest = Path(directory) / SYNTHETIC_MANIFEST
    if manifest.exists():
        return "synthetic", json.loads(manifest.read_text())
    return "azure2019", None


BUILD_SQL = """
CREATE TABLE staged_keys AS SELECT * FROM read_parquet('{s}/keys_d*.parquet');
CREATE TABLE staged_durations AS SELECT * FROM {durations_source};
CREATE TABLE functions AS
WITH seen AS (
    SELECT owner, app, function, trigger, day FROM staged_keys
    UNION ALL
    SELECT HashOwner, HashApp, HashFunction, NULL, day FROM staged_durations
), grouped AS (
    SELECT owner, app, function,
           arg_min(trigger, day) FILTER (WHERE trigger IS NOT NULL) AS trigger,
           count(DISTINCT trigger) > 1 AS trigger_changed,
           min(day)::SMALLINT AS first_day, max(day)::SMALLINT AS last_day,
           count(DISTINCT day)::SMALLINT AS days_present
    FROM seen GROUP BY owner, app, function
)
SELECT (row_number() OVER (ORDER BY owner, app, function))::INTEGER AS function_id, *
FROM grouped ORDER BY function_id;
CREATE TABLE apps AS
SELECT (row_number() OVER (ORDER BY owner, app))::INTEGER AS app_id, owner, app, count(*)::INTEGER AS functions
FROM functions GROUP BY owner, app ORDER BY app_id;
CREATE TABLE function_days AS
SELECT f.function_id, k.day, k.trigger, k.invocations::BIGINT AS invocations, k.active_minutes::SMALLINT AS active_minutes, k.row_id
FROM staged_keys k JOIN functions f USING (owner, app, function)
ORDER BY k.day, f.function_id;
CREATE TABLE invocations AS
SELECT d.function_id, i.day, i.minute, i.count
FROM (SELECT *, {day_expr} AS day FROM read_parquet('{s}/invocations_d*.parquet', filename=true)) i
JOIN function_days d ON d.day = i.day AND d.row_id = i.row_id;
ALTER TABLE function_days DROP COLUMN row_id;
CREATE TABLE durations AS
SELECT f.function_id, d.* EXCLUDE (HashOwner, HashApp, HashFunction)
FROM staged_durations d JOIN functions f ON f.owner = d.HashOwner AND f.app = d.HashApp AND f.function = d.HashFunction
ORDER BY d.day, f.function_id;
CREATE TABLE memory AS
SELECT a.app_id, m.HashOwner AS owner, m.HashApp AS app, m.* EXCLUDE (HashOwner, HashApp)
FROM {memory_source} m LEFT JOIN apps a ON a.owner = m.HashOwner AND a.app = m.HashApp
ORDER BY m.day, a.app_id;
DROP TABLE staged_keys;
DROP TABLE staged_durations;
"""

EMPTY_DURATIONS = "(SELECT * FROM (SELECT NULL::VARCHAR AS HashOwner, NULL::VARCHAR AS HashApp, NULL::VARCHAR AS HashFunction, " + \
    ", ".join(f"NULL::{'BIGINT' if c == 'Count' else 'DOUBLE'} AS {c}" for c in DURATION_COLUMNS[3:]) + \
    ", NULL::SMALLINT AS day) WHERE false)"
EMPTY_MEMORY = "(SELECT * FROM (SELECT NULL::VARCHAR AS HashOwner, NULL::VARCHAR AS HashApp, NULL::BIGINT AS SampleCount, " + \
    ", ".join(f"NULL::DOUBLE AS {c}" for c in MEMORY_COLUMNS[3:]) + ", NULL::SMALLINT AS day) WHERE false)"


def _build(db_tmp: Path, staging: Path, outcomes: list[dict], layout: TraceLayout, fingerprint: str) -> tuple[int, int]:
    source, manifest = trace_source(layout.directory)
    has_durations = any(staging.glob("durations_d*.parquet"))
    has_memory = any(staging.glob("memory_d*.parquet"))
    staged = staging.as_posix()
    sql = BUILD_SQL.format(
        s=staged,
        durations_source=f"read_parquet('{staged}/durations_d*.parquet', union_by_name=true)" if has_durations else EMPTY_DURATIONS,
        day_expr="regexp_extract(filename, 'invocations_d(\\d+)\\.parquet', 1)::SMALLINT",
        memory_source=f"read_parquet('{staged}/memory_d*.parquet', union_by_name=true)" if has_memory else EMPTY_MEMORY,
    )
    con = duckdb.connect(str(db_tmp))
    try:
        con.execute("SET threads = 2; SET memory_limit = '3GB'; SET preserve_insertion_order = false")
        con.execute(f"SET temp_directory = '{staging.as_posix()}/duckdb_tmp'")
        con.execute("BEGIN TRANSACTION")
        con.execute(sql)
        records = pl.DataFrame([r for o in outcomes for r in o["records"]], infer_schema_length=None)
        table_totals = frame(con, "SELECT day, sum(count)::BIGINT AS total FROM invocations GROUP BY day")
        records = records.join(
            table_totals.rename({"total": "table_invocations"}).with_columns(pl.col("day").cast(pl.Int64)),
            on="day", how="left",
        ).with_columns(
            pl.when(pl.col("kind") == INVOCATIONS).then(pl.col("table_invocations").fill_null(0)).alias("table_invocations")
        ).sort("day", "kind")
        broken = records.filter((pl.col("kind") == INVOCATIONS) & (pl.col("csv_invocations") != pl.col("table_invocations")))
        if broken.height:
            row = broken.row(0, named=True)
            raise ManyModelsError(
                f"{row['file']}: conservation failed, CSV sum {row['csv_invocations']} != table sum {row['table_invocations']}")
        con.register("records_view", records.to_arrow())
        con.execute("CREATE TABLE ingest_log AS SELECT * FROM records_view")
        quirk_rows = [q for o in outcomes for q in o["quirks"]]
        changed = scalar(con, "SELECT count(*) FROM functions WHERE trigger_changed")
        if changed:
            quirk_rows.append({"day": 0, "kind": INVOCATIONS, "quirk": "trigger differs between days", "rows": int(changed)})
        no_duration = scalar(
            con, "SELECT count(*) FROM function_days fd WHERE invocations > 0 AND NOT EXISTS "
            "(SELECT 1 FROM durations d WHERE d.function_id = fd.function_id AND d.day = fd.day)")
        if no_duration and has_durations:
            quirk_rows.append({"day": 0, "kind": DURATIONS, "quirk": "invoked function-days with no duration row", "rows": int(no_duration)})
        quirks = pl.DataFrame(quirk_rows, schema={"day": pl.Int64, "kind": pl.String, "quirk": pl.String, "rows": pl.Int64})
        con.register("quirks_view", quirks.to_arrow())
        con.execute("CREATE TABLE quirks AS SELECT * FROM quirks_view ORDER BY day, kind, quirk")
        meta = {
            "source": source, "days": json.dumps(layout.days), "trace_dir": str(layout.directory),
            "fingerprint": fingerprint, "format": INGEST_FORMAT,
            "synthetic_manifest": json.dumps(manifest) if manifest else None,
        }
        con.execute("CREATE TABLE trace_meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
        con.executemany("INSERT INTO trace_meta VALUES (?, ?)", list(meta.items()))
        con.execute("INSERT INTO trace_meta VALUES ('content_digest', ?)", [json.dumps(content_digest(con))])
        con.execute("COMMIT")
        functions = scalar(con, "SELECT count(*) FROM functions")
        total = scalar(con, "SELECT coalesce(sum(count), 0) FROM invocations")
        con.execute("CHECKPOINT")
        for quirk in quirks.iter_rows(named=True):
            where = f"d{quirk['day']:02d}" if quirk["day"] else "all days"
            log.info("quirk kept: %s %s: %s (%d rows)", where, quirk["kind"], quirk["quirk"], quirk["rows"])
        return int(functions), int(total)
    finally:
        con.close()


# trace_meta keys that depend on the run (file times, the path as given), not on the data
RUN_DEPENDENT_META = ("fingerprint", "trace_dir", "content_digest")


def content_digest(con) -> dict:
    """Row count and an order-independent hash of the rows (DuckDB `hash`, summed) of every table.

    The database file itself is not byte-reproducible (DuckDB writes a random identifier into its
    header, and `trace_meta` keeps the input files' times for the up-to-date check), so this digest is
    what says whether two databases hold the same data: DVC tracks it (`--digest`) in place of the file."""
    names = [row[0] for row in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' ORDER BY table_name").fetchall()]
    excluded = ", ".join(f"'{key}'" for key in RUN_DEPENDENT_META)
    tables = {}
    for name in names:
        where = f"WHERE key NOT IN ({excluded})" if name == "trace_meta" else ""
        rows, row_hash = con.execute(
            f'SELECT count(*), coalesce(sum(hash(t)::HUGEINT), 0)::VARCHAR FROM "{name}" t {where}').fetchone()
        tables[name] = {"rows": int(rows), "row_hash_sum": row_hash}
    digest = hashlib.sha256(json.dumps(tables, sort_keys=True).encode()).hexdigest()
    return {"format": INGEST_FORMAT, "content_sha256": digest, "tables": tables}


def write_digest(db: Path, path: Path) -> dict:
    """Write the database's content digest (stored at ingest) to `path`, atomically; return it."""
    from ..db import connect_read_only, meta
    from ..files import write_text_atomic

    with connect_read_only(db) as con:
        stored = meta(con).get("content_digest")
        digest = json.loads(stored) if stored else content_digest(con)
        info = meta(con)
    digest = {"source": info["source"], "days": json.loads(info["days"]), **digest}
    write_text_atomic(Path(path), json.dumps(digest, indent=2, sort_keys=True) + "\n")
    log.info("wrote %s: content digest %s", path, digest["content_sha256"][:16])
    return digest


def ingest(trace_dir: Path, db: Path, scheduler: str | None = None, workers: int | None = None,
           force: bool = False) -> IngestResult:
    """Ingest every day found in `trace_dir` into `db`. Re-running on unchanged files changes nothing."""
    layout = discover(Path(trace_dir))
    db = Path(db)
    if db.is_dir():
        raise ManyModelsError(f"{db}: is a directory; --db takes the path of the database file")
    fingerprint = _fingerprint(layout)
    if not force and _existing_fingerprint(db) == fingerprint:
        with duckdb.connect(str(db), read_only=True) as con:
            functions = scalar(con, "SELECT count(*) FROM functions")
            total = scalar(con, "SELECT coalesce(sum(count), 0) FROM invocations")
        log.info("%s is up to date with %s (%d days); nothing to do", db, trace_dir, len(layout.days))
        return IngestResult(db, layout.days, int(functions), int(total), skipped=True)

    db.parent.mkdir(parents=True, exist_ok=True)
    with output_lock(db):  # a second ingest into the same database fails at once
        remove_stale_temps(db.parent)  # staging folders and temporary databases of killed runs
        _check_not_open(db)
        return _ingest_locked(layout, trace_dir, db, fingerprint, scheduler, workers)


def _check_not_open(db: Path) -> None:
    """Fail when another process has `db` open read-write: replacing the file would silently lose
    that process's later writes. (DuckDB holds a POSIX write lock on a database opened read-write.)"""
    if not db.exists():
        return
    with db.open("rb") as handle:
        try:
            fcntl.lockf(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as error:
            raise ManyModelsError(f"{db}: another process has this database open read-write; close it "
                                  "(or open it read_only=True) and run ingest again") from error
        fcntl.lockf(handle.fileno(), fcntl.LOCK_UN)


def _ingest_locked(layout: TraceLayout, trace_dir: Path, db: Path, fingerprint: str, scheduler: str | None,
                   workers: int | None) -> IngestResult:
    staging = Path(tempfile.mkdtemp(prefix=f".ingest-{os.getpid()}-", dir=db.parent))
    db_tmp = temp_sibling(db)
    try:
        log.info("read %s: %d days, %d files", trace_dir, len(layout.days),
                 sum(len(k) for k in layout.files.values()))
        jobs = [(day, {k: str(p) for k, p in layout.files[day].items()}) for day in layout.days]
        started = time.perf_counter()
        outcomes = map_on_cluster(_stage_job, jobs, "ingest days", scheduler=scheduler, workers=workers,
                                  staging=str(staging))
        staged = time.perf_counter()
        log.info("validated and staged %d days in %.1f s", len(jobs), staged - started)
        fault_point("ingest:staged")
        db_tmp.unlink(missing_ok=True)
        functions, total = _build(db_tmp, staging, outcomes, layout, fingerprint)
        fault_point("ingest:built")
        _check_not_open(db)
        os.replace(db_tmp, db)
        log.info("wrote %s: %d functions, %d invocations over days %s (database built in %.1f s)", db, functions,
                 total, layout.days, time.perf_counter() - staged)
        return IngestResult(db, layout.days, functions, total, skipped=False)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        db_tmp.unlink(missing_ok=True)
        Path(str(db_tmp) + ".wal").unlink(missing_ok=True)


def ingest_summary(db: Path) -> dict:
    """What the database holds and the per-day conservation proof, as a small JSON-able dict."""
    from ..db import connect_read_only, meta

    with connect_read_only(db) as con:
        info = meta(con)
        log_rows = frame(con, "SELECT * FROM ingest_log WHERE kind = 'invocations_per_function_md' ORDER BY day")
        return {
            "source": info["source"],
            "days": json.loads(info["days"]),
            "functions": int(scalar(con, "SELECT count(*) FROM functions")),
            "apps": int(scalar(con, "SELECT count(*) FROM apps")),
            "invocations": int(scalar(con, "SELECT coalesce(sum(count), 0) FROM invocations")),
            "nonzero_minutes": int(scalar(con, "SELECT count(*) FROM invocations")),
            "conserved": bool((log_rows["csv_invocations"] == log_rows["table_invocations"]).all()),
            "per_day": log_rows.select("day", "file", "rows", "csv_invocations", "table_invocations").to_dicts(),
            "missing_files": frame(con, "SELECT day, kind FROM ingest_log WHERE status = 'missing'").to_dicts(),
            "quirks": frame(con, "SELECT * FROM quirks").to_dicts(),
        }


def _stage_job(job: tuple[int, dict[str, str]], staging: str) -> dict:
    day, files = job
    return stage_day(day, files, staging)


__all__ = ["MINUTE_COLUMNS", "IngestResult", "ingest", "stage_day", "trace_source"]
