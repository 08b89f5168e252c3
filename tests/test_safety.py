"""Data safety and one-line errors (issue 11): one test per case of the issue's table.

Each test reproduces the case and asserts the new behaviour: the exit code, the one line naming
file/line/column or flag, the previous output byte-identical, nothing left behind."""

from __future__ import annotations

import gzip
import http.server
import json
import lzma
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path
from unittest import mock

import duckdb
import numpy as np
import polars as pl
import pytest
import yaml

from pipeline.errors import ManyModelsError
from pipeline.files import atomic_output_dir, output_lock, remove_stale_temps, sha256_file
from pipeline.trace.ingest import ingest
from pipeline.trace.schema import DURATIONS, INVOCATIONS, MEMORY, file_name
from pipeline.workload.synthesize import WorkloadConfig, synthesize
from tests.tracefiles import tiny_trace, write_durations, write_invocations

ROOT = Path(__file__).resolve().parent.parent


# ----------------------------------------------------------------------------- helpers
def cli(args: list[str], capsys) -> tuple[int, str]:
    """Run the real console entry point in-process; its exit code and stderr."""
    from pipeline.cli import app

    capsys.readouterr()
    with mock.patch.object(sys, "argv", ["manymodels", *map(str, args)]), pytest.raises(SystemExit) as exit_:
        app()
    return int(exit_.value.code or 0), capsys.readouterr().err


def assert_one_line_error(code: int, err: str, *fragments: str) -> str:
    assert code == 2, err
    assert "Traceback" not in err
    line = err.strip().splitlines()[-1]
    assert line.startswith("manymodels: error: "), err
    for fragment in fragments:
        assert fragment in line, line
    return line


def run_cli(args: list[str], env: dict | None = None, timeout: float = 180, **kwargs) -> subprocess.CompletedProcess:
    """The CLI as a subprocess (only where the process itself is the point: signals, worker logs)."""
    environment = dict(os.environ, PYTHONPATH=str(ROOT), MANYMODELS_NO_PROGRESS="1", **(env or {}))
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *map(str, args)], env=environment,
                          capture_output=True, text=True, timeout=timeout, check=False, **kwargs)


def snapshot(directory: Path) -> dict[str, str]:
    """Every file under `directory` (hidden ones included) and its SHA-256."""
    return {str(p.relative_to(directory)): sha256_file(p) for p in sorted(Path(directory).rglob("*")) if p.is_file()}


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in Path(directory).iterdir() if p.name.startswith("."))


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("tiny")
    trace = tiny_trace(root / "trace")
    db = root / "trace.duckdb"
    ingest(trace, db)
    return trace, db


@pytest.fixture(scope="module")
def workload(small_synthetic_trace, tmp_path_factory) -> Path:
    _, db = small_synthetic_trace
    out = tmp_path_factory.mktemp("workload") / "w"
    synthesize(WorkloadConfig(mode="replay", models=20, minutes=180, seed=1), out, db=db)
    return out


@pytest.fixture
def workload_copy(workload, tmp_path) -> Path:
    copy = tmp_path / "w"
    shutil.copytree(workload, copy)
    return copy


def rewrite_requests(directory: Path, requests: pl.DataFrame) -> None:
    """Replace requests.parquet and update the manifest as a hand-made workload would (checksums match)."""
    requests.write_parquet(directory / "requests.parquet")
    manifest = json.loads((directory / "manifest.json").read_text())
    manifest["checksums"]["requests.parquet"] = sha256_file(directory / "requests.parquet")
    manifest["rows"]["requests"] = requests.height
    (directory / "manifest.json").write_text(json.dumps(manifest))


# ------------------------------------------------------------------ trace files (ingest)
@pytest.mark.parametrize("suffix, opener", [(".gz", gzip.open), (".xz", lzma.open)])
def test_compressed_day_beside_plain_days_is_ingested(tiny, tmp_path, suffix, opener):
    trace, db = tiny
    mixed = tmp_path / "trace"
    shutil.copytree(trace, mixed)
    plain = mixed / file_name(INVOCATIONS, 2)
    with opener(str(plain) + suffix, "wb") as handle:
        handle.write(plain.read_bytes())
    plain.unlink()
    result = ingest(mixed, tmp_path / "mixed.duckdb")
    assert result.days == [1, 2]
    with duckdb.connect(str(db), read_only=True) as a, duckdb.connect(str(tmp_path / "mixed.duckdb"), read_only=True) as b:
        query = "SELECT * FROM invocations ORDER BY ALL"
        assert a.sql(query).fetchall() == b.sql(query).fetchall()


