"""The embedded synthetic trace: exact schema, seeded, and its calibration report.

The calibration figures are recomputed here from the CSV files with plain csv/numpy (not with the
module's code); whether every target passes at 10,000 functions x 14 days is checked by
benchmarks/calibrate_trace.py (too slow for the suite)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.errors import ManyModelsError
from pipeline.trace.calibration import _cv, _gap_update, _new_gap_state, calibrate_directory
from pipeline.trace.schema import (
    DURATION_COLUMNS,
    DURATIONS,
    INVOCATION_COLUMNS,
    INVOCATIONS,
    MEMORY,
    MEMORY_COLUMNS,
    TRIGGERS,
    discover,
    file_name,
)
from pipeline.trace.synthetic import SyntheticTraceConfig, synthesize_trace


@pytest.fixture(scope="module")
def three_days(tmp_path_factory):
    out = tmp_path_factory.mktemp("calibration")
    manifest = synthesize_trace(SyntheticTraceConfig(functions=600, days=3, seed=3), out)
    return out, manifest


def test_exact_schema_and_layout(tmp_path):
    synthesize_trace(SyntheticTraceConfig(functions=50, days=14, seed=1), tmp_path)
    layout = discover(tmp_path)
    assert layout.days == list(range(1, 15))
    for day in layout.days:
        assert pl.read_csv(layout.path(day, INVOCATIONS), n_rows=1).columns == INVOCATION_COLUMNS
        assert pl.read_csv(layout.path(day, DURATIONS), n_rows=1).columns == DURATION_COLUMNS
        # like the real trace: no memory files for d13 and d14
        assert (layout.path(day, MEMORY) is not None) == (day <= 12)
    assert pl.read_csv(layout.path(1, MEMORY), n_rows=1).columns == MEMORY_COLUMNS
    manifest = json.loads((tmp_path / "SYNTHETIC.json").read_text())
    assert manifest["source"] == "synthetic"


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    def digest(seed, name):
        out = tmp_path / name
        synthesize_trace(SyntheticTraceConfig(functions=40, days=2, seed=seed), out)
        return hashlib.sha256((out / file_name(INVOCATIONS, 2)).read_bytes()).hexdigest()

    assert digest(5, "a") == digest(5, "b")
    assert digest(5, "a") != digest(6, "c")


def test_rejects_bad_config(tmp_path):
    with pytest.raises(ManyModelsError, match="--days"):
        synthesize_trace(SyntheticTraceConfig(functions=10, days=15), tmp_path)


def _read_invocations(directory, days):
    """Plain csv + numpy reading of the invocation files (independent of polars and the module)."""
    import csv

    rows = []
    for day in range(1, days + 1):
        with (directory / file_name(INVOCATIONS, day)).open() as handle:
            reader = csv.reader(handle)
            assert next(reader) == INVOCATION_COLUMNS
            for record in reader:
                rows.append((day, record[0], record[1], record[2], record[3], np.array(record[4:], dtype=np.int64)))
    return rows


def _brute_force_app_cv(rows, days):
    """Per-app CV of inter-arrival gaps: every invocation placed explicitly (k in a minute at m + j/k)."""
    arrivals = {}
    for day, owner, app, _function, _trigger, counts in rows:
        per_app = arrivals.setdefault((owner, app), np.zeros(days * 1440, dtype=np.int64))
        per_app[(day - 1) * 1440:day * 1440] += counts
    cv = []
    for counts in arrivals.values():
        minutes = np.flatnonzero(counts)
        k = counts[minutes]
        times = np.concatenate([m + np.arange(c) / c for m, c in zip(minutes, k)]) if len(minutes) else []
        if len(times) >= 2:
            gaps = np.diff(times)
            cv.append(gaps.std() / gaps.mean())
    return np.array(cv)


def test_calibration_matches_an_independent_computation_over_the_files(three_days):
    out, manifest = three_days
    measured = manifest["measured"]
    days = 3
    rows = _read_invocations(out, days)
    totals, triggers, apps = {}, {}, {}
    trigger_invocations = {}
    for _day, owner, app, function, trigger, counts in rows:
        key = (owner, app, function)
        totals[key] = totals.get(key, 0) + int(counts.sum())
        triggers.setdefault(key, trigger)
        apps.setdefault((owner, app), set()).add(function)
        trigger_invocations[trigger] = trigger_invocations.get(trigger, 0) + int(counts.sum())
    grand = sum(totals.values())
    function_daily = np.array([t / days for t in totals.values() if t > 0])
    app_total = {}
    for (owner, app, _f), t in totals.items():
        app_total[(owner, app)] = app_total.get((owner, app), 0) + t
    app_daily = np.array([t / days for t in app_total.values() if t > 0])
    assert measured["functions"] == len(totals)
    assert measured["functions_daily_cdf_5"] == pytest.approx(np.mean(function_daily <= 5), abs=1e-12)
    assert measured["apps_daily_cdf_50"] == pytest.approx(np.mean(app_daily <= 50), abs=1e-12)
    assert measured["apps_at_most_once_per_hour"] == pytest.approx(np.mean(app_daily <= 24), abs=1e-12)
    assert measured["invocation_share_queue"] == pytest.approx(trigger_invocations.get("queue", 0) / grand, abs=1e-12)
    assert measured["function_share_http"] == pytest.approx(np.mean([t == "http" for t in triggers.values()]), abs=1e-12)
    small = sum(t for (o, a), t in app_total.items() if len(apps[(o, a)]) <= 3)
    assert measured["invocation_share_apps_at_most_3_functions"] == pytest.approx(small / grand, abs=1e-12)
    cv = _brute_force_app_cv(rows, days)
    assert measured["apps_with_iat_cv"] == len(cv)
    assert measured["apps_iat_cv_cdf_1"] == pytest.approx(np.mean(cv <= 1.0), abs=1e-12)
    assert measured["apps_iat_cv_cdf_4"] == pytest.approx(np.mean(cv <= 4.0), abs=1e-12)
    assert measured["apps_iat_cv_cdf_0"] == pytest.approx(np.mean(cv <= 1e-9), abs=1e-12)
    hourly = np.zeros(days * 24)
    for day, *_rest, counts in rows:
        hourly[(day - 1) * 24:day * 24] += counts.reshape(24, 60).sum(axis=1)
    assert measured["hourly_vs_mean_min"] == pytest.approx(hourly.min() / hourly.mean(), rel=1e-9)


def test_manifest_equals_a_measurement_of_the_files_read_back(three_days):
    out, manifest = three_days
    measured, report = calibrate_directory(out)
    for key in ("functions_daily_cdf_15", "apps_iat_cv_cdf_2", "invocation_share_event", "duration_log_mean_s",
                "memory_avg_ks_vs_burr_xii", "apps_max_memory_at_most_400mb", "d01_idle_half_share_all_rows"):
        assert measured[key] == pytest.approx(manifest["measured"][key], rel=1e-9, abs=1e-12), key
    assert {k: v["status"] for k, v in report.items()} == {k: v["status"] for k, v in manifest["calibration"].items()}


def test_every_target_is_reported_with_tolerance_and_status(three_days):
    _out, manifest = three_days
    report = manifest["calibration"]
    # every DESIGN 2c point and the 2b figures are there
    for x in (0.3, 0.7, 1.5, 3, 5, 15, 50, 500, 1000, 3000, 30000):
        assert f"functions_daily_cdf_{x:g}" in report
    for x in (0.7, 1.5, 3, 15, 50, 150, 500, 1000, 3000, 30000):
        assert f"apps_daily_cdf_{x:g}" in report
    for t in TRIGGERS:
        assert f"function_share_{t}" in report and f"invocation_share_{t}" in report
    for entry in report.values():
        assert set(entry) >= {"target", "achieved", "tolerance", "status", "source"}
        assert entry["status"] in ("pass", "fail", "unresolved")
    assert report["apps_avg_memory_at_most_170mb"]["status"] == "unresolved"
    assumption = manifest["assumptions"]["never_invoked_share"]
    assert assumption["value"] == 0.0
    achieved = assumption["achieved"]
    assert achieved["idle_half_share_d01_all_rows"] >= achieved["idle_half_share_d01_active_rows"]


def test_never_invoked_share_adds_dormant_functions(tmp_path):
    base = synthesize_trace(SyntheticTraceConfig(functions=800, days=2, seed=4), tmp_path / "a")["measured"]
    more = synthesize_trace(SyntheticTraceConfig(functions=800, days=2, seed=4, never_invoked_share=0.3),
                            tmp_path / "b")["measured"]
    assert more["functions"] == base["functions"] == 800
    assert more["functions_never_invoked_in_window"] >= 0.3
    assert more["functions_never_invoked_in_window"] > base["functions_never_invoked_in_window"] + 0.15
    with pytest.raises(ManyModelsError, match="--never-invoked-share"):
        synthesize_trace(SyntheticTraceConfig(functions=10, never_invoked_share=1.0), tmp_path / "c")


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.integers(0, 4), min_size=20, max_size=20), min_size=1, max_size=4),
       st.integers(1, 3))
def test_streamed_gap_statistics_match_explicit_arrivals(matrix, days):
    """The per-unit CV accumulated day by day equals the CV of the explicitly placed arrivals."""
    counts = np.array(matrix, dtype=np.int64)
    minutes = counts.shape[1]
    state = _new_gap_state(len(counts))
    full = np.tile(counts, (1, days))
    for day in range(days):
        _gap_update(counts, day * minutes, state, spread=True)
    cv = _cv(state)
    for unit, row in enumerate(full):
        active = np.flatnonzero(row)
        times = np.concatenate([m + np.arange(row[m]) / row[m] for m in active]) if len(active) else np.array([])
        if len(times) < 2:
            assert np.isnan(cv[unit])
        else:
            gaps = np.diff(times)
            assert cv[unit] == pytest.approx(gaps.std() / gaps.mean(), abs=1e-9)


def test_sparse_poisson_rows_keep_the_intensity():
    from pipeline.trace.synthetic import _poisson_rows

    rng = np.random.default_rng(0)
    lam = np.tile(np.where(np.arange(1440) < 720, 0.002, 0.018), (3000, 1))  # 15 a day, 90% in the 2nd half
    counts = _poisson_rows(rng, lam)
    assert abs(counts.sum() / lam.sum() - 1) < 0.02
    assert abs(counts[:, 720:].sum() / counts.sum() - 0.9) < 0.01
    per_row = counts.sum(axis=1)
    assert abs(per_row.var() / per_row.mean() - 1) < 0.1  # Poisson totals


def _write_invocations(directory, day, matrix, triggers=None):
    """A hand-made invocations file: one row per function, all in app a (f0..) owned by o."""
    import csv

    with (directory / file_name(INVOCATIONS, day)).open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(INVOCATION_COLUMNS)
        for i, row in enumerate(matrix):
            writer.writerow(["o", f"a{i % 2}", f"f{i}", (triggers or ["http"] * len(matrix))[i], *row.tolist()])


def _independent_day_figures(matrix):
    """The issue-9 real-row figures of one day, one function at a time with plain numpy."""
    cvs, idle_runs = [], []
    for row in matrix:
        active = np.flatnonzero(row)
        if len(active) >= 2:
            gaps = np.diff(active).astype(float)
            cvs.append(gaps.std() / gaps.mean())
            idle_runs += [g - 1 for g in gaps if g > 1]
    per_minute = matrix.sum(axis=0)
    hourly = per_minute.reshape(24, 60).sum(axis=1)
    return {
        "functions_with_minute_iat_cv": len(cvs),
        "functions_minute_iat_cv_above_1": float(np.mean(np.array(cvs) > 1.0)),
        "minute_peak_to_trough": per_minute.max() / per_minute.min(),
        "idle_period_q75_min": float(np.quantile(idle_runs, 0.75)),
        "quietest_hour_vs_mean": hourly.min() / hourly.mean(),
    }


def test_real_row_targets_match_an_independent_computation_on_a_hand_made_trace(tmp_path):
    matrix = np.zeros((6, 1440), dtype=np.int64)
    matrix[0, [0, 1, 2, 100]] = 1  # gaps 1, 1, 98: CV 1.37 > 1; one idle period of 97
    matrix[1, ::10] = 3  # every 10 minutes: CV 0, idle periods of 9
    matrix[2, 700] = 5  # one active minute: no CV
    matrix[4, [0, 5, 7]] = 1  # gaps 5, 2: CV 3/7
    matrix[5] = 2  # every minute: CV 0, no idle period
    matrix[5, 600:660] = 1  # a quiet hour
    matrix[5, 900] = 40  # a peak
    # by hand: CV > 1 for 1 of the 4 functions with >= 2 active minutes; trough 1 (f5 alone in minute 601),
    # peak 40 + 3 (f1 also fires at 900)
    assert _independent_day_figures(matrix)["functions_minute_iat_cv_above_1"] == 0.25
    assert _independent_day_figures(matrix)["minute_peak_to_trough"] == 43.0
    second = np.roll(matrix, 37, axis=1)
    second[3, [10, 11, 500, 501, 502, 1300]] = 1  # gaps 1, 489, 1, 1, 798: CV > 1
    _write_invocations(tmp_path, 1, matrix)
    _write_invocations(tmp_path, 2, second)
    measured, report = calibrate_directory(tmp_path)
    for key, value in _independent_day_figures(matrix).items():
        assert measured[f"d01_{key}"] == pytest.approx(value, rel=1e-12), key
    both = [_independent_day_figures(m) for m in (matrix, second)]
    for key in ("functions_minute_iat_cv_above_1", "minute_peak_to_trough", "idle_period_q75_min",
                "quietest_hour_vs_mean"):
        assert measured[f"days_{key}_p50"] == pytest.approx(np.percentile([b[key] for b in both], 50), rel=1e-12)
        entry = report[f"d01_{key}"]
        assert entry["source"] == "issue 9, real Azure 2019 d01 rows as measured by the reporter"
        assert entry["computation"] and entry["tolerance_why"]
        assert entry["status"] == ("pass" if abs(entry["achieved"] - entry["target"]) <= entry["tolerance"] else "fail")
    # tolerance of the share: 0.005 + 2 standard errors of a share of the 4 functions measured
    assert report["d01_functions_minute_iat_cv_above_1"]["tolerance"] == pytest.approx(
        0.005 + 2 * np.sqrt(0.54 * 0.46 / 4), abs=1e-6)


def test_renewal_arrivals_keep_the_rate_and_are_bursty():
    from pipeline.trace.synthetic import _renewal_arrivals

    rng = np.random.default_rng(1)
    n, rate, window = 400, 20.0, 14 * 1440
    function, minute = _renewal_arrivals(rng, np.arange(n) + 1000, np.full(n, rate), np.full(n, 2.0), window)
    assert np.all(np.diff(minute) >= 0) and minute.min() >= 0 and minute.max() < window
    per_function = np.bincount(function - 1000, minlength=n)
    assert abs(per_function.mean() / (rate * 14) - 1) < 0.1
    # heavy-tailed gaps: most functions' gaps have CV well above 1 (Poisson: 1)
    cv = []
    for f in range(n):
        times = np.sort(minute[function == f + 1000])
        if len(times) > 10:
            gaps = np.diff(times)
            cv.append(gaps.std() / max(gaps.mean(), 1e-9))
    assert np.median(cv) > 1.5


def test_session_mask_and_spikes_keep_the_mean():
    from pipeline.trace.synthetic import _session_mask, _spike_factor

    rng = np.random.default_rng(2)
    duty = np.full(3000, 0.3)
    on = _session_mask(rng, duty, np.full(3000, 60.0), 0.4)
    assert set(np.unique(on)) <= {0.0, 1.0}
    assert abs(on.mean() - 0.3) < 0.03
    # on-periods: a row switches state a few times a day, not every minute
    switches = np.abs(np.diff(on, axis=1)).sum(axis=1)
    assert 2 < switches.mean() < 20
    config = SyntheticTraceConfig(spikes_per_day=10.0, spike_factor_log10_mean=0.8, spike_factor_log10_sd=0.12)
    factor = _spike_factor(rng, 3000, config)
    assert abs(factor.mean() - 1.0) < 0.03
    assert factor.max() > 5 * np.median(factor)
