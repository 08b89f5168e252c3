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


def minute_stats(workload: Path, minutes: int) -> dict[str, np.ndarray]:
    """Per model at minute resolution, computed independently of the generator with polars/numpy:
    requests, idle fraction, IAT CV of the gaps between active minutes (models with >= 2 gaps), and
    the pooled idle-period lengths (runs of inactive minutes between two active ones)."""
    n = pl.read_parquet(workload / "models.parquet").height
    cells = (pl.read_parquet(workload / "requests.parquet")
             .group_by("model_id", (pl.col("t_ms") // 60_000).alias("minute")).len()
             .sort("model_id", "minute"))
    model = cells["model_id"].to_numpy().astype(np.int64)
    minute = cells["minute"].to_numpy()
    requests = np.bincount(model, weights=cells["len"].to_numpy(), minlength=n)
    idle = 1 - np.bincount(model, minlength=n) / minutes
    cv, idle_periods = [], []
    for m in np.unique(model):
        gaps = np.diff(minute[model == m])
        idle_periods.extend(gaps[gaps > 1] - 1)
        if len(gaps) >= 2:
            cv.append(gaps.std() / gaps.mean())
    return {"requests": requests, "idle_fraction": idle, "iat_cv": np.array(cv),
            "idle_periods": np.array(idle_periods)}


def ks_bound(n: int, m: int, alpha_c: float = 1.95) -> float:
    """Two-sample KS critical value at alpha = 0.001 (c = 1.95): two samples of one distribution
    exceed it one time in a thousand."""
    return alpha_c * np.sqrt((n + m) / (n * m))


def top_share(requests: np.ndarray, fraction: float) -> float:
    ordered = np.sort(requests)[::-1]
    return ordered[: max(1, int(np.ceil(fraction * len(ordered))))].sum() / ordered.sum()


@pytest.fixture(scope="module")
def mix_dbs(tmp_path_factory):
    """Two traces of different make-up (tests/trace_mixes.py), 600 functions x 1 day, ingested."""
    from .trace_mixes import write_trace

    dbs = {}
    for mix in ("timers", "bursty"):
        root = tmp_path_factory.mktemp(mix)
        write_trace(mix, 600, 1, 3, root / "trace")
        ingest(root / "trace", root / "trace.duckdb")
        dbs[mix] = root / "trace.duckdb"
    return dbs


@pytest.mark.parametrize("mix", ["timers", "bursty"])
def test_parametric_fits_back_to_its_trace(mix_dbs, tmp_path, mix):
    from scipy import stats

    db = mix_dbs[mix]
    common = {"minutes": 1440, "seed": 4}
    synthesize(WorkloadConfig(mode="replay", selection="all", **common), tmp_path / "ref", db=db)
    n = pl.read_parquet(tmp_path / "ref" / "models.parquet").height
    synthesize(WorkloadConfig(mode="parametric", models=n, **common), tmp_path / "par", db=db)
    ref, par = minute_stats(tmp_path / "ref", 1440), minute_stats(tmp_path / "par", 1440)
    for key in ("requests", "idle_fraction", "iat_cv"):
        d = stats.ks_2samp(ref[key], par[key]).statistic
        assert d < ks_bound(len(ref[key]), len(par[key])), key
    for fraction in (0.01, 0.10):
        assert top_share(par["requests"], fraction) == pytest.approx(top_share(ref["requests"], fraction), abs=0.05)


def test_periodic_functions_stay_periodic_even_when_extrapolated(tmp_path):
    from .tracefiles import write_invocations

    periods = [1, 3, 8, 15, 60, 240]  # timers fire on divisors of the day, as cron schedules do
    rows = []
    for i, period in enumerate(periods * 5):
        fires = np.arange((i * 13) % period, 1440, period)
        rows.append((f"o{i}", f"a{i}", f"f{i}", "timer", {int(m) + 1: 1 + i % 3 for m in fires}))
    trace = tmp_path / "trace"
    trace.mkdir()
    write_invocations(trace, 1, rows)
    ingest(trace, tmp_path / "t.duckdb")
    synthesize(WorkloadConfig(mode="parametric", models=90, minutes=1440, seed=1), tmp_path / "p",
               db=tmp_path / "t.duckdb")
    got = minute_stats(tmp_path / "p", 1440)
    assert len(got["iat_cv"]) >= 80 and got["iat_cv"].max() < 0.05
    # extrapolated models (past the 30 functions) have kernel-perturbed periods, still constant ones
    assert got["requests"][30:].sum() > 0


def test_parametric_extrapolates_to_more_models_than_functions(mix_dbs, tmp_path):
    from scipy import stats

    db = mix_dbs["bursty"]
    synthesize(WorkloadConfig(mode="replay", selection="all", minutes=1440, seed=2), tmp_path / "ref", db=db)
    n = pl.read_parquet(tmp_path / "ref" / "models.parquet").height
    manifest = synthesize(WorkloadConfig(mode="parametric", models=3 * n, minutes=1440, seed=2), tmp_path / "par",
                          db=db)
    assert manifest["rows"]["models"] == 3 * n
    ref, par = minute_stats(tmp_path / "ref", 1440), minute_stats(tmp_path / "par", 1440)
    for key in ("requests", "idle_fraction"):
        assert stats.ks_2samp(ref[key], par[key]).statistic < ks_bound(n, 3 * n), key
    # the kernel draws are new models, not copies: their request counts differ from every function's
    assert len(np.setdiff1d(par["requests"][n:], ref["requests"])) > n // 2


def test_fitted_model_round_trips_and_samples_alike(mix_dbs, tmp_path):
    from pipeline.db import connect_read_only
    from pipeline.workload import parametric

    with connect_read_only(mix_dbs["timers"]) as con:
        model = parametric.fit(con, 0, 1440, 1)
    model.save(tmp_path / "model.npz")
    back = parametric.WorkloadModel.load(tmp_path / "model.npz")

    def draw(m):
        rng = np.random.default_rng(9)
        population = parametric.sample_population(m, 700, rng)
        return [np.concatenate(part) for part in zip(*parametric.sample_blocks(m, population, 600, 60, 0, rng))]

    assert all(np.array_equal(a, b) for a, b in zip(draw(model), draw(back)))
    assert model.functions == 600 and model.requests.sum() > 0


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


@given(n=st.integers(1, 400), data=st.data())
@settings(max_examples=60, deadline=None)
def test_systematic_sample_takes_one_function_per_stratum(n, data):
    from pipeline.workload.parametric import systematic_sample

    k = data.draw(st.integers(1, n))
    ordered = np.random.default_rng(n).permutation(n)
    chosen = systematic_sample(ordered, k, np.random.default_rng(k))
    assert len(chosen) == k == len(np.unique(chosen))
    rank = np.empty(n, dtype=np.int64)
    rank[ordered] = np.arange(n)  # position of each item in the ordering
    # the i-th pick (in ordering order) is the item whose unit [r, r + 1) meets stratum [i n / k, (i + 1) n / k)
    r, i = np.sort(rank[chosen]), np.arange(k)
    assert np.all(i * n < (r + 1) * k) and np.all(r * k < (i + 1) * n)


def test_half_population_keeps_top_shares_and_thinned_periods(mix_dbs, tmp_path):
    """Half as many models as functions, at rate scale 0.3: per-model and pooled idle-period
    distributions and the top shares stay those of the thinned replay (scipy, numpy: computed here)."""
    from scipy import stats

    db = mix_dbs["bursty"]
    common = {"minutes": 1440, "seed": 5, "rate_scale": 0.3}
    synthesize(WorkloadConfig(mode="replay", selection="all", **common), tmp_path / "ref", db=db)
    n = pl.read_parquet(tmp_path / "ref" / "models.parquet").height
    synthesize(WorkloadConfig(mode="parametric", models=n // 2, **common), tmp_path / "par", db=db)
    ref, par = minute_stats(tmp_path / "ref", 1440), minute_stats(tmp_path / "par", 1440)
    for key in ("requests", "idle_fraction", "iat_cv"):
        assert stats.ks_2samp(ref[key], par[key]).statistic < ks_bound(len(ref[key]), len(par[key])), key
    # pooled periods come in clusters (one model's periods are alike): the sample sizes are the models'
    d = stats.ks_2samp(ref["idle_periods"], par["idle_periods"]).statistic
    assert d < ks_bound(len(ref["iat_cv"]), len(par["iat_cv"]))
    for fraction in (0.01, 0.10):
        assert top_share(par["requests"], fraction) == pytest.approx(top_share(ref["requests"], fraction), abs=0.05)


def test_fit_at_a_rate_scale_thins_the_trace_minutes(mix_dbs):
    from pipeline.db import connect_read_only
    from pipeline.workload import parametric

    with connect_read_only(mix_dbs["bursty"]) as con:
        full = parametric.fit(con, 0, 1440, 1)
        thinned = parametric.fit(con, 0, 1440, 1, rate_scale=0.25, rng=np.random.default_rng(1))
        cells = con.execute("SELECT count(*), sum(count), sum(CASE WHEN count = 1 THEN 1 ELSE 0 END) "
                            "FROM invocations WHERE day = 1").fetchone()
    n_cells, total, singles = cells
    assert full.requests.sum() == total and full.active_minutes.sum() == n_cells
    # expected requests: a quarter of the total; minutes with 1..3 invocations survive with probability count / 4
    assert abs(thinned.requests.sum() - total / 4) < 5 * np.sqrt(total)
    assert np.all(thinned.active_minutes <= full.active_minutes)
    assert n_cells - thinned.active_minutes.sum() > 0.5 * singles  # 3/4 of the single-invocation minutes go
    assert thinned.source["rate_scale"] == 0.25


def test_rank_binding_cycles_by_popularity_quantile_in_the_trace(mix_dbs, tmp_path):
    from pipeline.db import connect_read_only

    db = mix_dbs["timers"]
    with connect_read_only(db) as con:
        functions = con.execute("SELECT count(DISTINCT function_id) FROM function_days WHERE day = 1").fetchone()[0]
    models_n = functions // 3
    synthesize(WorkloadConfig(mode="parametric", models=models_n, minutes=600, seed=1, binding="rank"), tmp_path / "p",
               db=db)
    models = pl.read_parquet(tmp_path / "p" / "models.parquet")
    by_size = load_catalog()["size_mb"].to_numpy()
    ascending = np.sort(by_size)
    rank = np.argsort(np.argsort(-models["target_rate_per_day"].to_numpy(), kind="stable"), kind="stable")
    expected = ascending[(rank * functions // models_n) % len(by_size)]
    assert np.array_equal(models["size_mb"].to_numpy(), expected)


def test_office_hours_functions_stay_in_their_hours(tmp_path):
    """Functions active only 09:00-17:00 (Poisson inside): their models' active minutes stay in those
    hours (a time-of-day-blind on/off process would put 16/24 of them outside); an always-on
    Poisson function keeps one clock."""
    from .tracefiles import write_invocations

    rng = np.random.default_rng(3)
    rows = []
    for i in range(40):
        rate = 0.3 + 0.05 * i
        minutes = np.arange(9 * 60, 17 * 60)
        fired = minutes[rng.poisson(rate, len(minutes)) > 0]
        rows.append((f"o{i}", f"a{i}", f"f{i}", "http", {int(m) + 1: 1 for m in fired}))
    for i in range(40, 60):  # the same rates at every hour
        fired = np.flatnonzero(rng.poisson(0.2, 1440) > 0)
        rows.append((f"o{i}", f"a{i}", f"f{i}", "queue", {int(m) + 1: 1 for m in fired}))
    trace = tmp_path / "trace"
    trace.mkdir()
    write_invocations(trace, 1, rows)
    ingest(trace, tmp_path / "t.duckdb")
    synthesize(WorkloadConfig(mode="parametric", models=120, minutes=1440, seed=2), tmp_path / "p",
               db=tmp_path / "t.duckdb")
    requests = pl.read_parquet(tmp_path / "p" / "requests.parquet")
    models = pl.read_parquet(tmp_path / "p" / "models.parquet")
    office = models.filter(pl.col("source_trigger") == "http")["model_id"]
    hour = (requests["t_ms"].to_numpy() // 3_600_000)
    in_office = np.isin(requests["model_id"].to_numpy(), office.to_numpy())
    assert in_office.sum() > 1000
    assert np.mean((hour[in_office] >= 8) & (hour[in_office] < 18)) > 0.95
    everyday = ~in_office
    assert 0.3 < np.mean((hour[everyday] >= 9) & (hour[everyday] < 17)) < 0.4  # 8/24 of them


def _iat_cv(minutes_by_owner: list[np.ndarray]) -> np.ndarray:
    """std / mean of the gaps between consecutive distinct active minutes (NaN with < 2 gaps)."""
    out = []
    for active in minutes_by_owner:
        gaps = np.diff(np.unique(active)).astype(float)
        out.append(gaps.std() / gaps.mean() if len(gaps) >= 2 else np.nan)
    return np.array(out)


def test_functions_with_a_daily_phase_keep_their_hours_and_iat_cv(tmp_path):
    """Busy office-hours functions (active nearly every minute 09:00-17:00: one long busy period a
    day, too few for the hour-of-day test) keep their hours, and their IAT CV stays that of the
    trace (their 16-h night is the window's edge, not an interior gap); scipy's two-sample KS
    against the CVs computed from the written trace."""
    from scipy import stats

    from .tracefiles import write_invocations

    rng = np.random.default_rng(5)
    rows, written = [], []
    for i in range(30):
        minutes = np.arange(9 * 60, 17 * 60)
        fired = minutes[rng.poisson(2.0 + 0.2 * i, len(minutes)) > 0]
        written.append(fired)
        rows.append((f"o{i}", f"a{i}", f"f{i}", "http", {int(m) + 1: 1 for m in fired}))
    for i in range(30, 60):  # the same clock at every hour
        fired = np.flatnonzero(rng.poisson(0.3, 1440) > 0)
        rows.append((f"o{i}", f"a{i}", f"f{i}", "queue", {int(m) + 1: 1 for m in fired}))
    trace = tmp_path / "trace"
    trace.mkdir()
    write_invocations(trace, 1, rows)
    ingest(trace, tmp_path / "t.duckdb")
    synthesize(WorkloadConfig(mode="parametric", models=60, minutes=1440, seed=2), tmp_path / "p",
               db=tmp_path / "t.duckdb")
    requests = pl.read_parquet(tmp_path / "p" / "requests.parquet")
    models = pl.read_parquet(tmp_path / "p" / "models.parquet")
    office = models.filter(pl.col("source_trigger") == "http")["model_id"].to_numpy()
    model_id, minute = requests["model_id"].to_numpy(), requests["t_ms"].to_numpy() // 60_000
    in_office = np.isin(model_id, office)
    assert np.mean((minute[in_office] >= 8 * 60) & (minute[in_office] < 18 * 60)) > 0.95
    candidate = _iat_cv([minute[model_id == m] for m in office])
    reference = _iat_cv(written)
    assert np.isfinite(candidate).all() and len(candidate) == 30
    # a night drawn inside the window gives CVs near sqrt(n) (one 900-min gap among ~480 1-min ones)
    assert stats.ks_2samp(candidate, reference).statistic <= 0.3
    assert np.median(candidate) < 2 * np.median(reference) + 0.1