def test_same_day_plain_and_compressed_is_one_line(tiny, tmp_path):
    trace, _ = tiny
    both = tmp_path / "trace"
    shutil.copytree(trace, both)
    plain = both / file_name(INVOCATIONS, 1)
    with gzip.open(str(plain) + ".gz", "wb") as handle:
        handle.write(plain.read_bytes())
    with pytest.raises(ManyModelsError, match=r"anon\.d01\.csv\.gz: d01 .* also in .*anon\.d01\.csv"):
        ingest(both, tmp_path / "db.duckdb")


def _mutate(trace: Path, tmp_path: Path, name: str, change) -> Path:
    copy = tmp_path / "trace"
    shutil.copytree(trace, copy)
    path = copy / name
    path.write_bytes(change(path.read_bytes()))
    return copy


@pytest.mark.parametrize("change, expected", [
    (lambda b: b.replace(b"o2,a2,f3", b"o2,a\xe92,f3"), r"anon\.d01\.csv, line 4: byte 0xe9 at position 5 is not UTF-8"),
    (lambda b: b.decode().encode("utf-16"), r"anon\.d01\.csv, line 1: the file is UTF-16"),
    (lambda b: b.replace(b"http,3,", b"http,3000000000,"), r"anon\.d01\.csv, line 2, column '1': 3000000000 is out of range"),
], ids=["latin-1 byte", "utf-16", "int32 overflow"])
def test_bad_bytes_and_overflow_name_file_line_column(tiny, tmp_path, capsys, change, expected):
    trace, _ = tiny
    bad = _mutate(trace, tmp_path, file_name(INVOCATIONS, 1), change)
    code, err = cli(["ingest", "--trace", bad, "--db", tmp_path / "db.duckdb"], capsys)
    line = assert_one_line_error(code, err)
    assert pytest.importorskip("re").search(expected, line), line
    assert not (tmp_path / "db.duckdb").exists()


def test_int64_overflow_names_line_and_column(tiny, tmp_path):
    trace, _ = tiny
    bad = _mutate(trace, tmp_path, file_name(DURATIONS, 1),
                  lambda b: b.replace(b",100.0,10,", b",100.0,99999999999999999999,", 1))
    with pytest.raises(ManyModelsError, match=r"anon\.d01\.csv, line 2, column 'Count': 99999999999999999999 is out of range"):
        ingest(bad, tmp_path / "db.duckdb")


def test_nan_and_inf_in_durations_and_memory_become_quirks_not_statistics(tiny, tmp_path):
    trace, _ = tiny
    def two_rows(data: bytes) -> bytes:  # NaN average on line 2, infinite maximum on line 3
        lines = data.split(b"\n")
        lines[1] = lines[1].replace(b",100.0,", b",nan,", 1)
        lines[2] = lines[2].replace(b",500.0,", b",inf,", 1)
        return b"\n".join(lines)

    bad = _mutate(trace, tmp_path, file_name(DURATIONS, 1), two_rows)
    path = bad / file_name(MEMORY, 1)
    path.write_bytes(path.read_bytes().replace(b",150.0,", b",-inf,", 1))
    ingest(bad, tmp_path / "db.duckdb")
    with duckdb.connect(str(tmp_path / "db.duckdb"), read_only=True) as con:
        quirks = con.sql("SELECT day, kind, rows FROM quirks WHERE quirk LIKE 'NaN/inf%' ORDER BY kind").fetchall()
        assert quirks == [(1, MEMORY, 1), (1, DURATIONS, 2)]
        assert con.sql("SELECT count(*) FROM durations WHERE isnan(Average) OR isinf(Maximum)").fetchall()[0][0] == 0
        assert con.sql("SELECT count(*) FROM durations WHERE Average IS NULL").fetchall()[0][0] == 1
    from pipeline.characterize.stage import characterize

    metrics = characterize(tmp_path / "db.duckdb", tmp_path / "char", tmp_path / "m.json")
    durations = pl.read_parquet(tmp_path / "char" / "resources_functions.parquet")["avg_duration_ms"].drop_nulls()
    assert durations.is_finite().all() and metrics["resources"]["median_app_memory_mb"] == pytest.approx(150.0)


