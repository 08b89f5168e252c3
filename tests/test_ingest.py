"""Ingest: conservation against an independent sum of the raw CSV, atomicity, idempotency, bad input."""

from __future__ import annotations

import csv
import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from pipeline.errors import ManyModelsError
from pipeline.trace.ingest import ingest, ingest_summary
from pipeline.trace.schema import DURATIONS, INVOCATIONS, MEMORY, file_name

from .tracefiles import tiny_trace, write_durations, write_invocations


def raw_totals(trace: Path) -> dict[int, int]:
    """Per-day invocation totals summed with the csv module, independently of the ingest code."""
    totals = {}
    for path in sorted(trace.glob(f"{INVOCATIONS}.anon.d*.csv")):
        day = int(path.name.split(".d")[-1][:2])
        with path.open(newline="") as handle:
            reader = csv.reader(handle)
            next(reader)
            totals[day] = sum(int(v) for row in reader for v in row[4:])
    return totals


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def table(db: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.sql(sql).fetchall()


def test_tiny_trace_tables(tmp_path):
    trace = tiny_trace(tmp_path / "trace")
    db = tmp_path / "trace.duckdb"
    result = ingest(trace, db)
    assert result.days == [1, 2]
    functions = table(db, "SELECT function, trigger, first_day, last_day FROM functions ORDER BY function")
    assert functions == [("f1", "http", 1, 2), ("f2", "timer", 1, 1), ("f3", "queue", 1, 2), ("f4", "event", 2, 2)]
    # every row of every invocations file is kept, including rows with no invocation at all
    assert table(db, "SELECT count(*) FROM function_days") == [(6,)]
    assert table(db, "SELECT invocations, active_minutes FROM function_days JOIN functions USING (function_id) "
                     "WHERE function = 'f3' ORDER BY day") == [(0, 0), (0, 0)]
    # only non-zero minutes are stored, with the exact minute and count
    rows = table(db, "SELECT day, minute, count FROM invocations JOIN functions USING (function_id) "
                     "WHERE function = 'f1' ORDER BY day, minute")
    assert rows == [(1, 1, 3), (1, 2, 1), (1, 1440, 2), (2, 700, 5)]
    assert table(db, "SELECT day, status FROM ingest_log WHERE kind = ? ORDER BY day".replace("?", f"'{MEMORY}'")) == [
        (1, "ingested"), (2, "missing")]
    summary = ingest_summary(db)
    assert summary["conserved"] and summary["source"] == "azure2019"
    assert summary["invocations"] == sum(raw_totals(trace).values())


def test_conservation_on_synthetic_trace(small_synthetic_trace):
    trace, db = small_synthetic_trace
    expected = raw_totals(trace)
    per_day = dict(table(db, "SELECT day, sum(count) FROM invocations GROUP BY day"))
    assert per_day == expected
    logged = dict(table(db, f"SELECT day, csv_invocations FROM ingest_log WHERE kind = '{INVOCATIONS}'"))
    assert logged == expected
    assert table(db, "SELECT value FROM trace_meta WHERE key = 'source'") == [("synthetic",)]
    # function_days totals agree with the minute table
    assert table(db, "SELECT sum(invocations) FROM function_days") == [(sum(expected.values()),)]


def test_ingest_twice_changes_nothing_and_rebuild_is_identical(tmp_path):
    trace = tiny_trace(tmp_path / "trace")
    db = tmp_path / "trace.duckdb"
    ingest(trace, db)
    before = digest(db)
    assert ingest(trace, db).skipped
    assert digest(db) == before
    other = tmp_path / "again.duckdb"
    ingest(trace, other, force=True)
    for name in ["functions", "function_days", "invocations", "durations", "memory", "apps"]:
        order = "ORDER BY ALL"
        assert table(db, f"SELECT * FROM {name} {order}") == table(other, f"SELECT * FROM {name} {order}")


def test_failed_ingest_leaves_previous_database_intact(tmp_path):
    trace = tiny_trace(tmp_path / "trace")
    db = tmp_path / "trace.duckdb"
    ingest(trace, db)
    before = digest(db)
    bad = tmp_path / "bad"
    shutil.copytree(trace, bad)
    path = bad / file_name(INVOCATIONS, 2)
    path.write_text(path.read_text().replace("o3,a3,f4,event,2", "o3,a3,f4,event,-2", 1))
    with pytest.raises(ManyModelsError, match="negative"):
        ingest(bad, db)
    assert digest(db) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad", "trace", "trace.duckdb"]  # no temp files left


def _truncate(path: Path) -> None:
    text = path.read_text()
    path.write_text(text[: len(text) - 1500])


def _drop_column(path: Path) -> None:
    lines = path.read_text().splitlines()
    path.write_text("\n".join(",".join(line.split(",")[:-1]) for line in lines) + "\n")


def _extra_column(path: Path) -> None:
    lines = path.read_text().splitlines()
    path.write_text("\n".join(line + (",Extra" if i == 0 else ",1") for i, line in enumerate(lines)) + "\n")


def _replace(old: str, new: str):
    def apply(path: Path) -> None:
        path.write_text(path.read_text().replace(old, new, 1))
    return apply


def _duplicate_row(path: Path) -> None:
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines + [lines[1]]) + "\n")


