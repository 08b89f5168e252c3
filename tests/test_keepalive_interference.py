"""Keep-alive with pre-warming (hybrid-histogram, forecast-prewarm) and interference: hand-computed cases."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from pipeline.cli import cli
from pipeline.simulate import engine
from pipeline.simulate.core import Workload, simulate
from pipeline.simulate.run import memory_time_mb_min, summarize

from .test_exports import write_workload

MIN = 60_000


def one_model(times_ms, load=2000.0, exe=100.0, size=100.0) -> Workload:
    t = np.asarray(times_ms, dtype=np.int64)
    return Workload(t, np.zeros(len(t), np.int32), np.array([size]), np.array([load]), np.array([exe]),
                    np.array([10.0]))


def test_periodic_model_one_cold_start_and_less_memory_time_than_a_60_minute_keep_alive():
    # every 30 min, 20 times; load 2 s, exec 0.1 s. Idle times 30 min - 2.1 s, then 30 min - 0.1 s: all in
    # the bin [29, 30) min. Until 5 samples (the 6th request) the fixed keep-alive (60 min) keeps the model
    # loaded; from the 6th completion on: unload at completion, pre-warm at 29 x 0.9 = 26.1 min, keep until
    # 30 x 1.1 = 33 min; each next request finds it loaded.
    w = one_model(np.arange(20) * 30 * MIN)
    hybrid = simulate(w, "hybrid-histogram", 1000.0, policy_params={"ttl_min": 60.0})
    keep60 = simulate(w, "ttl", 1000.0, policy_params={"ttl_min": 60.0})
    assert hybrid.cold.sum() == 1 and keep60.cold.sum() == 1
    assert hybrid.hits.sum() == 19
    assert hybrid.prewarm_loads == 14 and hybrid.wasted_prewarms == 0
    assert hybrid.loads == 15 and hybrid.load_time_ms_total == 15 * 2000.0
    # resident [0, 150 min + 0.1 s], then 14 x [t - 3.9 min, t + 0.1 s]; 100 MB
    expected = 100.0 * (150.0 + 0.1 / 60 + 14 * 3.9)
    assert memory_time_mb_min(hybrid, w) == pytest.approx(expected)
    assert memory_time_mb_min(keep60, w) == pytest.approx(100.0 * (570.0 + 0.1 / 60))
    assert memory_time_mb_min(hybrid, w) < memory_time_mb_min(keep60, w)


def test_a_prewarm_nobody_uses_is_wasted():
    # 8 requests 30 min apart, then one 3 hours later: after the 8th completion the model is unloaded and
    # pre-warmed at +26.1 min, kept until +33 min, then unloaded unused (wasted); the late request is cold.
    times = [k * 30 * MIN for k in range(8)] + [7 * 30 * MIN + 180 * MIN]
    result = simulate(one_model(times), "hybrid-histogram", 1000.0, policy_params={"ttl_min": 60.0})
    assert result.prewarm_loads == 3  # after the 6th, 7th and 8th completions
    assert result.wasted_prewarms == 1
    assert result.cold.tolist() == [True] + [False] * 7 + [True]
    metrics = summarize(result, one_model(times))
    assert metrics["prewarm_loads"] == 3 and metrics["wasted_prewarms"] == 1


def two_models(times0, t1) -> Workload:
    t = np.array(list(times0) + [t1], dtype=np.int64)
    order = np.argsort(t, kind="stable")
    models = np.array([0] * len(times0) + [1], dtype=np.int32)[order]
    return Workload(t[order], models, np.array([60.0, 60.0]), np.array([2000.0, 2000.0]), np.array([100.0, 100.0]),
                    np.array([10.0, 10.0]))


def test_a_prewarm_evicted_under_memory_pressure_is_wasted_and_a_prewarm_never_evicts():
    # model 0 (60 MB) every 30 min, 9 times; model 1 (60 MB) once, in 100 MB. Model 0's pre-warms come after
    # its 6th, 7th and 8th completions (at +26.1 min).
    times = [k * 30 * MIN for k in range(9)]
    third_prewarm = 7 * 30 * MIN + 100 + 26.1 * MIN
    # (a) model 1 comes 1 min after the third pre-warm: its load evicts the idle, unused model 0 (LRU)
    result = simulate(two_models(times, int(third_prewarm + MIN)), "hybrid-histogram", 100.0,
                      policy_params={"ttl_min": 60.0})
    assert result.prewarm_loads == 3 and result.wasted_prewarms == 1 and result.prewarms_skipped == 0
    assert result.cold.tolist() == [True] + [False] * 7 + [True, True]
    # (b) model 1 comes 10 min after model 0's 8th request, and is kept alive (60 min, no idle-time history):
    # the third pre-warm finds 40 MB free and is skipped rather than evicting model 1
    result = simulate(two_models(times, 7 * 30 * MIN + 10 * MIN), "hybrid-histogram", 100.0,
                      policy_params={"ttl_min": 60.0})
    assert result.prewarm_loads == 2 and result.prewarms_skipped == 1 and result.wasted_prewarms == 0
    assert result.cold.tolist() == [True] + [False] * 7 + [True, True]


def test_forecast_prewarm_periodic_model():
    # fixed keep-alive 10 min until 2 idle times are known: requests 1-3 are cold (the 2nd and 3rd bring the
    # samples). A constant idle time x gives mean x and deviation d = x/2 (3/4)^(n-1) after n samples; the
    # window is [max(x - 4d, 0) 0.85, (x + 4d) 1.15]: after the 3rd and 4th completions (2 and 3 samples)
    # x - 4d < 0, so the model stays loaded (kept to > x: hits); from the 5th completion (4 samples:
    # d = 0.21 x) it is unloaded and pre-warmed at 0.13 x: 7 pre-warms (5th to 11th), each used
    w = one_model(np.arange(12) * 30 * MIN)
    result = simulate(w, "forecast-prewarm", 1000.0, policy_params={"ttl_min": 10.0})
    assert result.cold.tolist() == [True] * 3 + [False] * 9 and result.hits.sum() == 9
    assert result.prewarm_loads == 7 and result.wasted_prewarms == 0


def test_keepalive_policies_with_no_latency_run_the_timers_at_zero_times():
    w = one_model(np.arange(20) * 30 * MIN)
    result = simulate(w, "hybrid-histogram", 1000.0, no_latency=True, policy_params={"ttl_min": 60.0})
    assert result.cold.sum() == 1 and result.prewarm_loads == 14


def test_interference_on_two_concurrent_executions():
    # two requests at 0 for a cold model (load 1000, exec 100), 2 slots: at 1000 the first starts alone
    # (busy 1: 100 ms), the second beside it (busy 2: 100 x (1 + 0.5) = 150 ms)
    w = one_model([0, 0], load=1000.0, exe=100.0)
    plain = simulate(w, "lru", 1000.0, workers=2)
    slowed = simulate(w, "lru", 1000.0, workers=2, interference=0.5)
    assert plain.latency_ms.tolist() == [1100.0, 1100.0]
    assert slowed.latency_ms.tolist() == [1100.0, 1150.0]


def test_load_interference():
    # model 0 requested at 0 (load 0..1000, exec from 1000); model 1 at 500 (load 500..1500, both fit):
    # model 0's execution starts while one load runs: 100 x (1 + 1.0 x 1) = 200 ms; model 1's at 1500
    # with no load running: 100 ms
    w = Workload(np.array([0, 500], np.int64), np.array([0, 1], np.int32), np.array([10.0, 10.0]),
                 np.array([1000.0, 1000.0]), np.array([100.0, 100.0]), np.zeros(2))
    assert simulate(w, "lru", 100.0, workers=2).latency_ms.tolist() == [1100.0, 1100.0]
    assert simulate(w, "lru", 100.0, workers=2, load_interference=1.0).latency_ms.tolist() == [1200.0, 1100.0]


def test_without_the_flags_nothing_changes():
    # a random multi-model workload, every built-in policy: no prewarms, and the interference arguments at
    # 0 leave every latency as without them (known answers of the core are in test_simulate.py)
    rng = np.random.default_rng(3)
    t = np.sort(rng.integers(0, 3_600_000, 400)).astype(np.int64)
    w = Workload(t, rng.integers(0, 8, 400).astype(np.int32), rng.uniform(10, 60, 8), rng.uniform(100, 2000, 8),
                 rng.uniform(10, 300, 8), np.full(8, 5.0))
    for policy in ["lru", "lfu", "ttl", "gdsf", "cremebrulee"]:
        base = simulate(w, policy, 150.0, workers=2)
        zero = simulate(w, policy, 150.0, workers=2, interference=0.0, load_interference=0.0)
        assert np.array_equal(base.latency_ms, zero.latency_ms) and base.prewarm_loads == 0
        assert base.wasted_prewarms == 0 and base.prewarms_skipped == 0


def test_python_policy_path_equals_the_compiled_one():
    w = one_model(np.arange(20) * 30 * MIN)
    compiled = simulate(w, "hybrid-histogram", 1000.0, policy_params={"ttl_min": 60.0})
    python = simulate(w, "hybrid-histogram", 1000.0, policy_params={"ttl_min": 60.0}, python=True)
    assert np.array_equal(compiled.latency_ms, python.latency_ms)
    assert compiled.prewarm_loads == python.prewarm_loads


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *args], capture_output=True, text=True, check=False)


def test_cli_flags_sweep_dimensions_and_errors(tmp_path):
    workload = write_workload(tmp_path / "w", [0, 1000, 1_800_000], [0, 0, 1], [10.0, 20.0])
    result = CliRunner().invoke(cli, ["simulate", "--workload", str(workload), "--policy", "hybrid-histogram",
                                      "--memory-mb", "100", "--out", str(tmp_path / "o"), "--interference", "0.5",
                                      "--load-interference", "0.2"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert metrics["interference"] == 0.5 and metrics["load_interference"] == 0.2
    assert {"prewarm_loads", "wasted_prewarms", "memory_time_mb_min"} <= set(metrics)
    result = CliRunner().invoke(cli, ["sweep", "--workload", str(workload), "--policies", "lru,forecast-prewarm",
                                      "--memory-mb", "100", "--interference", "0,1", "--load-interference", "0,0.5",
                                      "--scheduler", "threads", "--dask-workers", "1", "--out", str(tmp_path / "s")])
    assert result.exit_code == 0, result.output
    table = pl.read_parquet(tmp_path / "s" / "sweep.parquet")
    assert table.height == 8
    assert sorted(set(zip(table["interference"], table["load_interference"], strict=True))) == [
        (0.0, 0.0), (0.0, 0.5), (1.0, 0.0), (1.0, 0.5)]
    run = _cli("simulate", "--workload", str(workload), "--policy", "hybrid-histogram", "--memory-mb", "100",
               "--out", str(tmp_path / "x"), "--interference", "-1")
    assert run.returncode == 2 and run.stderr.strip().splitlines()[-1].startswith("manymodels: error: --interference")
    run = _cli("sweep", "--workload", str(workload), "--policies", "hybrid-histogramm", "--memory-mb", "100",
               "--out", str(tmp_path / "y"))
    assert run.returncode == 2 and "unknown policy" in run.stderr.strip().splitlines()[-1]
    run = _cli("sweep", "--workload", str(workload), "--policies", "lru", "--memory-mb", "100",
               "--load-interference", "x", "--out", str(tmp_path / "z"))
    assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(0.0, 300 * 60_000.0), min_size=1, max_size=200), st.integers(1, 20))
def test_running_percentile_bins_equal_a_scan_of_the_histogram(idle_ms, spread_min):
    """The head (5th) and tail (99th) percentile bins kept per sample equal a cumulative scan of the
    histogram (numpy) after every sample, samples beyond the 4-hour range excluded."""
    xp = engine.keepalive_params(engine.KA_HYBRID, 600_000.0, 1)
    ki = np.zeros((engine.KI_ROWS, 1), np.int64)
    kf = np.zeros((engine.KF_ROWS, 1))
    hist = np.zeros((1, int(xp[engine.XP_BINS])), np.int64)
    for x in idle_ms:
        engine._ka_sample(xp, ki, kf, hist, 0, x / spread_min)
        nin = ki[engine.KI_NSAMP, 0] - ki[engine.KI_NOOB, 0]
        if nin == 0:
            continue
        cum = np.cumsum(hist[0])
        assert ki[engine.KI_HEAD, 0] == np.argmax(cum >= 0.05 * nin)
        assert ki[engine.KI_TAIL, 0] == np.argmax(cum >= 0.99 * nin)