def test_foreign_duckdb_file_to_characterize_is_one_line(tmp_path, capsys):
    foreign = tmp_path / "other.duckdb"
    with duckdb.connect(str(foreign)) as con:
        con.execute("CREATE TABLE t AS SELECT 1 AS x")
    code, err = cli(["characterize", "--db", foreign, "--out", tmp_path / "c", "--metrics", tmp_path / "m.json"], capsys)
    assert_one_line_error(code, err, "not a trace database written by `manymodels ingest`", "trace_meta")
    text = tmp_path / "text.duckdb"
    text.write_text("not a database\n")
    code, err = cli(["characterize", "--db", text, "--out", tmp_path / "c", "--metrics", tmp_path / "m.json"], capsys)
    assert_one_line_error(code, err, "not a readable DuckDB database")
    assert not (tmp_path / "c").exists()


# ------------------------------------------------------------------------ calendar gaps
@pytest.fixture(scope="module")
def gap_trace(tmp_path_factory) -> tuple[Path, Path]:
    """Days d01 and d03: f1 fires at the last minute of d01 and the first of d03."""
    root = tmp_path_factory.mktemp("gap")
    trace = root / "trace"
    trace.mkdir()
    write_invocations(trace, 1, [("o", "a", "f1", "http", {1440: 2}), ("o", "a", "f2", "timer", {10: 1, 20: 1})])
    write_invocations(trace, 3, [("o", "a", "f1", "http", {1: 3}), ("o", "a", "f2", "timer", {30: 4})])
    write_durations(trace, 1, [("o", "a", "f1"), ("o", "a", "f2")])
    write_durations(trace, 3, [("o", "a", "f1"), ("o", "a", "f2")])
    db = root / "trace.duckdb"
    ingest(trace, db)
    return trace, db