BAD_INVOCATIONS = {
    "truncated file": (_truncate, r"d02\.csv, line 4.*(truncated|missing value)"),
    "missing column": (_drop_column, r"line 1: missing column\(s\) '1440'"),
    "extra column": (_extra_column, r"line 1: unexpected column\(s\) 'Extra'"),
    "non-integer count": (_replace("o3,a3,f4,event,2", "o3,a3,f4,event,2.5"), r"line 4, column '1': '2.5' is not an integer"),
    "negative count": (_replace("o3,a3,f4,event,2", "o3,a3,f4,event,-2"), r"line 4, column '1': negative"),
    "duplicate key": (_duplicate_row, r"duplicate key HashOwner/HashApp/HashFunction on lines 2, 5"),
    "empty file": (lambda p: p.write_text(""), r"empty file"),
    "header only": (lambda p: p.write_text(p.read_text().splitlines()[0] + "\n"), r"no data rows"),
    "unknown trigger": (_replace("event", "cron"), r"line 4, column 'Trigger': unknown trigger 'cron'"),
}


@pytest.mark.parametrize("case", sorted(BAD_INVOCATIONS))
def test_bad_invocations_file_names_file_row_and_column(tmp_path, case):
    trace = tiny_trace(tmp_path / "trace")
    corrupt, message = BAD_INVOCATIONS[case]
    corrupt(trace / file_name(INVOCATIONS, 2))
    with pytest.raises(ManyModelsError, match=message) as raised:
        ingest(trace, tmp_path / "trace.duckdb")
    assert file_name(INVOCATIONS, 2) in str(raised.value)
    assert not (tmp_path / "trace.duckdb").exists()


@pytest.mark.parametrize("name,message", [
    (f"{INVOCATIONS}.anon.d15.csv", "d15 is not a day of the trace"),
    (f"{INVOCATIONS}.anon.d3.csv", "d3 is not a day of the trace"),
    ("invocations.d03.csv", "not a file of the Azure 2019 trace"),
    (f"{DURATIONS}.anon.d05.csv", f"no {INVOCATIONS}.anon.d05.csv for this day"),
])
def test_wrong_file_names_and_mismatched_days(tmp_path, name, message):
    trace = tiny_trace(tmp_path / "trace")
    shutil.copy(trace / file_name(DURATIONS, 1), trace / name)
    with pytest.raises(ManyModelsError, match=message):
        ingest(trace, tmp_path / "trace.duckdb")


def test_bad_durations_value_is_located(tmp_path):
    trace = tiny_trace(tmp_path / "trace")
    path = trace / file_name(DURATIONS, 1)
    path.write_text(path.read_text().replace("o1,a1,f2,100.0", "o1,a1,f2,-100.0"))
    with pytest.raises(ManyModelsError, match=r"d01\.csv, line 3, column 'Average': negative"):
        ingest(trace, tmp_path / "trace.duckdb")


def test_known_quirks_are_kept_and_reported(tmp_path):
    trace = tiny_trace(tmp_path / "trace")
    # duplicate duration rows, a 0 ms average, a function with no duration row, a trigger change
    write_durations(trace, 1, [("o1", "a1", "f1"), ("o1", "a1", "f1")], average_ms=0.0)
    write_invocations(trace, 2, [("o1", "a1", "f1", "queue", {5: 1})])
    db = tmp_path / "trace.duckdb"
    ingest(trace, db)
    quirks = {row[0] for row in table(db, "SELECT quirk FROM quirks")}
    assert {"duplicate key rows (kept)", "average duration of 0 ms", "trigger differs between days",
            "invoked function-days with no duration row"} <= quirks
    assert table(db, "SELECT count(*) FROM durations WHERE day = 1") == [(2,)]
    assert table(db, "SELECT trigger, trigger_changed FROM functions WHERE function = 'f1'") == [("http", True)]


