"""Characterization figures cross-checked against plain numpy over the raw CSV files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from pipeline.characterize.fits import lognormal_fit, powerlaw_fit, zipf_fit
from pipeline.characterize.stage import characterize
from pipeline.trace.ingest import ingest
from pipeline.trace.schema import INVOCATIONS

from .tracefiles import write_invocations


def raw_timelines(trace: Path) -> tuple[dict[tuple, np.ndarray], dict[int, dict[tuple, np.ndarray]], list[int]]:
    """Per function, its counts over the whole window (zeros on days it is absent), from the CSVs."""
    per_day: dict[int, dict[tuple, np.ndarray]] = {}
    for path in sorted(trace.glob(f"{INVOCATIONS}.anon.d*.csv")):
        day = int(path.name.split(".d")[-1][:2])
        with path.open(newline="") as handle:
            reader = csv.reader(handle)
            next(reader)
            per_day[day] = {tuple(row[:3]): np.array(row[4:], dtype=np.int64) for row in reader}
    days = sorted(per_day)
    keys = sorted({k for rows in per_day.values() for k in rows})
    timeline = {k: np.concatenate([per_day[d].get(k, np.zeros(1440, dtype=np.int64)) for d in days]) for k in keys}
    return timeline, per_day, days


def runs(active: np.ndarray, value: bool) -> list[int]:
    """Lengths of maximal runs equal to `value`; idle runs only count between two active minutes."""
    lengths, current, seen_active = [], 0, False
    for flag in active:
        if flag == value:
            current += 1
        else:
            if current and (value or seen_active):
                lengths.append(current)
            current = 0
        seen_active |= bool(flag)
    if current and value:
        lengths.append(current)
    return lengths


@pytest.fixture(scope="module")
def characterized(small_synthetic_trace, tmp_path_factory):
    trace, db = small_synthetic_trace
    out = tmp_path_factory.mktemp("characterization")
    metrics = characterize(db, out, out / "metrics.json")
    return trace, out, metrics


def test_idle_headline_matches_numpy(characterized):
    trace, out, metrics = characterized
    timeline, per_day, days = raw_timelines(trace)
    d01 = np.array([np.mean(c == 0) for c in per_day[1].values()])
    d01_fired = np.array([c.sum() > 0 for c in per_day[1].values()])
    assert metrics["idle_half_share_d01"] == pytest.approx(np.mean(d01 > 0.5))
    assert metrics["idle_half_share_d01_active"] == pytest.approx(np.mean(d01[d01_fired] > 0.5))
    pooled = np.array([np.mean(c == 0) for c in timeline.values()])
    fired = np.array([c.sum() > 0 for c in timeline.values()])
    assert metrics["idle_half_share_pooled"] == pytest.approx(np.mean(pooled > 0.5))
    assert metrics["idle_half_share_pooled_active"] == pytest.approx(np.mean(pooled[fired] > 0.5))
    for day in days:
        share = np.mean([np.mean(c == 0) > 0.5 for c in per_day[day].values()])
        assert metrics["idle_half_share_by_day"][f"d{day:02d}"] == pytest.approx(share)
    assert metrics["functions"] == len(timeline) and metrics["days"] == len(days)
    assert metrics["source"] == "synthetic"
    on_disk = json.loads((out / "metrics.json").read_text())
    assert on_disk["idle_half_share_d01"] == metrics["idle_half_share_d01"]


def test_popularity_shares_match_numpy(characterized):
    trace, out, metrics = characterized
    timeline, _, _ = raw_timelines(trace)
    totals = np.sort([c.sum() for c in timeline.values()])[::-1]
    for name, fraction in (("top_1pct", 0.01), ("top_10pct", 0.10)):
        k = int(np.ceil(fraction * len(totals)))
        assert metrics["popularity"][f"{name}_invocation_share"] == pytest.approx(totals[:k].sum() / totals.sum())
    popularity = pl.read_parquet(out / "popularity.parquet")
    assert popularity["invocations"].to_list() == totals.tolist()
    assert metrics["invocations"] == totals.sum()


def test_arrivals_and_periods_match_numpy(characterized):
    trace, out, _ = characterized
    timeline, _, _ = raw_timelines(trace)
    arrivals = pl.read_parquet(out / "arrivals.parquet")
    functions = pl.read_parquet(out / "popularity.parquet").select("function_id", "owner", "app")
    # function ids are assigned in (owner, app, function) order, as the sorted keys here
    keys = sorted(timeline)
    cv_expected = {}
    idle_expected: dict[int, int] = {}
    busy_expected: dict[int, int] = {}
    for function_id, key in enumerate(keys, start=1):
        active = timeline[key] > 0
        gaps = np.diff(np.flatnonzero(active))
        if len(gaps) >= 2:
            cv_expected[function_id] = gaps.std() / gaps.mean()
        for length in runs(active, False):
            idle_expected[length] = idle_expected.get(length, 0) + 1
        for length in runs(active, True):
            busy_expected[length] = busy_expected.get(length, 0) + 1
    got = dict(arrivals.drop_nulls("iat_cv").select("function_id", "iat_cv").iter_rows())
    assert set(got) == set(cv_expected)
    assert np.allclose([got[k] for k in sorted(got)], [cv_expected[k] for k in sorted(got)])
    run_lengths = pl.read_parquet(out / "run_lengths.parquet")
    idle = dict(run_lengths.filter(pl.col("kind") == "idle").select("length_min", "periods").iter_rows())
    busy = dict(run_lengths.filter(pl.col("kind") == "busy").select("length_min", "periods").iter_rows())
    assert idle == idle_expected
    assert busy == busy_expected
    assert functions.height == len(keys)


def test_diurnal_profile_matches_numpy(characterized):
    trace, out, _ = characterized
    _, per_day, _ = raw_timelines(trace)
    diurnal = pl.read_parquet(out / "diurnal.parquet")
    for day, rows in per_day.items():
        expected = np.sum(list(rows.values()), axis=0)
        got = np.zeros(1440, dtype=np.int64)
        part = diurnal.filter(pl.col("day") == day)
        got[part["minute"].to_numpy() - 1] = part["invocations"].to_numpy()
        assert np.array_equal(got, expected)


def test_fits_recover_known_parameters():
    rng = np.random.default_rng(0)
    pareto = (rng.pareto(1.5, 20000) + 1.0) * 10.0  # alpha = 2.5, xmin = 10
    fit = powerlaw_fit(pareto)
    assert fit["alpha"] == pytest.approx(2.5, abs=0.1)
    lognormal = np.exp(rng.normal(3.0, 1.5, 20000))
    assert lognormal_fit(lognormal)["mu"] == pytest.approx(3.0, abs=0.05)
    ranks = np.arange(1, 2001)
    assert zipf_fit(1e6 * ranks ** -1.2)["exponent"] == pytest.approx(1.2, abs=1e-6)


def _characterize_rows(tmp_path, days: dict[int, list]) -> dict:
    trace = tmp_path / "trace"
    trace.mkdir()
    for day, rows in days.items():
        write_invocations(trace, day, rows)
    db = tmp_path / "trace.duckdb"
    ingest(trace, db)
    return characterize(db, tmp_path / "out", tmp_path / "metrics.json")


def test_degenerate_day_with_no_invocations(tmp_path):
    metrics = _characterize_rows(tmp_path, {
        1: [("o", "a", "f1", "http", {}), ("o", "a", "f2", "queue", {})],
        2: [("o", "a", "f1", "http", {10: 1, 20: 3})],
    })
    assert metrics["idle_half_share_d01"] == 1.0
    assert metrics["idle_half_share_d01_active"] is None  # nobody fired on d01
    assert metrics["idle_half_share_pooled"] == 1.0 and metrics["functions_active"] == 1


def test_degenerate_single_function_always_busy(tmp_path):
    busy = {m: 1 for m in range(1, 1441)}
    metrics = _characterize_rows(tmp_path, {1: [("o", "a", "f", "timer", busy)], 2: [("o", "a", "f", "timer", busy)]})
    assert metrics["idle_half_share_d01"] == 0.0 and metrics["idle_half_share_pooled"] == 0.0
    assert metrics["arrivals"]["idle_periods"] == 0
    runs_ = pl.read_parquet(tmp_path / "out" / "run_lengths.parquet")
    assert runs_.filter(pl.col("kind") == "busy").rows() == [("busy", 2880, 1)]  # merged across midnight
    assert metrics["popularity"]["fits"]["power_law"]["alpha"] is None


def test_function_present_on_some_days_only(tmp_path):
    metrics = _characterize_rows(tmp_path, {
        1: [("o", "a", "f1", "http", {m: 1 for m in range(1, 1000)})],
        2: [("o", "a", "f1", "http", {m: 1 for m in range(1, 1000)}), ("o", "b", "f2", "event", {m: 1 for m in range(1, 1441)})],
    })
    # f2 is absent on d01: pooled over the window it is idle exactly half the time (not more)
    assert metrics["idle_half_share_pooled"] == 0.0
    assert metrics["idle_half_share_by_day"] == {"d01": 0.0, "d02": 0.0}


def test_results_do_not_depend_on_the_dask_engine(small_synthetic_trace, tmp_path):
    _, db = small_synthetic_trace
    threads = characterize(db, tmp_path / "t", tmp_path / "t.json", scheduler="threads")
    local = characterize(db, tmp_path / "l", tmp_path / "l.json", scheduler="local", workers=2)
    assert threads["idle_half_share_d01"] == local["idle_half_share_d01"]
    for name in ("arrivals", "run_lengths", "popularity", "diurnal"):
        a, b = pl.read_parquet(tmp_path / "t" / f"{name}.parquet"), pl.read_parquet(tmp_path / "l" / f"{name}.parquet")
        assert a.equals(b), name


def raw_keys(trace: Path) -> dict[tuple, str]:
    """Each function's trigger on the first day it appears (the functions table's rule)."""
    triggers: dict[tuple, str] = {}
    for path in sorted(trace.glob(f"{INVOCATIONS}.anon.d*.csv")):
        with path.open(newline="") as handle:
            reader = csv.reader(handle)
            next(reader)
            for row in reader:
                triggers.setdefault(tuple(row[:3]), row[3])
    return triggers


def test_idle_at_coarser_resolutions_matches_numpy(characterized):
    trace, out, metrics = characterized
    timeline, per_day, days = raw_timelines(trace)
    table = pl.read_parquet(out / "idle_resolution.parquet").filter(pl.col("trigger") == "all")

    def share(scope, population, k):
        return table.filter((pl.col("scope") == scope) & (pl.col("population") == population)
                            & (pl.col("measure") == "idle_bins") & (pl.col("resolution_min") == k))["share"][0]

    for k in (1, 5, 10, 60):
        for day in days:
            counts = np.array(list(per_day[day].values()))
            binned = counts.reshape(len(counts), 1440 // k, k).sum(axis=2)
            idle = (binned == 0).mean(axis=1)
            fired = counts.sum(axis=1) > 0
            assert share(f"d{day:02d}", "all", k) == pytest.approx(np.mean(idle > 0.5))
            assert share(f"d{day:02d}", "active", k) == pytest.approx(np.mean(idle[fired] > 0.5))
        whole = np.array(list(timeline.values()))
        binned = whole.reshape(len(whole), -1, k).sum(axis=2)
        idle = (binned == 0).mean(axis=1)
        fired = whole.sum(axis=1) > 0
        assert share("pooled", "all", k) == pytest.approx(np.mean(idle > 0.5))
        assert share("pooled", "active", k) == pytest.approx(np.mean(idle[fired] > 0.5))
        if k > 1:
            assert metrics["idle_half_share_by_resolution"]["d01_all"][f"{k}min"] == share("d01", "all", k)
    assert share("d01", "all", 1) == metrics["idle_half_share_d01"]  # k = 1 is the paper's definition
    assert share("pooled", "active", 1) == metrics["idle_half_share_pooled_active"]


def resident(active: np.ndarray, keep_alive: int) -> np.ndarray:
    """Minute m is resident if some minute in m - keep_alive .. m is active (plain numpy)."""
    padded = np.concatenate([np.zeros(keep_alive, dtype=bool), active])
    return np.array([padded[m:m + keep_alive + 1].any() for m in range(len(active))])


def test_keep_alive_residency_matches_numpy(characterized):
    trace, out, metrics = characterized
    timeline, per_day, days = raw_timelines(trace)
    keys = sorted(timeline)
    ids = {key: i for i, key in enumerate(keys, start=1)}
    k = metrics["keep_alive_min"]
    whole = {key: resident(timeline[key] > 0, k) for key in keys}
    pooled = pl.read_parquet(out / "idle_pooled.parquet").sort("function_id")
    assert pooled["resident_fraction_pooled"].to_list() == pytest.approx([whole[key].mean() for key in keys])
    per_day_table = pl.read_parquet(out / "idle_fractions.parquet")
    for day in days:
        got = dict(per_day_table.filter(pl.col("day") == day).select("function_id", "resident_fraction").iter_rows())
        # on day d, minutes carried over from d-1's last invocations count (the whole timeline, cut at the day)
        expected = {ids[key]: whole[key][(day - days[0]) * 1440:(day - days[0] + 1) * 1440].mean() for key in per_day[day]}
        assert got.keys() == expected.keys()
        assert [got[i] for i in sorted(got)] == pytest.approx([expected[i] for i in sorted(got)])
    d01 = np.array([expected_value < 0.5 for expected_value in
                    [whole[key][:1440].mean() for key in per_day[days[0]]]])
    assert metrics["resident_under_half_share"]["d01_all"] == pytest.approx(d01.mean())


def test_zero_keep_alive_is_the_active_fraction(small_synthetic_trace, tmp_path):
    _, db = small_synthetic_trace
    characterize(db, tmp_path / "o", tmp_path / "m.json", keep_alive_min=0)
    days = pl.read_parquet(tmp_path / "o" / "idle_fractions.parquet")
    assert np.allclose(days["resident_fraction"].to_numpy(), 1.0 - days["idle_fraction"].to_numpy())


def test_published_comparison_tables_match_numpy(characterized):
    trace, out, metrics = characterized
    timeline, _, days = raw_timelines(trace)
    triggers = raw_keys(trace)
    totals = {key: int(c.sum()) for key, c in timeline.items()}
    apps: dict[tuple, list] = {}
    for key in timeline:
        apps.setdefault(key[:2], []).append(key)
    # functions per app and invocations by app size
    fpa = pl.read_parquet(out / "functions_per_app.parquet")
    sizes = np.array([len(v) for v in apps.values()])
    app_totals = np.array([sum(totals[k] for k in v) for v in apps.values()])
    for row in fpa.iter_rows(named=True):
        assert row["apps"] == np.sum(sizes == row["functions"])
        assert row["invocation_share"] == pytest.approx(app_totals[sizes == row["functions"]].sum() / app_totals.sum())
    assert metrics["apps_and_triggers"]["apps_one_function_share"] == pytest.approx(np.mean(sizes == 1))
    assert metrics["apps_and_triggers"]["invocations_from_apps_at_most_3_functions_share"] == pytest.approx(
        app_totals[sizes <= 3].sum() / app_totals.sum())
    # trigger shares of functions and invocations
    shares = {r["trigger"]: r for r in pl.read_parquet(out / "triggers.parquet").iter_rows(named=True)}
    for trigger in set(triggers.values()):
        members = [k for k, t in triggers.items() if t == trigger]
        assert shares[trigger]["function_share"] == pytest.approx(len(members) / len(triggers))
        assert shares[trigger]["invocation_share"] == pytest.approx(sum(totals[k] for k in members) / sum(totals.values()))
    # average daily invocations (functions and apps with at least one invocation) and the reference points
    daily = pl.read_parquet(out / "daily_invocations.parquet")
    per_function = np.sort([t / len(days) for t in totals.values() if t > 0])
    per_app = np.sort([t / len(days) for t in app_totals if t > 0])
    assert np.allclose(np.sort(daily.filter(pl.col("level") == "function")["avg_daily_invocations"].to_numpy()), per_function)
    assert np.allclose(np.sort(daily.filter(pl.col("level") == "app")["avg_daily_invocations"].to_numpy()), per_app)
    reference = pl.read_parquet(out / "daily_invocations_reference.parquet")
    for row in reference.iter_rows(named=True):
        values = per_function if row["level"] == "function" else per_app
        assert row["this_trace_share"] == pytest.approx(np.mean(values <= row["avg_daily_invocations"]))
    # per-app IAT CV at minute resolution: gaps between minutes where any function of the app fired
    app_iat = pl.read_parquet(out / "app_iat.parquet")
    expected = []
    for members in apps.values():
        active = np.flatnonzero(np.sum([timeline[k] for k in members], axis=0) > 0)
        gaps = np.diff(active)
        if len(gaps) >= 2:
            expected.append(gaps.std() / gaps.mean())
    assert np.allclose(np.sort(app_iat["iat_cv"].drop_nulls().to_numpy()), np.sort(expected))
    assert metrics["arrivals"]["app_iat_cv_above_1_share"] == pytest.approx(np.mean(np.array(expected) > 1))
    # invocations per hour relative to the mean hour of the window
    hourly = pl.read_parquet(out / "hourly.parquet").sort("hour")
    per_hour = np.sum(list(timeline.values()), axis=0).reshape(-1, 60).sum(axis=1)
    assert np.allclose(hourly["relative_to_mean"].to_numpy(), per_hour / per_hour.mean())


def test_duration_and_memory_percentiles_match_numpy(characterized):
    trace, out, _ = characterized
    minimum: dict[tuple, float] = {}
    maximum: dict[tuple, float] = {}
    for path in sorted(trace.glob("function_durations_percentiles.anon.d*.csv")):
        with path.open(newline="") as handle:
            for row in csv.DictReader(handle):
                key = (row["HashOwner"], row["HashApp"], row["HashFunction"])
                if row["Minimum"]:
                    minimum[key] = min(minimum.get(key, np.inf), float(row["Minimum"]))
                if row["Maximum"]:
                    maximum[key] = max(maximum.get(key, -np.inf), float(row["Maximum"]))
    memory_max: dict[tuple, float] = {}
    for path in sorted(trace.glob("app_memory_percentiles.anon.d*.csv")):
        with path.open(newline="") as handle:
            for row in csv.DictReader(handle):
                key = (row["HashOwner"], row["HashApp"])
                memory_max[key] = max(memory_max.get(key, -np.inf), float(row["AverageAllocatedMb_pct100"]))
    table = pl.read_parquet(out / "resource_percentiles.parquet")
    for column, values in (("min_duration_ms", minimum), ("max_duration_ms", maximum), ("max_memory_mb", memory_max)):
        part = table.filter(pl.col("column") == column).sort("quantile")
        data = np.array(list(values.values()))
        assert part["n"][0] == len(data), column
        assert np.allclose(part["value"].to_numpy(), np.quantile(data, part["quantile"].to_numpy())), column


def test_metrics_file_is_small_and_flat(characterized):
    _, out, metrics = characterized
    flat = json.loads((out / "metrics.json").read_text())
    assert all(not isinstance(v, dict | list) for v in flat.values())
    assert len(flat) <= 30
    for key in ("idle_half_share_d01", "idle_half_share_d01_active", "idle_half_share_pooled",
                "idle_half_share_pooled_active"):
        assert flat[key] == metrics[key]
    assert json.loads((out / "summary.json").read_text())["popularity"] == metrics["popularity"]


def test_zipf_line_passes_near_the_head_of_a_curved_rank_frequency():
    # a lognormal popularity (curved on log-log axes): the fitted line at rank 1 stays within 10x of the data
    counts = np.sort(np.exp(np.random.default_rng(3).normal(4.0, 3.0, 2000)).round() + 1)[::-1]
    fit = zipf_fit(counts)
    assert 0.1 < np.exp(fit["intercept"]) / counts[0] < 10