def test_replay_over_days_with_a_gap_reaches_the_last_day(gap_trace, tmp_path):
    _, db = gap_trace
    out = tmp_path / "w"
    manifest = synthesize(WorkloadConfig(mode="replay", selection="all", minutes=3 * 1440, seed=0), out, db=db)
    requests = pl.read_parquet(out / "requests.parquet")
    assert manifest["rows"]["requests"] == requests.height == 2 + 1 + 1 + 3 + 4  # every count of both days
    minutes = np.sort(np.unique(requests["t_ms"].to_numpy() // 60_000))
    # the trace's calendar: d01 minute m is m-1, d03 minute m is 2,880 + m - 1
    assert minutes.tolist() == [9, 19, 1439, 2880, 2909]


def test_characterization_does_not_count_a_missing_day_as_idle(gap_trace, tmp_path):
    from pipeline.characterize.stage import characterize

    _, db = gap_trace
    characterize(db, tmp_path / "c", tmp_path / "m.json")
    runs = pl.read_parquet(tmp_path / "c" / "run_lengths.parquet")
    # the only gap observed within the trace's days is f2's 10 -> 20 on d01 (9 idle minutes);
    # f1's 1440 (d01) -> 1 (d03) and f2's 20 (d01) -> 30 (d03) span the missing d02: censored
    assert runs.filter(pl.col("kind") == "idle").select("length_min", "periods").rows() == [(9, 1)]
    arrivals = pl.read_parquet(tmp_path / "c" / "arrivals.parquet").sort("function_id")
    assert arrivals["gaps"].to_list() == [0, 1]


# --------------------------------------------------------------------- workloads (synthesize)
def test_rate_scale_nan_leaves_the_previous_workload(workload_copy, small_synthetic_trace, capsys):
    _, db = small_synthetic_trace
    before = snapshot(workload_copy)
    code, err = cli(["synthesize", "--db", db, "--out", workload_copy, "--rate-scale", "nan", "--minutes", 60], capsys)
    assert_one_line_error(code, err, "--rate-scale must be a positive finite number, got nan")
    assert snapshot(workload_copy) == before
    assert leftovers(workload_copy.parent) == []


def test_truncated_requests_file_is_named(workload_copy):
    from pipeline.simulate.run import load_workload

    pl.DataFrame({"t_ms": [], "model_id": []}, schema={"t_ms": pl.Int64, "model_id": pl.Int32}).write_parquet(
        workload_copy / "requests.parquet")
    with pytest.raises(ManyModelsError, match=r"w/requests\.parquet: damaged or changed .*SHA-256"):
        load_workload(workload_copy)


def test_damaged_models_file_is_named(workload_copy):
    from pipeline.simulate.run import load_workload

    data = bytearray((workload_copy / "models.parquet").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (workload_copy / "models.parquet").write_bytes(bytes(data))
    with pytest.raises(ManyModelsError, match=r"w/models\.parquet: damaged or changed"):
        load_workload(workload_copy)


def test_row_count_differing_from_manifest_is_named(workload_copy):
    from pipeline.workload.layout import verify_workload

    manifest = json.loads((workload_copy / "manifest.json").read_text())
    manifest["rows"]["requests"] += 1
    (workload_copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ManyModelsError, match=r"requests\.parquet: \d+ rows, but manifest\.json says \d+"):
        verify_workload(workload_copy)


def test_shuffled_requests_are_rejected(workload_copy, capsys):
    requests = pl.read_parquet(workload_copy / "requests.parquet")
    shuffled = requests.sample(fraction=1.0, shuffle=True, seed=3)
    shuffled.write_parquet(workload_copy / "requests.parquet")
    code, err = cli(["simulate", "--workload", workload_copy, "--policy", "lru", "--memory-mb", 1000,
                     "--out", workload_copy.parent / "sim"], capsys)
    assert_one_line_error(code, err, "requests.parquet: damaged or changed")
    rewrite_requests(workload_copy, shuffled)  # a hand-made workload with a consistent manifest
    code, err = cli(["simulate", "--workload", workload_copy, "--policy", "lru", "--memory-mb", 1000,
                     "--out", workload_copy.parent / "sim"], capsys)
    assert_one_line_error(code, err, "column 't_ms': not sorted", "time order")
    assert not (workload_copy.parent / "sim").exists()


@pytest.mark.parametrize("bad_id", [-1, "N"])
def test_model_id_out_of_range_is_rejected(workload_copy, bad_id):
    from pipeline.simulate.run import load_workload

    n = pl.read_parquet(workload_copy / "models.parquet").height
    requests = pl.read_parquet(workload_copy / "requests.parquet")
    value = n if bad_id == "N" else bad_id
    rewrite_requests(workload_copy, requests.with_columns(
        pl.when(pl.int_range(pl.len()) == 5).then(value).otherwise(pl.col("model_id")).cast(pl.Int32).alias("model_id")))
    with pytest.raises(ManyModelsError, match=rf"row 5, column 'model_id': {value} is not a model of this workload \(0\.\.{n - 1}\)"):
        load_workload(workload_copy)


def test_null_t_ms_is_rejected(workload_copy):
    from pipeline.simulate.run import load_workload

    requests = pl.read_parquet(workload_copy / "requests.parquet")
    rewrite_requests(workload_copy, requests.with_columns(
        pl.when(pl.int_range(pl.len()) == 7).then(None).otherwise(pl.col("t_ms")).alias("t_ms")))
    with pytest.raises(ManyModelsError, match=r"row 7, column 't_ms': null value"):
        load_workload(workload_copy)


def test_bad_manifest_is_one_line(workload_copy, capsys):
    (workload_copy / "manifest.json").write_text('{"rows": ')
    code, err = cli(["simulate", "--workload", workload_copy, "--policy", "lru", "--memory-mb", 1000,
                     "--out", workload_copy.parent / "sim"], capsys)
    assert_one_line_error(code, err, "manifest.json: not a valid workload manifest")


# --------------------------------------------------------------------------------- flags
@pytest.mark.parametrize("args, expected", [
    (["simulate", "--policy", "lru", "--memory-mb", "nan"], "--memory-mb must be a positive finite number, got nan"),
    (["simulate", "--policy", "lru", "--memory-mb", "inf"], "--memory-mb must be a positive finite number, got inf"),
    (["simulate", "--policy", "cremebrulee", "--memory-mb", 1000, "--cost", "foo"], "--cost must be one of load, load_over_exec"),
    (["simulate", "--policy", "ttl", "--memory-mb", 1000, "--ttl-min", -1], "--ttl-min must be a finite number >= 0, got -1"),
    (["simulate", "--policy", "lru", "--memory-mb", 1000, "--seed", -1], "--seed must be >= 0, got -1"),
    (["sweep", "--policies", "lru", "--memory-mb", "500", "--scheduler", "foo"], "--scheduler 'foo': expected 'local', 'threads'"),
    (["sweep", "--policies", "lru", "--memory-mb", "nan"], "--memory-mb must be a positive finite number"),
    (["sweep", "--policies", "lru", "--memory-mb", "500", "--dask-workers", -2], "--dask-workers must be at least 1, got -2"),
], ids=["memory nan", "memory inf", "cost foo", "ttl -1", "seed -1", "scheduler foo", "sweep memory nan",
        "dask workers -2"])
def test_bad_simulation_flags_are_one_line(workload, tmp_path, capsys, args, expected):
    code, err = cli([args[0], "--workload", workload, "--out", tmp_path / "out", *args[1:]], capsys)
    assert_one_line_error(code, err, expected)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args, expected", [
    (["--seed", -1], "--seed must be >= 0, got -1"),
    (["--mode", "parametric", "--models", 10**12], "--models must be at most 10,000,000"),
    (["--rate-scale", "inf"], "--rate-scale must be a positive finite number, got inf"),
], ids=["seed -1", "huge models", "rate inf"])
def test_bad_synthesize_flags_are_one_line(small_synthetic_trace, tmp_path, capsys, args, expected):
    _, db = small_synthetic_trace
    code, err = cli(["synthesize", "--db", db, "--characterization", tmp_path, "--out", tmp_path / "w", *args], capsys)
    assert_one_line_error(code, err, expected)
    assert not (tmp_path / "w").exists()


def test_headline_day_outside_the_trace_is_one_line(small_synthetic_trace, tmp_path, capsys):
    _, db = small_synthetic_trace
    code, err = cli(["characterize", "--db", db, "--out", tmp_path / "c", "--metrics", tmp_path / "m.json",
                     "--headline-day", 9], capsys)
    assert_one_line_error(code, err, "--headline-day 9", "holds days 1, 2, 3")
    assert not (tmp_path / "c").exists() and not (tmp_path / "m.json").exists()


def test_unexpected_exception_is_one_line_and_verbose_shows_the_traceback(tiny, tmp_path, capsys):
    trace, _ = tiny
    with mock.patch("pipeline.trace.ingest.discover", side_effect=RuntimeError("boom")):
        code, err = cli(["ingest", "--trace", trace, "--db", tmp_path / "db.duckdb"], capsys)
        assert_one_line_error(code, err, "unexpected RuntimeError: boom", "--verbose")
        code, err = cli(["--verbose", "ingest", "--trace", trace, "--db", tmp_path / "db.duckdb"], capsys)
    assert code == 2 and "Traceback" in err and err.strip().splitlines()[-1].startswith("manymodels: error:")


# -------------------------------------------------------------------------------- dask
def test_worker_side_error_is_one_line_without_dask_logs(tiny, tmp_path):
    trace, _ = tiny
    bad = _mutate(trace, tmp_path, file_name(INVOCATIONS, 1), lambda b: b.replace(b"http,3,", b"http,-3,"))
    result = run_cli(["ingest", "--trace", bad, "--db", tmp_path / "db.duckdb", "--scheduler", "local",
                      "--workers", 1])
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "distributed" not in result.stderr, result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"manymodels: error: {bad / file_name(INVOCATIONS, 1)}, line 2, column '1': negative invocation count -3")


