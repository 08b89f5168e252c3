"""Workload synthesis: determinism, exact replay conservation, parametric fit-back, exports read back."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.characterize.stage import characterize
from pipeline.errors import ManyModelsError
from pipeline.trace.ingest import ingest
from pipeline.workload.catalog import load_catalog
from pipeline.workload.export import export
from pipeline.workload.requests import expand
from pipeline.workload.synthesize import WorkloadConfig, synthesize


@pytest.fixture(scope="module")
def characterization(small_synthetic_trace, tmp_path_factory):
    _, db = small_synthetic_trace
    out = tmp_path_factory.mktemp("char")
    characterize(db, out, out / "metrics.json")
    return db, out


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_catalog_is_the_design_table_and_validates(tmp_path):
    catalog = load_catalog()
    assert catalog.height == 26
    row = catalog.filter(pl.col("model") == "VGG19").row(0, named=True)
    assert (row["load_ms"], row["exec_ms"], row["size_mb"]) == (4232.0, 522.0, 549.0)
    bad = tmp_path / "catalog.csv"
    bad.write_text("model,load_ms,exec_ms,unload_ms,size_mb\nA,10,1,1,0\n")
    with pytest.raises(ManyModelsError, match=r"line 2, column 'size_mb': size_mb must be a positive"):
        load_catalog(bad)
    bad.write_text("model,load_ms,exec_ms\nA,10,1\n")
    with pytest.raises(ManyModelsError, match="missing column"):
        load_catalog(bad)


@pytest.mark.parametrize("mode", ["replay", "parametric"])
def test_same_seed_same_bytes_other_seed_differs(characterization, tmp_path, mode):
    db, char = characterization
    def run(seed, name):
        config = WorkloadConfig(mode=mode, models=40, minutes=600, seed=seed, selection="uniform")
        synthesize(config, tmp_path / name, db=db, characterization=char)
        return digest(tmp_path / name / "requests.parquet"), digest(tmp_path / name / "models.parquet")
    assert run(3, "a") == run(3, "b")
    assert run(3, "a") != run(4, "c")


@pytest.mark.parametrize("selection", ["all", "uniform", "quantile", "topk"])
def test_replay_conserves_duckdb_counts(characterization, tmp_path, selection):
    db, _ = characterization
    config = WorkloadConfig(mode="replay", models=30, minutes=2000, start_minute=500, seed=1, selection=selection,
                            arrival="even" if selection == "topk" else "poisson")
    manifest = synthesize(config, tmp_path / "w", db=db)
    models = pl.read_parquet(tmp_path / "w" / "models.parquet")
    requests = pl.read_parquet(tmp_path / "w" / "requests.parquet")
    ids = models["source_function_id"].to_list()
    with duckdb.connect(str(db), read_only=True) as con:
        per_function = dict(con.execute(
            "SELECT function_id, sum(count) FROM invocations WHERE (day - 1) * 1440 + minute - 1 BETWEEN 500 AND 2499 "
            f"AND function_id IN ({','.join(map(str, ids))}) GROUP BY function_id").fetchall())
    got = dict(zip(models["source_function_id"].to_list(), models["requests"].to_list()))
    assert {k: v for k, v in got.items() if v} == per_function
    assert requests.height == sum(per_function.values()) == manifest["rows"]["requests"]
    t = requests["t_ms"].to_numpy()
    assert np.all(np.diff(t) >= 0) and t.min() >= 0 and t.max() < 2000 * 60_000
    assert requests.schema == {"t_ms": pl.Int64, "model_id": pl.Int32}
    if selection == "topk":
        assert models["source_window_invocations"].to_list() == sorted(models["source_window_invocations"].to_list(), reverse=True)


@given(counts=st.lists(st.integers(0, 50), min_size=1, max_size=30), arrival=st.sampled_from(["poisson", "even"]))
@settings(max_examples=50, deadline=None)
def test_expand_keeps_each_request_in_its_minute(counts, arrival):
    counts = np.array(counts)
    minute = np.arange(len(counts)) * 3
    model = np.arange(len(counts)) % 4
    t_ms, _ = expand(model, minute, counts, arrival, np.random.default_rng(0))
    assert len(t_ms) == counts.sum()
    assert np.all(np.diff(t_ms) >= 0)
    got = np.bincount(t_ms // 60_000, minlength=minute.max() + 1)
    assert np.array_equal(got[minute], counts)


def test_parametric_reproduces_popularity_and_idle_distributions(characterization, tmp_path):
    _, char = characterization
    fitted = json.loads((char / "fitted_params.json").read_text())
    days = fitted["days"]  # same window length as the trace, so both sides are measured alike
    config = WorkloadConfig(mode="parametric", models=3000, minutes=1440 * days, seed=5)
    synthesize(config, tmp_path / "p", characterization=char)
    models = pl.read_parquet(tmp_path / "p" / "models.parquet")
    requests = pl.read_parquet(tmp_path / "p" / "requests.parquet")
    # fit the daily-rate lognormal back from the generated requests
    active = models.filter(pl.col("requests") > 0)["requests"].to_numpy().astype(float) / days
    assert np.log(active).mean() == pytest.approx(fitted["rate_per_day_lognormal"]["mu"], abs=0.35)
    assert np.log(active).std() == pytest.approx(fitted["rate_per_day_lognormal"]["sigma"], abs=0.35)
    assert 1 - len(active) / models.height == pytest.approx(fitted["never_active_share"], abs=0.06)
    # idle fraction per model (minutes with no request / 1440) against the trace's function-day idle fractions
    active_minutes = requests.select(pl.col("model_id"), (pl.col("t_ms") // 60_000).alias("m")).unique().group_by(
        "model_id").len()
    idle = np.ones(models.height)
    idle[active_minutes["model_id"].to_numpy()] = 1 - active_minutes["len"].to_numpy() / (1440 * days)
    trace_idle = pl.read_parquet(char / "idle_pooled.parquet")["idle_fraction_pooled"].to_numpy()
    from scipy import stats
    assert stats.ks_2samp(idle, trace_idle).statistic < 0.12
    assert np.mean(idle > 0.5) == pytest.approx(np.mean(trace_idle > 0.5), abs=0.06)


def test_unknown_options_are_clear_errors(characterization, tmp_path):
    db, _ = characterization
    with pytest.raises(ManyModelsError, match="unknown selection 'best'"):
        synthesize(WorkloadConfig(selection="best"), tmp_path, db=db)
    with pytest.raises(ManyModelsError, match="unknown trigger"):
        synthesize(WorkloadConfig(triggers=("cron",)), tmp_path, db=db)
    with pytest.raises(ManyModelsError, match="unknown export format"):
        export(tmp_path, "xml", tmp_path / "x")


@pytest.fixture(scope="module")
def workload(characterization, tmp_path_factory):
    db, _ = characterization
    out = tmp_path_factory.mktemp("wl") / "w"
    synthesize(WorkloadConfig(mode="replay", models=25, minutes=300, seed=2, selection="uniform"), out, db=db)
    return out


def test_libcachesim_export_reads_back_with_libcachesim(workload, tmp_path):
    lcs = pytest.importorskip("libcachesim")
    export(workload, "libcachesim", tmp_path / "trace.csv")
    params = lcs.ReaderInitParam()
    params.has_header, params.delimiter = True, ","
    params.time_field, params.obj_id_field, params.obj_size_field = 1, 2, 3
    reader = lcs.TraceReader(str(tmp_path / "trace.csv"), lcs.TraceType.CSV_TRACE, params)
    requests = pl.read_parquet(workload / "requests.parquet")
    sizes = dict(pl.read_parquet(workload / "models.parquet").select("model_id", "size_mb").iter_rows())
    seen = [(r.clock_time, r.obj_id, r.obj_size) for r in reader]
    assert len(seen) == requests.height
    expected = [(t // 1000, m, int(sizes[m] * 1_000_000)) for t, m in requests.iter_rows()]  # time in seconds
    assert seen == expected


def test_cremebrulee_export(workload, tmp_path):
    export(workload, "cremebrulee", tmp_path)
    lines = (tmp_path / "workload.txt").read_text().splitlines()
    requests = pl.read_parquet(workload / "requests.parquet")
    models_json = json.loads((tmp_path / "models.json").read_text())
    assert len(lines) == requests.height
    request_id, time_s, name = lines[0].split(" ")
    assert request_id == "0" and float(time_s) == pytest.approx(requests["t_ms"][0] / 1000)
    by_name = {model["name"]: model for model in models_json}
    assert name in by_name and by_name[name]["avg_load_latency"] > 0


def test_azure2019_export_round_trips_through_ingest(workload, tmp_path):
    export(workload, "azure2019", tmp_path / "trace")
    result = ingest(tmp_path / "trace", tmp_path / "back.duckdb")
    requests = pl.read_parquet(workload / "requests.parquet")
    assert result.invocations == requests.height
    models = pl.read_parquet(workload / "models.parquet")
    with duckdb.connect(str(tmp_path / "back.duckdb"), read_only=True) as con:
        assert con.sql("SELECT count(*) FROM functions").fetchall()[0][0] == models.height
        memory = sorted(r[0] for r in con.sql("SELECT AverageAllocatedMb FROM memory").fetchall())
    assert memory == sorted(models["size_mb"].to_list())


def test_csv_export(workload, tmp_path):
    export(workload, "csv", tmp_path)
    assert pl.read_csv(tmp_path / "requests.csv").equals(pl.read_parquet(workload / "requests.parquet").with_columns(
        pl.col("model_id").cast(pl.Int64)))


def test_trigger_filter_keeps_only_that_trigger(characterization, tmp_path):
    db, _ = characterization
    synthesize(WorkloadConfig(mode="replay", models=10, minutes=1440, seed=1, selection="topk", triggers=("timer",)),
               tmp_path / "w", db=db)
    models = pl.read_parquet(tmp_path / "w" / "models.parquet")
    assert models.height == 10 and set(models["source_trigger"]) == {"timer"}