def test_local_cluster_ingest_matches_threads(tmp_path):
    trace = tiny_trace(tmp_path / "trace")
    ingest(trace, tmp_path / "a.duckdb", scheduler="threads")
    ingest(trace, tmp_path / "b.duckdb", scheduler="local", workers=2)
    sql = "SELECT * FROM invocations ORDER BY ALL"
    assert table(tmp_path / "a.duckdb", sql) == table(tmp_path / "b.duckdb", sql)


def test_cli_bad_input_is_one_line_and_nonzero(tmp_path):
    trace = tiny_trace(tmp_path / "trace")
    _duplicate_row(trace / file_name(INVOCATIONS, 1))
    run = subprocess.run([sys.executable, "-m", "pipeline.cli", "ingest", "--trace", str(trace),
                          "--db", str(tmp_path / "x.duckdb"), "--scheduler", "threads"],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 2
    errors = [line for line in run.stderr.splitlines() if line.startswith("manymodels: error:")]
    assert len(errors) == 1 and "duplicate key" in errors[0]


def test_cli_help_works():
    for command in ([], ["synth-trace"], ["ingest"], ["download"]):
        run = subprocess.run([sys.executable, "-m", "pipeline.cli", *command, "--help"], capture_output=True, text=True, check=False)
        assert run.returncode == 0, run.stderr
        assert "Usage" in run.stdout


def test_trace_with_invocations_only(tmp_path):
    trace = tmp_path / "trace"
    trace.mkdir()
    write_invocations(trace, 3, [("o", "a", "f", "http", {1: 2, 9: 1})])
    result = ingest(trace, tmp_path / "trace.duckdb")
    assert result.days == [3] and result.invocations == 3
    assert table(tmp_path / "trace.duckdb", "SELECT count(*) FROM durations") == [(0,)]
    assert sorted(table(tmp_path / "trace.duckdb", "SELECT kind, status FROM ingest_log")) == sorted([
        (DURATIONS, "missing"), (INVOCATIONS, "ingested"), (MEMORY, "missing")])


def test_ingest_on_an_existing_cluster_by_address(tmp_path):
    from distributed import LocalCluster

    trace = tiny_trace(tmp_path / "trace")
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster:
        result = ingest(trace, tmp_path / "trace.duckdb", scheduler=cluster.scheduler_address)
    assert result.invocations == sum(raw_totals(trace).values())


def test_content_digest_depends_on_the_data_not_on_the_file(tmp_path):
    """Two ingests of the same CSVs (new file times, another path) give different database files but
    the same content digest; a changed count changes it. Cross-checked: the digest's invocations row
    count equals a plain count of the non-zero minutes in the CSVs."""
    import csv
    import json
    import os
    import shutil

    from pipeline.trace.ingest import write_digest
    from pipeline.trace.synthetic import SyntheticTraceConfig, synthesize_trace

    first = tmp_path / "a"
    synthesize_trace(SyntheticTraceConfig(functions=40, days=1, seed=3), first)
    second = tmp_path / "b"
    shutil.copytree(first, second)
    for path in second.iterdir():
        os.utime(path, (1_000_000_000, 1_000_000_000))
    digests = []
    for trace in (first, second):
        ingest(trace, tmp_path / f"{trace.name}.duckdb", scheduler="threads")
        digests.append(write_digest(tmp_path / f"{trace.name}.duckdb", tmp_path / f"{trace.name}.json"))
    assert digests[0] == digests[1]
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    with open(next(first.glob("invocations_per_function_md.anon.d01.csv"))) as handle:
        nonzero = sum(1 for row in csv.DictReader(handle) for k, v in row.items() if k.isdigit() and int(v) > 0)
    assert digests[0]["tables"]["invocations"]["rows"] == nonzero
    path = next(second.glob("invocations_per_function_md.anon.d01.csv"))
    lines = path.read_text().splitlines()
    fields = lines[1].split(",")
    fields[-1] = str(int(fields[-1]) + 1)
    path.write_text("\n".join([lines[0], ",".join(fields), *lines[2:]]) + "\n")
    ingest(second, tmp_path / "b.duckdb", scheduler="threads")
    changed = write_digest(tmp_path / "b.duckdb", tmp_path / "b.json")
    assert changed["content_sha256"] != digests[0]["content_sha256"]
    assert json.loads((tmp_path / "b.json").read_text())["tables"]["functions"] == digests[0]["tables"]["functions"]