def test_scheduler_address_that_is_not_dask_fails_in_bounded_time(workload, tmp_path, capsys, monkeypatch):
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("MANYMODELS_CONNECT_TIMEOUT_S", "1")
    try:
        address = f"tcp://127.0.0.1:{server.server_address[1]}"
        code, err = cli(["sweep", "--workload", workload, "--policies", "lru", "--memory-mb", "500",
                         "--out", tmp_path / "s", "--scheduler", address], capsys)
    finally:
        server.shutdown()
    assert_one_line_error(code, err, f"--scheduler {address}: no dask scheduler answered within 1 s")
    assert not (tmp_path / "s").exists()


# ------------------------------------------------------------------------------ reports
def test_failing_report_notebook_is_one_line(tmp_path, capsys):
    import nbformat
    from papermill.exceptions import PapermillExecutionError

    notebook = tmp_path / "bad.ipynb"
    nbformat.write(nbformat.v4.new_notebook(), notebook)
    html = tmp_path / "out.html"
    html.write_text("previous report")
    # what papermill raises when a cell fails (starting a kernel here would only slow the suite)
    failure = PapermillExecutionError(1, 2, "raise ValueError('no data here')", "ValueError", "no data here",
                                      ["Traceback ...", "ValueError: no data here"])
    with mock.patch("papermill.execute_notebook", side_effect=failure):
        code, err = cli(["report", "--notebook", notebook, "--html", html, "--executed-dir", tmp_path / "exec"], capsys)
    assert_one_line_error(code, err, "bad.ipynb: cell 2 failed: ValueError: no data here")
    assert html.read_text() == "previous report"


