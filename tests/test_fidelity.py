"""`manymodels fidelity`: every figure cross-checked against an independent computation written here
(scipy's ks_2samp, plain numpy loops, a tiny LRU), never against the stage's own output."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections import OrderedDict

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import ks_2samp

from pipeline.fidelity.compare import ks_distance
from pipeline.fidelity.profile import active_minutes, profile
from pipeline.fidelity.stage import FidelityConfig, collect_metrics, fidelity
from pipeline.files import sha256_file

MINUTE_MS = 60_000


def write_workload(directory, minute_counts: dict[int, dict[int, int]], n_models: int, minutes: int, seed: int,
                   source: str = "synthetic"):
    """A workload directory from {model: {minute: requests}}; timestamps spread inside each minute."""
    rng = np.random.default_rng(seed)
    t, ids = [], []
    for model, counts in minute_counts.items():
        for minute, count in counts.items():
            t += list(minute * MINUTE_MS + rng.integers(0, MINUTE_MS, count))
            ids += [model] * count
    t, ids = np.array(t, dtype=np.int64), np.array(ids, dtype=np.int32)
    order = np.argsort(t, kind="stable")
    directory.mkdir(parents=True, exist_ok=True)
    pl.DataFrame({"t_ms": t[order], "model_id": ids[order]}).write_parquet(directory / "requests.parquet")
    sizes = rng.choice([20.0, 50.0, 100.0, 250.0, 500.0], n_models)
    pl.DataFrame({"model_id": np.arange(n_models, dtype=np.int32), "catalog_model": "m", "size_mb": sizes,
                  "load_ms": sizes * 2, "exec_ms": np.full(n_models, 30.0), "unload_ms": np.full(n_models, 5.0),
                  "requests": np.bincount(ids, minlength=n_models)}).write_parquet(directory / "models.parquet")
    manifest = {"name": directory.name, "mode": "replay", "seed": seed, "duration_ms": minutes * MINUTE_MS,
                "parameters": {"minutes": minutes}, "source_trace": {"kind": source},
                "rows": {"requests": len(t), "models": n_models},
                "checksums": {name: sha256_file(directory / name) for name in ("requests.parquet", "models.parquet")}}
    (directory / "manifest.json").write_text(json.dumps(manifest))
    return directory


def mixed_counts(rng, n_models: int, minutes: int) -> dict[int, dict[int, int]]:
    """Periodic, bursty on/off, Poisson and rare models, and some never requested."""
    counts: dict[int, dict[int, int]] = {}
    for model in range(n_models):
        kind = model % 5
        if kind == 0:  # periodic timer
            period = int(rng.integers(2, 30))
            counts[model] = {m: 1 for m in range(int(rng.integers(0, period)), minutes, period)}
        elif kind == 1:  # on/off bursts
            active = np.zeros(minutes, dtype=bool)
            for start in rng.integers(0, minutes, 4):
                active[start:start + int(rng.integers(1, 20))] = True
            counts[model] = {int(m): int(rng.integers(1, 8)) for m in np.flatnonzero(active)}
        elif kind == 2:  # Poisson
            per_minute = rng.poisson(rng.uniform(0.05, 3.0), minutes)
            counts[model] = {int(m): int(c) for m, c in enumerate(per_minute) if c}
        elif kind == 3:  # rare
            counts[model] = {int(m): 1 for m in rng.choice(minutes, int(rng.integers(1, 4)), replace=False)}
        else:
            counts[model] = {}
    return counts


# ------------------------------------------------------------------ independent computations
def runs(active: np.ndarray) -> tuple[list[int], list[int]]:
    """(idle runs between two active minutes, busy runs) with a plain loop."""
    idle, busy = [], []
    seen_active, zeros, ones = False, 0, 0
    for value in active:
        if value:
            if seen_active and zeros:
                idle.append(zeros)
            zeros, ones, seen_active = 0, ones + 1, True
        else:
            if ones:
                busy.append(ones)
            ones = 0
            zeros += 1 if seen_active else 0
    if ones:
        busy.append(ones)
    return idle, busy


def independent(directory, minutes: int) -> dict:
    requests = pl.read_parquet(directory / "requests.parquet")
    n = pl.read_parquet(directory / "models.parquet").height
    minute = requests["t_ms"].to_numpy() // MINUTE_MS
    model = requests["model_id"].to_numpy()
    out = {"requests": [], "idle_fraction": [], "iat_cv": [], "idle": [], "busy": [], "median_idle": []}
    for m in range(n):
        mine = minute[model == m]
        out["requests"].append(len(mine))
        active = np.zeros(minutes, dtype=bool)
        active[mine] = True
        out["idle_fraction"].append(1 - active.sum() / minutes)
        gaps = np.diff(np.unique(mine))
        if len(gaps) >= 2:
            out["iat_cv"].append(np.std(gaps) / np.mean(gaps))
        idle, busy = runs(active)
        out["idle"] += idle
        out["busy"] += busy
        if idle:
            out["median_idle"].append(float(np.median(idle)))
    per_hour = np.array([((minute >= 60 * h) & (minute < 60 * (h + 1))).sum() for h in range(math.ceil(minutes / 60))])
    out["hourly"] = per_hour / per_hour.mean()
    ordered = sorted(out["requests"], reverse=True)
    out["top"] = {f: sum(ordered[:max(1, math.ceil(f * n))]) / sum(ordered) for f in (0.001, 0.01, 0.1)}
    return out


def tiny_lru_hit_ratio(directory, capacity_mb: float) -> float:
    requests = pl.read_parquet(directory / "requests.parquet")
    sizes = pl.read_parquet(directory / "models.parquet").sort("model_id")["size_mb"].to_list()
    cache: OrderedDict[int, float] = OrderedDict()
    used, hits = 0.0, 0
    for model in requests["model_id"].to_list():
        if model in cache:
            hits += 1
            cache.move_to_end(model)
            continue
        if sizes[model] > capacity_mb:
            continue
        while used + sizes[model] > capacity_mb:
            _, size = cache.popitem(last=False)
            used -= size
        cache[model] = sizes[model]
        used += sizes[model]
    return hits / requests.height


# ------------------------------------------------------------------------------------ tests
@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    root = tmp_path_factory.mktemp("fidelity")
    rng = np.random.default_rng(3)
    candidate = write_workload(root / "candidate", mixed_counts(rng, 60, 300), 60, 300, seed=1)
    reference = write_workload(root / "reference", mixed_counts(rng, 80, 300), 80, 300, seed=2)
    config = FidelityConfig(memory_fractions=(0.1, 0.25), slots=2, scheduler="threads")
    entry = fidelity(candidate, root / "out", root / "metrics.json", reference=reference, config=config)
    return root, candidate, reference, entry


def test_profile_matches_plain_loops(pair):
    root, candidate, reference, _ = pair
    models = pl.read_parquet(root / "out" / "models.parquet")
    periods = pl.read_parquet(root / "out" / "periods.parquet")
    for side, directory in (("candidate", candidate), ("reference", reference)):
        expected = independent(directory, 300)
        mine = models.filter(pl.col("side") == side).sort("model_id")
        assert mine["requests"].to_list() == expected["requests"]
        np.testing.assert_allclose(mine["idle_fraction"].to_numpy(), expected["idle_fraction"])
        np.testing.assert_allclose(np.sort(mine["iat_cv"].drop_nulls().to_numpy()), np.sort(expected["iat_cv"]))
        np.testing.assert_allclose(np.sort(mine["median_idle_period_min"].drop_nulls().to_numpy()),
                                   np.sort(expected["median_idle"]))
        for kind in ("idle", "busy"):
            got = periods.filter((pl.col("side") == side) & (pl.col("kind") == kind))["length_min"].sort().to_list()
            assert got == sorted(expected[kind])


def test_summary_ks_and_quantiles_match_scipy_and_numpy(pair):
    root, candidate, reference, entry = pair
    c, r = independent(candidate, 300), independent(reference, 300)
    summary = {row["metric"]: row for row in pl.read_parquet(root / "out" / "summary.parquet").iter_rows(named=True)}
    for metric, key in (("requests_per_model", "requests"), ("idle_fraction", "idle_fraction"),
                        ("idle_period_min", "idle"), ("busy_period_min", "busy"), ("iat_cv", "iat_cv"),
                        ("median_idle_period_min", "median_idle")):
        assert summary[metric]["ks_d"] == pytest.approx(ks_2samp(c[key], r[key]).statistic, abs=1e-12)
        assert summary[metric]["candidate_p90"] == pytest.approx(np.quantile(c[key], 0.9))
        assert summary[metric]["reference_p10"] == pytest.approx(np.quantile(r[key], 0.1))
    assert entry["ks_iat_cv"] == pytest.approx(ks_2samp(c["iat_cv"], r["iat_cv"]).statistic, abs=1e-6)
    assert entry["ks_idle_period"] == pytest.approx(ks_2samp(c["idle"], r["idle"]).statistic, abs=1e-6)
    hourly = pl.read_parquet(root / "out" / "hourly.parquet")
    np.testing.assert_allclose(hourly["candidate"].to_numpy(), c["hourly"])
    np.testing.assert_allclose(hourly["reference"].to_numpy(), r["hourly"])
    assert entry["hourly_max_abs_diff"] == pytest.approx(np.abs(c["hourly"] - r["hourly"]).max(), abs=1e-6)
    assert entry["top_1pct_share"]["candidate"] == pytest.approx(c["top"][0.01], abs=1e-6)
    assert entry["top_10pct_share"]["reference"] == pytest.approx(r["top"][0.1], abs=1e-6)
    assert entry["source"] == "synthetic"


def test_no_latency_lru_hit_ratio_matches_a_tiny_lru(pair):
    root, candidate, reference, entry = pair
    cache = pl.read_parquet(root / "out" / "cache.parquet").filter(pl.col("policy") == "lru")
    sizes_ref = pl.read_parquet(reference / "models.parquet")
    requested = sizes_ref.filter(pl.col("requests") > 0)
    reference_mb = requested["size_mb"].sum()
    requested_candidate = (pl.read_parquet(candidate / "models.parquet")["requests"] > 0).sum()
    for row in cache.iter_rows(named=True):
        assert row["reference_memory_mb"] == pytest.approx(row["memory_fraction"] * reference_mb)
        assert row["memory_mb"] == pytest.approx(row["reference_memory_mb"] * requested_candidate / requested.height)
        assert row["candidate_hit_ratio"] == pytest.approx(tiny_lru_hit_ratio(candidate, row["memory_mb"]), abs=1e-12)
        assert row["reference_hit_ratio"] == pytest.approx(tiny_lru_hit_ratio(reference, row["reference_memory_mb"]),
                                                           abs=1e-12)
    full = pl.read_parquet(root / "out" / "cache.parquet")
    assert entry["hit_ratio_max_abs_diff"] == pytest.approx(
        (full["candidate_hit_ratio"] - full["reference_hit_ratio"]).abs().max(), abs=1e-6)
    assert set(full["policy"]) == {"lru", "gdsf", "ttl"}
    assert 0 <= entry["cold_start_ratio"]["candidate"] <= 1


def test_metrics_merge_keeps_other_workloads(pair, tmp_path):
    root, _, _, entry = pair
    metrics = json.loads((root / "metrics.json").read_text())
    assert list(metrics) == ["candidate"] and metrics["candidate"]["ks_idle_fraction"] == entry["ks_idle_fraction"]
    for key in ("ks_requests_per_model", "ks_idle_fraction", "ks_idle_period", "ks_busy_period", "ks_iat_cv",
                "hourly_max_abs_diff", "top_1pct_share", "top_10pct_share", "hit_ratio_max_abs_diff",
                "cold_start_ratio"):
        assert key in metrics["candidate"]
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "fidelity.json").write_text(json.dumps({"other": {"ks_iat_cv": 0.5}}))
    (tmp_path / "candidate").mkdir()
    (tmp_path / "candidate" / "fidelity.json").write_text((root / "out" / "fidelity.json").read_text())
    collect_metrics(tmp_path, tmp_path / "all.json")
    assert sorted(json.loads((tmp_path / "all.json").read_text())) == ["candidate", "other"]


def test_a_workload_against_itself_is_at_distance_zero(pair, tmp_path):
    _, candidate, _, _ = pair
    entry = fidelity(candidate, tmp_path / "self", None, reference=candidate,
                     config=FidelityConfig(memory_fractions=(0.05, 0.5), slots=2, scheduler="serial"))
    for key in ("ks_requests_per_model", "ks_idle_fraction", "ks_idle_period", "ks_busy_period", "ks_iat_cv",
                "hourly_max_abs_diff", "hit_ratio_max_abs_diff"):
        assert entry[key] == 0, key
    assert entry["cold_start_ratio"]["candidate"] == entry["cold_start_ratio"]["reference"]
    assert entry["top_1pct_share"]["candidate"] == entry["top_1pct_share"]["reference"]


def test_a_different_workload_is_far(tmp_path):
    busy = write_workload(tmp_path / "busy", {m: {t: 3 for t in range(120)} for m in range(20)}, 20, 120, seed=1)
    rng = np.random.default_rng(5)
    rare = write_workload(tmp_path / "rare", {m: {int(t): 1 for t in rng.choice(120, 2, replace=False)}
                                              for m in range(20)}, 20, 120, seed=2)
    entry = fidelity(busy, tmp_path / "out", None, reference=rare, config=FidelityConfig(slots=1, scheduler="serial"))
    assert entry["ks_idle_fraction"] == 1.0 and entry["ks_requests_per_model"] == 1.0
    assert entry["ks_busy_period"] == 1.0


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # scipy p-value of tiny samples; D is what we test
@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 50), min_size=1, max_size=40), st.lists(st.integers(0, 50), min_size=1, max_size=40))
def test_ks_distance_is_scipys(a, b):
    assert ks_distance(np.array(a), np.array(b)) == pytest.approx(ks_2samp(a, b, method="asymp").statistic, abs=1e-12)


def test_partial_last_hour_is_scaled_to_a_full_hour():
    # 90 minutes, one request every minute: both hours run at the mean rate
    t = np.arange(90) * MINUTE_MS
    result = profile(active_minutes(t, np.zeros(90, dtype=np.int32), 1, 90))
    np.testing.assert_allclose(result.hourly, [1.0, 1.0])


def test_measuring_modules_never_import_the_generator():
    code = ("import sys, pipeline.fidelity.profile, pipeline.fidelity.compare, pipeline.fidelity.cache, "
            "pipeline.fidelity.stage; print('pipeline.workload.synthesize' in sys.modules)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "False"


def test_default_reference_is_the_replay_of_all_functions(small_synthetic_trace, tmp_path):
    from pipeline.workload.synthesize import WorkloadConfig, synthesize

    _, db = small_synthetic_trace
    candidate = tmp_path / "quantile"
    synthesize(WorkloadConfig(mode="replay", models=40, minutes=90, seed=4, selection="quantile", binding="rank",
                              rate_scale=0.01), candidate, db=db)
    out = tmp_path / "out"
    config = FidelityConfig(memory_fractions=(0.25,), policies=("lru",), slots=2, scheduler="serial")
    entry = fidelity(candidate, out, tmp_path / "metrics.json", db=db, config=config)
    reference = json.loads((out / "reference" / "manifest.json").read_text())
    assert reference["mode"] == "replay" and reference["parameters"]["selection"] == "all"
    for key in ("minutes", "seed", "binding", "rate_scale", "arrival", "start_minute"):
        assert reference["parameters"][key] == json.loads((candidate / "manifest.json").read_text())["parameters"][key]
    assert entry["models"]["reference"] > entry["models"]["candidate"]
    stamp = (out / "reference" / "requests.parquet").stat().st_mtime_ns
    again = fidelity(candidate, out, tmp_path / "metrics.json", db=db, config=config)  # reused, same figures
    assert (out / "reference" / "requests.parquet").stat().st_mtime_ns == stamp
    assert again["ks_idle_fraction"] == entry["ks_idle_fraction"]
    # the reference's simulation outcomes are kept beside it and reused, with the same figures
    stored = json.loads((out / "reference" / "fidelity_outcomes.json").read_text())
    assert len(stored["outcomes"]) == 2
    assert again["hit_ratio_max_abs_diff"] == entry["hit_ratio_max_abs_diff"]
    assert again["cold_start_ratio"] == entry["cold_start_ratio"]


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "pipeline.cli", "fidelity", *map(str, args)],
                          capture_output=True, text=True, check=False)


def test_cli_errors_are_one_line_with_exit_2(pair, tmp_path):
    _, candidate, _, _ = pair
    missing = _cli("--workload", tmp_path / "nope", "--out", tmp_path / "o", "--metrics", tmp_path / "m.json")
    (tmp_path / "empty").mkdir()
    bad_reference = _cli("--workload", candidate, "--reference", tmp_path / "empty", "--out", tmp_path / "o",
                         "--metrics", tmp_path / "m.json")
    bad_policy = _cli("--workload", candidate, "--reference", candidate, "--policies", "nosuch", "--out",
                      tmp_path / "o", "--metrics", tmp_path / "m.json")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    foreign_out = _cli("--workload", candidate, "--reference", candidate, "--out", tmp_path / "mine",
                       "--metrics", tmp_path / "m.json")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    for run, needle in ((missing, "nope"), (bad_reference, "--reference"), (bad_policy, "nosuch"),
                        (foreign_out, "notes.txt")):
        assert run.returncode == 2, run.stderr
        errors = [line for line in run.stderr.splitlines() if line.startswith("manymodels: error:")]
        assert len(errors) == 1 and needle in errors[0], run.stderr
