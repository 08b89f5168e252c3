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