# ----------------------------------------------------------------------- ingest: kill, locks
@pytest.mark.parametrize("point", ["ingest:staged", "ingest:built"])
def test_sigkill_during_ingest_keeps_the_database_and_the_next_run_cleans_up(tiny, tmp_path, point):
    trace, db = tiny
    target = tmp_path / "trace.duckdb"
    shutil.copy(db, target)
    before = sha256_file(target)
    result = run_cli(["ingest", "--trace", trace, "--db", target, "--force"],
                     env={"MANYMODELS_FAULT_AT": point, "MANYMODELS_FAULT_SIGNAL": "SIGKILL"})
    assert result.returncode == -signal.SIGKILL
    assert sha256_file(target) == before
    left = leftovers(tmp_path)
    assert left and all(name.startswith((".ingest-", ".trace.duckdb.tmp-", ".trace.duckdb.lock")) for name in left), left
    ingest(trace, target, force=True)
    assert leftovers(tmp_path) == []
    with duckdb.connect(str(target), read_only=True) as con:
        assert con.sql("SELECT sum(count) FROM invocations").fetchall()[0][0] == 2915


@pytest.mark.parametrize("point, signal_spec, scheduler", [
    ("ingest:built", "SIGINT", "threads"), ("cluster:starting", "group:SIGINT", "local"),
    ("cluster:started", "group:SIGINT", "local"),
], ids=["database built", "cluster start-up (whole process group)", "cluster up (whole process group)"])
def test_ctrl_c_during_ingest_exits_130_without_traceback(tiny, tmp_path, point, signal_spec, scheduler):
    trace, db = tiny
    target = tmp_path / "trace.duckdb"
    shutil.copy(db, target)
    before = sha256_file(target)
    result = run_cli(["ingest", "--trace", trace, "--db", target, "--force", "--scheduler", scheduler, "--workers", 1],
                     env={"MANYMODELS_FAULT_AT": point, "MANYMODELS_FAULT_SIGNAL": signal_spec},
                     start_new_session=True)
    assert result.returncode == 130, result.stderr
    assert "Traceback" not in result.stderr and "KeyboardInterrupt" not in result.stderr, result.stderr
    assert result.stderr.strip().splitlines()[-1] == "manymodels: interrupted (outputs left as they were)"
    assert sha256_file(target) == before
    assert leftovers(tmp_path) == []


def test_second_writer_fails_fast(tiny, tmp_path):
    trace, db = tiny
    target = tmp_path / "trace.duckdb"
    shutil.copy(db, target)
    with output_lock(target), pytest.raises(ManyModelsError, match=r"trace\.duckdb: another manymodels process \(pid \d+\) is writing it"):
        ingest(trace, target, force=True)
    ingest(trace, target, force=True)  # the lock is gone with its holder
    assert leftovers(tmp_path) == []


def test_ingest_while_another_process_holds_the_database_read_write(tiny, tmp_path):
    trace, db = tiny
    target = tmp_path / "trace.duckdb"
    shutil.copy(db, target)
    hold = "import duckdb, sys, time; con = duckdb.connect(sys.argv[1]); print('ready', flush=True); time.sleep(60)"
    holder = subprocess.Popen([sys.executable, "-c", hold, str(target)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(ManyModelsError, match="another process has this database open read-write"):
            ingest(trace, target, force=True)
    finally:
        holder.kill()
        holder.wait()
    ingest(trace, target, force=True)


def test_stale_temporaries_of_dead_processes_are_removed_and_an_interrupted_replace_is_undone(tmp_path):
    pid = dead_pid()
    (tmp_path / f".ingest-{pid}-abc").mkdir()
    (tmp_path / f".trace.duckdb.tmp-{pid}").write_text("partial")
    (tmp_path / f".trace.duckdb.tmp-{pid}.wal").write_text("partial")
    (tmp_path / f".w.old-{pid}").mkdir()  # killed between the two renames: w is missing
    (tmp_path / f".w.old-{pid}" / "requests.parquet").write_text("previous")
    (tmp_path / f".x.tmp-{os.getpid()}").mkdir()  # a live process's temporary stays
    remove_stale_temps(tmp_path)
    assert leftovers(tmp_path) == [f".x.tmp-{os.getpid()}"]
    assert (tmp_path / "w" / "requests.parquet").read_text() == "previous"


def test_atomic_output_dir_keeps_the_previous_directory_on_failure(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "a").write_text("old")
    with pytest.raises(RuntimeError), atomic_output_dir(target) as tmp:
        (tmp / "a").write_text("new, half written")
        raise RuntimeError
    assert snapshot(target) == {"a": sha256_file(target / "a")} and (target / "a").read_text() == "old"
    with atomic_output_dir(target) as tmp:
        (tmp / "b").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["b"]
    assert leftovers(tmp_path) == []


# --------------------------------------------------------------------- synthesize: kill
@pytest.mark.parametrize("point, signal_name", [
    ("synthesize:block", "SIGKILL"), ("before-rename", "SIGKILL"), ("synthesize:written", "SIGINT"),
])
def test_killed_synthesize_keeps_the_previous_workload(workload, small_synthetic_trace, tmp_path, point, signal_name):
    _, db = small_synthetic_trace
    target = tmp_path / "w"
    shutil.copytree(workload, target)
    before = snapshot(target)
    args = ["synthesize", "--db", db, "--out", target, "--minutes", 120, "--block-minutes", 30, "--seed", 5]
    result = run_cli(args, env={"MANYMODELS_FAULT_AT": point, "MANYMODELS_FAULT_SIGNAL": signal_name})
    if signal_name == "SIGKILL":
        assert result.returncode == -signal.SIGKILL
    else:
        assert result.returncode == 130 and "Traceback" not in result.stderr, result.stderr
        assert leftovers(tmp_path) == []
    assert snapshot(target) == before
    from pipeline.simulate.run import load_workload

    load_workload(target)  # still a complete, verified workload
    synthesize(WorkloadConfig(mode="replay", minutes=120, block_minutes=30, seed=5), target, db=db)
    assert leftovers(tmp_path) == []
    assert json.loads((target / "manifest.json").read_text())["seed"] == 5


# -------------------------------------------------------------------------------- exports
def test_azure_export_into_an_older_export_keeps_no_stale_day(small_synthetic_trace, tmp_path):
    from pipeline.workload.export import export

    _, db = small_synthetic_trace
    two_days = tmp_path / "w2"
    one_day = tmp_path / "w1"
    synthesize(WorkloadConfig(mode="replay", models=30, minutes=2 * 1440, seed=1), two_days, db=db)
    synthesize(WorkloadConfig(mode="replay", models=10, minutes=600, seed=1), one_day, db=db)
    out = tmp_path / "azure"
    export(two_days, "azure2019", out)
    assert (out / file_name(INVOCATIONS, 2)).exists()
    export(one_day, "azure2019", out)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [file_name(k, 1) for k in (INVOCATIONS, DURATIONS, MEMORY)] + ["export_manifest_azure2019.json",
                                                                        "SYNTHETIC.json"])  # provenance marker
    result = ingest(out, tmp_path / "again.duckdb")
    assert result.days == [1] and result.functions == 10
    assert leftovers(tmp_path) == []


# ------------------------------------------------------------------------------ DVC, determinism
def test_dvc_keeps_the_previous_database_when_ingest_fails(tiny, tmp_path):
    """`dvc repro` in a scratch repository whose ingest stage is declared as the project's dvc.yaml
    declares it (DVC tracks the content digest; the database is not a DVC out, so DVC never deletes
    it): after a failing ingest the previous database is still there, byte for byte."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    outs = [o if isinstance(o, str) else next(iter(o)) for o in stages["ingest"]["outs"]]
    assert "datasets/trace.duckdb" not in outs and "datasets/trace.digest.json" in outs
    trace, _ = tiny
    repo = tmp_path / "repo"
    shutil.copytree(trace, repo / "t")
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"ingest": {
        "cmd": f"{sys.executable} -m pipeline.cli ingest --trace t --db db.duckdb --scheduler threads --digest digest.json",
        "deps": ["t"], "outs": ["digest.json"]}}}))
    env = dict(os.environ, PYTHONPATH=str(ROOT), DVC_NO_ANALYTICS="1", MANYMODELS_NO_PROGRESS="1")
    for command in (["git", "init", "-q"], [sys.executable, "-m", "dvc", "init", "-q"],
                    [sys.executable, "-m", "dvc", "repro", "-q"]):
        subprocess.run(command, cwd=repo, env=env, check=True, capture_output=True)
    before = sha256_file(repo / "db.duckdb")
    bad = repo / "t" / file_name(INVOCATIONS, 1)
    bad.write_bytes(bad.read_bytes().replace(b"http,3,", b"http,-3,"))
    failed = subprocess.run([sys.executable, "-m", "dvc", "repro"], cwd=repo, env=env, capture_output=True, text=True,
                            check=False)
    assert failed.returncode != 0 and "negative invocation count -3" in failed.stdout + failed.stderr
    assert (repo / "db.duckdb").exists() and sha256_file(repo / "db.duckdb") == before


def test_same_inputs_give_byte_identical_outputs(small_synthetic_trace, tmp_path):
    from pipeline.characterize.stage import characterize

    _, db = small_synthetic_trace
    runs = []
    for _ in range(2):
        characterize(db, tmp_path / "c", tmp_path / "m.json")
        synthesize(WorkloadConfig(mode="parametric", models=40, minutes=90, seed=2), tmp_path / "w",
                   characterization=tmp_path / "c")
        files = {**{f"c/{k}": v for k, v in snapshot(tmp_path / "c").items()},
                 **{f"w/{k}": v for k, v in snapshot(tmp_path / "w").items()}, "m.json": sha256_file(tmp_path / "m.json")}
        runs.append(files)
        shutil.copytree(tmp_path / "c", tmp_path / f"c{len(runs)}")
    # apps.parquet's order of equal-invocation apps is fixed on the exports branch (issue 12)
    runs = [{k: v for k, v in r.items() if k != "c/apps.parquet"} for r in runs]
    assert runs[0] == runs[1]
    # every table of the characterization (apps left out), summary/fitted params, metrics, 3 workload files
    tables = {f"c/{p.name}" for p in (tmp_path / "c").iterdir()} - {"c/apps.parquet"}
    assert set(runs[0]) == tables | {"w/requests.parquet", "w/models.parquet", "w/manifest.json", "m.json"}


def test_an_output_directory_holding_other_files_is_not_replaced(workload, tmp_path, capsys):
    mixed = tmp_path / "mine"
    mixed.mkdir()
    (mixed / "notes.md").write_text("my notes")
    code, err = cli(["simulate", "--workload", workload, "--policy", "lru", "--memory-mb", 1000, "--out", mixed], capsys)
    assert_one_line_error(code, err, "holds 'notes.md', which this command does not write")
    assert [p.name for p in mixed.iterdir()] == ["notes.md"]
    code, err = cli(["simulate", "--workload", workload, "--policy", "lru", "--memory-mb", 1000,
                     "--out", tmp_path / "sim"], capsys)
    assert code == 0, err
    code, err = cli(["simulate", "--workload", workload, "--policy", "fifo", "--memory-mb", 1000,
                     "--out", tmp_path / "sim"], capsys)  # its own earlier output is replaced
    assert code == 0 and json.loads((tmp_path / "sim" / "metrics.json").read_text())["policy"] == "fifo"


def test_unpack_writes_whole_files_and_removes_a_killed_run_s_partial_file(tmp_path):
    from pipeline.trace.download import unpack
    from tests.test_download import make_archive

    archive, _, _ = make_archive(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    partial = out / f".{file_name(INVOCATIONS, 1)}.tmp-{dead_pid()}"
    partial.write_text("HashOwner,Hash")  # what a killed unpack leaves: never a truncated CSV under its name
    written = unpack(archive, out)
    assert sorted(p.name for p in written) == sorted(p.name for p in out.iterdir())
    assert not partial.exists()
    assert (out / file_name(INVOCATIONS, 1)).read_bytes() == (tmp_path / "src" / file_name(INVOCATIONS, 1)).read_bytes()
