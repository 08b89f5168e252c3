"""Memory mechanisms beyond eviction (issue 13): hand-computed cases, defaults unchanged."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from pipeline.errors import ManyModelsError
from pipeline.simulate.core import Workload, simulate
from pipeline.simulate.mechanisms import early_exit, parse_learned_cache
from pipeline.simulate.run import summarize
from pipeline.workload.catalog import load_catalog, load_catalog_mechanisms

# catalog: name, size_mb, load, exec, unload, family, accuracy, weights_mb, instance_mb
ROWS = [
    ("A", 100.0, 1000.0, 100.0, 10.0, "A", 0.70, 100.0, 10.0),
    ("C", 5.0, 1000.0, 100.0, 10.0, "C", 0.60, 5.0, 10.0),
    ("D", 100.0, 1000.0, 100.0, 10.0, "D", 0.65, 100.0, 10.0),
    ("Big", 200.0, 1000.0, 300.0, 10.0, "F", 0.80, 200.0, 0.0),
    ("Mid", 180.0, 1000.0, 250.0, 10.0, "F", 0.78, 180.0, 0.0),
    ("Small", 50.0, 500.0, 50.0, 10.0, "F", 0.70, 50.0, 0.0),
    ("X", 100.0, 1000.0, 100.0, 10.0, "X", 0.75, 100.0, 0.0),
]
CATALOG = pl.DataFrame(ROWS, schema=["model", "size_mb", "load_ms", "exec_ms", "unload_ms", "family",
                                     "accuracy_top1", "weights_mb", "instance_mb"], orient="row")
ROW = {name: j for j, name in enumerate(CATALOG["model"].to_list())}


def bound(names: list[str], requests: list[tuple[int, int]]) -> Workload:
    """A workload whose models are bound to catalog entries `names` (profiles copied as synthesize does)."""
    index = np.array([ROW[n] for n in names], dtype=np.int64)
    pick = CATALOG[index.tolist()]
    t, m = zip(*requests, strict=True)
    return Workload(np.array(t, dtype=np.int64), np.array(m, dtype=np.int32), pick["size_mb"].to_numpy(),
                    pick["load_ms"].to_numpy(), pick["exec_ms"].to_numpy(), pick["unload_ms"].to_numpy(),
                    catalog_index=index, catalog=CATALOG)


def memory(result) -> list[float]:
    return [round(float(x), 6) for x in result.memory_events[1]]


def test_two_functions_on_one_model_count_its_weights_once_and_free_them_with_the_last():
    # models 0, 1 -> A (weights 100, instance 10); 2 -> C (5 + 10); 3 -> D (100 + 10); memory 130
    w = bound(["A", "A", "C", "D"], [(0, 0), (5000, 1), (10000, 2), (20000, 3)])
    r = simulate(w, "lru", 130, shared_weights=True)
    # 0: A's weights + instance = 110; 1: instance only = 120 (not 220);
    # 2: needs 15, 10 free -> evict LRU model 0: frees its instance only (model 1 holds A) -> 125;
    # 3: needs 110, 5 free -> evict model 1, the last instance of A: frees 10 + 100 -> 125
    assert memory(r) == [110.0, 120.0, 125.0, 125.0]
    assert r.evictions == 2 and r.cold.sum() == 4
    assert memory(r)[1] < 2 * 110  # unshared: two copies
    assert [round(float(x), 6) for x in r.memory_unshared_mb] == [110.0, 220.0, 125.0, 125.0]
    metrics = summarize(r, w)
    assert metrics["memory_peak_mb"] == 125.0 and metrics["memory_peak_unshared_mb"] == 220.0
    assert metrics["shared_weights_saved_peak"] == pytest.approx(1 - 125 / 220)


def test_without_sharing_each_function_takes_its_size():
    w = bound(["A", "A"], [(0, 0), (5000, 1)])
    assert memory(simulate(w, "lru", 1000)) == [100.0, 200.0]


def test_a_downgrade_is_chosen_over_an_eviction_when_it_frees_enough():
    # model 0 -> Big (200; family F: Mid 180, Small 50), model 1 -> X (100); memory 250
    w = bound(["Big", "X"], [(0, 0), (5000, 1), (10000, 0)])
    r = simulate(w, "lru", 250, adaptive_variants=True)
    # at 5000: X needs 100, 50 free: Big -> Mid frees 20 (not enough), Big -> Small frees 150: swap
    assert r.downgrades == 1 and r.evictions == 0
    assert memory(r) == [200.0, 150.0]  # 50 (Small) + 100 (X)
    assert r.hits.tolist() == [False, False, True]  # model 0 stays resident, as Small
    assert r.served_accuracy.tolist() == [0.80, 0.75, 0.70]
    assert r.latency_ms[2] == 50.0  # Small's exec time
    assert summarize(r, w)["accuracy_mean"] == pytest.approx((0.80 + 0.75 + 0.70) / 3)
    plain = simulate(w, "lru", 250)
    assert plain.evictions == 2 and plain.downgrades == 0 and plain.hits.sum() == 0


def test_no_downgrade_when_no_variant_frees_enough():
    w = bound(["Big", "Mid"], [(0, 0), (5000, 1)])
    r = simulate(w, "lru", 250, adaptive_variants=True)
    # Mid needs 180, 50 free: missing 130; Big -> Small frees 150 >= 130: swap (Mid itself is not resident)
    assert r.downgrades == 1 and r.evictions == 0 and memory(r) == [200.0, 230.0]
    r = simulate(w, "lru", 200, adaptive_variants=True)
    # memory 200: missing 180; Big -> Small frees 150 < 180: evicted instead
    assert r.downgrades == 0 and r.evictions == 1 and memory(r) == [200.0, 180.0]


def test_a_request_is_served_by_a_smaller_resident_variant():
    # model 0 -> Big (200), 1 -> Small (50), 2 -> X (100); memory 250
    w = bound(["Big", "Small", "X"], [(0, 1), (5000, 2), (10000, 0)])
    r = simulate(w, "lru", 250, adaptive_variants=True)
    # at 10000 Big does not fit (100 free) and Small (model 1) is loaded: served by it, a hit
    assert r.hits.tolist() == [False, False, True] and r.cold.sum() == 2 and r.evictions == 0
    assert r.variant_served == 1
    assert r.served_accuracy.tolist() == [0.70, 0.75, 0.70]
    assert r.latency_ms[2] == 50.0
    plain = simulate(w, "lru", 250)
    assert plain.cold.sum() == 3 and plain.evictions == 2


def test_learned_cache_exec_and_memory():
    w = Workload(np.array([0, 10000, 20000, 30000]), np.zeros(4, dtype=np.int32), np.array([100.0]),
                 np.array([1000.0]), np.array([100.0]), np.array([10.0]))
    r = simulate(w, "lru", 1000, learned_cache="hit=0.5,speedup=0.25,memory=0.2")
    assert memory(r) == [120.0]  # 100 + 0.2 x 100
    assert r.early_exits == 2
    assert sorted((r.latency_ms - [1000, 0, 0, 0]).tolist()) == [25.0, 25.0, 100.0, 100.0]
    assert float(r.latency_ms.sum()) == 1000 + 2 * 25 + 2 * 100  # one load, two early exits at 0.25 x 100
    assert summarize(r, w)["excess_latency_mean_ms"] == pytest.approx(1000 / 4)
    plain = simulate(w, "lru", 1000)
    assert memory(plain) == [100.0] and float(plain.latency_ms.sum()) == 1000 + 4 * 100


@pytest.mark.parametrize("hit", [0.0, 0.1, 0.37, 0.5, 1.0])
def test_early_exits_are_a_fraction_hit_of_each_models_requests(hit):
    models = np.random.default_rng(0).integers(0, 5, 1000)
    early = early_exit(models, 5, hit, seed=1)
    for m in range(5):
        count = int((models == m).sum())
        assert abs(int(early[models == m].sum()) - hit * count) <= 1
    assert (early == early_exit(models, 5, hit, seed=1)).all()


def test_host_overhead_is_counted_once_per_server():
    w = Workload(np.array([0, 5000]), np.array([0, 1], dtype=np.int32), np.array([100.0, 50.0]),
                 np.array([1000.0, 1000.0]), np.array([10.0, 10.0]), np.array([1.0, 1.0]))
    assert memory(simulate(w, "lru", 300, host_overhead_mb=30)) == [130.0, 180.0]  # one process
    assert memory(simulate(w, "lru", 300, host_overhead_mb=30, hosting="per-model")) == [130.0, 210.0]
    assert memory(simulate(w, "lru", 300, servers=2, host_overhead_mb=30)) == [130.0, 210.0]  # one per server
    # 150 MB: model 1 needs 50, 20 free: evicting model 0 frees 100 and the process (its last model);
    # model 1 then brings the process back: 30 + 50
    r = simulate(w, "lru", 150, host_overhead_mb=30)
    assert memory(r) == [130.0, 80.0] and r.evictions == 1


def test_a_model_with_its_host_process_larger_than_memory_is_rejected():
    w = Workload(np.array([0]), np.array([0], dtype=np.int32), np.array([100.0]), np.array([1.0]),
                 np.array([1.0]), np.array([1.0]))
    assert simulate(w, "lru", 120, host_overhead_mb=30).rejected.tolist() == [True]


def random_workload() -> Workload:
    rng = np.random.default_rng(13)
    n_models, n = 20, 3000
    t = np.sort(rng.integers(0, 3_600_000, n)).astype(np.int64)
    m = (rng.zipf(1.3, n) % n_models).astype(np.int32)
    size = rng.choice([14., 33., 98., 171., 528.], n_models)
    load = rng.uniform(2000, 15000, n_models)
    exe = rng.uniform(150, 900, n_models)
    return Workload(t, m, size, load, exe, np.full(n_models, 14.3))


# main's results on `random_workload` at 600 MB, 2 slots, seed 3 (measured with main's code before
# the mechanisms existed): hits, cold starts, evictions, summed latency, peak memory
MAIN = {"lru/1": [101, 623, 620, 143248144.266, 594.0], "lru/2": [160, 1227, 1225, 50374474.169, 1188.0],
        "gdsf/1": [250, 572, 569, 135494562.422, 594.0], "gdsf/2": [470, 1036, 1030, 44476333.567, 1193.0],
        "ttl/1": [101, 623, 620, 143248144.266, 594.0], "ttl/2": [160, 1227, 1225, 50374474.169, 1188.0],
        "cremebrulee/1": [284, 568, 564, 130827851.304, 599.0],
        "cremebrulee/2": [520, 990, 983, 43570537.426, 1183.0]}


@pytest.mark.parametrize("key", sorted(MAIN))
def test_defaults_unchanged_and_neutral_mechanisms_change_nothing(key):
    policy, servers = key.split("/")
    w = random_workload()

    def outcome(result):
        return [int(result.hits.sum()), int(result.cold.sum()), int(result.evictions),
                round(float(np.nansum(result.latency_ms)), 3), float(result.memory_events[1].max())]

    assert outcome(simulate(w, policy, 600, servers=int(servers), workers=2, seed=3)) == MAIN[key]
    # every model its own catalog entry (weights = size, instance 0), no families, no overhead:
    # the mechanisms' event loop path must give the very same run
    neutral = simulate(w, policy, 600, servers=int(servers), workers=2, seed=3, shared_weights=True,
                       adaptive_variants=True, learned_cache="hit=0,speedup=1,memory=0")
    assert outcome(neutral) == MAIN[key]


@pytest.mark.parametrize("policy", ["lru", "gdsf", "cremebrulee", "ttl"])
def test_mechanisms_compiled_equal_the_python_loop(policy):
    names = ["A", "A", "Big", "Mid", "Small", "X", "C", "D", "A", "Big"]
    rng = np.random.default_rng(5)
    t = np.sort(rng.integers(0, 600_000, 400))
    w = bound(names, list(zip(t.tolist(), rng.integers(0, len(names), 400).tolist(), strict=True)))
    kwargs = {"shared_weights": True, "adaptive_variants": True, "host_overhead_mb": 20.0,
              "learned_cache": "hit=0.3,speedup=0.5,memory=0.1", "servers": 2, "workers": 2}
    fast = simulate(w, policy, 260, **kwargs)
    slow = simulate(w, policy, 260, python=True, **kwargs)
    assert fast.hits.tolist() == slow.hits.tolist() and fast.downgrades == slow.downgrades
    assert np.array_equal(fast.latency_ms, slow.latency_ms, equal_nan=True)
    assert memory(fast) == memory(slow) and float(max(memory(fast))) <= 2 * 260
    assert fast.downgrades > 0 and fast.variant_served > 0


def test_no_latency_runs_the_mechanisms_at_zero_times():
    w = bound(["A", "A"], [(0, 0), (5000, 1), (6000, 0)])
    r = simulate(w, "lru", 130, shared_weights=True, no_latency=True)
    assert r.hits.tolist() == [False, False, True] and np.nansum(r.latency_ms) == 0
    assert memory(r) == [110.0, 120.0]


def test_catalog_columns_and_defaults(tmp_path):
    catalog = load_catalog_mechanisms()
    assert catalog.columns[:5] == ["model", "load_ms", "exec_ms", "unload_ms", "size_mb"]
    assert load_catalog().columns == ["model", "load_ms", "exec_ms", "unload_ms", "size_mb"]  # synthesize's view
    row = catalog.filter(pl.col("model") == "EfficientNetB3").row(0, named=True)
    assert row["family"] == "EfficientNet" and row["accuracy_top1"] == 0.816 and row["weights_mb"] == 48
    assert (catalog["weights_mb"] == catalog["size_mb"]).all() and (catalog["instance_mb"] > 0).all()
    old = tmp_path / "old.csv"
    old.write_text("model,load_ms,exec_ms,unload_ms,size_mb\nM,1,2,3,40\n")
    derived = load_catalog_mechanisms(old).row(0, named=True)
    assert derived["family"] == "M" and derived["accuracy_top1"] is None
    assert derived["weights_mb"] == 40 and derived["instance_mb"] == 0
    bad = tmp_path / "bad.csv"
    bad.write_text("model,load_ms,exec_ms,unload_ms,size_mb,accuracy_top1\nM,1,2,3,40,1.5\n")
    with pytest.raises(ManyModelsError, match="accuracy_top1"):
        load_catalog_mechanisms(bad)


@pytest.mark.parametrize("spec", ["hit=2,speedup=1,memory=0", "hit=0.5,speedup=0", "speed=1", "hit=a,speedup=1,memory=0"])
def test_bad_learned_cache_spec_is_one_clear_error(spec):
    with pytest.raises(ManyModelsError, match="--learned-cache"):
        parse_learned_cache(spec)


@pytest.fixture(scope="module")
def small_workload(small_synthetic_trace, tmp_path_factory):
    from pipeline.workload.synthesize import WorkloadConfig, synthesize

    _, db = small_synthetic_trace
    out = tmp_path_factory.mktemp("mechwl") / "w"
    synthesize(WorkloadConfig(mode="replay", models=40, minutes=1440, seed=3, selection="quantile", rate_scale=0.2),
               out, db=db)
    return out


def test_cli_simulate_and_sweep_with_mechanisms(small_workload, tmp_path):
    import json

    from typer.testing import CliRunner

    from pipeline.cli import cli

    runner = CliRunner()
    result = runner.invoke(cli, ["simulate", "--workload", str(small_workload), "--policy", "lru", "--memory-mb", "400",
                                 "--out", str(tmp_path / "one"), "--shared-weights", "--adaptive-variants",
                                 "--host-overhead-mb", "50", "--learned-cache", "hit=0.2,speedup=0.5,memory=0.1"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "one" / "metrics.json").read_text())
    assert metrics["shared_weights"] and metrics["adaptive_variants"] and metrics["host_overhead_mb"] == 50
    assert metrics["learned_cache"] == "hit=0.2,speedup=0.5,memory=0.1"
    assert 0.5 < metrics["accuracy_mean"] < 0.9 and metrics["memory_peak_mb"] <= 400
    assert metrics["memory_peak_unshared_mb"] >= metrics["memory_peak_mb"] - 50  # the host process counts in both
    result = runner.invoke(cli, ["sweep", "--workload", str(small_workload), "--policies", "lru", "--memory-mb",
                                 "300", "--out", str(tmp_path / "sweep"), "--shared-weights", "off,on",
                                 "--scheduler", "threads"])
    assert result.exit_code == 0, result.output
    table = pl.read_parquet(tmp_path / "sweep" / "sweep.parquet")
    assert table.height == 2 and sorted(table["shared_weights"].to_list()) == [False, True]
    off = table.filter(~pl.col("shared_weights")).row(0, named=True)
    assert off["shared_weights_saved_time"] == 0.0 and off["downgrades"] == 0
    cdf = pl.read_parquet(tmp_path / "sweep" / "latency_percentiles.parquet")
    assert "shared_weights" in cdf.columns and cdf.height == 2 * 101
    spread = pl.read_parquet(tmp_path / "sweep" / "spread.parquet")
    assert sorted(spread["policy"].to_list()) == ["lru", "lru+shared-weights"]
    bad = runner.invoke(cli, ["simulate", "--workload", str(small_workload), "--policy", "lru", "--memory-mb", "400",
                              "--out", str(tmp_path / "bad"), "--hosting", "one"])
    assert isinstance(bad.exception, ManyModelsError) and "--hosting" in str(bad.exception)


@pytest.mark.parametrize("policy", ["lru", "gdsf", "cremebrulee"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_memory_never_exceeds_capacity_with_every_combination(policy, seed):
    names = ["A", "A", "Big", "Mid", "Small", "X", "C", "D", "A", "Big", "Small", "X"]
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(0, 300_000, 600))
    w = bound(names, list(zip(t.tolist(), rng.integers(0, len(names), 600).tolist(), strict=True)))
    for shared in (False, True):
        for adaptive in (False, True):
            for host in (0.0, 15.0):
                r = simulate(w, policy, 240, seed=seed, workers=2, shared_weights=shared, adaptive_variants=adaptive,
                             host_overhead_mb=host, learned_cache="hit=0.5,speedup=0.5,memory=0.05")
                used = r.memory_events[1]
                assert used.max() <= 240 + 1e-9 and used.min() >= -1e-9, (shared, adaptive, host)
                assert (r.memory_unshared_mb >= used - 1e-9).all()


@pytest.mark.parametrize("policy", ["lru", "gdsf"])
def test_learned_cache_memory_alone_equals_models_that_large(policy):
    import dataclasses

    w = random_workload()
    learned = simulate(w, policy, 600, workers=2, seed=1, learned_cache="hit=0,speedup=1,memory=0.25")
    larger = simulate(dataclasses.replace(w, size_mb=w.size_mb * 1.25), policy, 600, workers=2, seed=1)
    assert learned.hits.tolist() == larger.hits.tolist()
    assert np.array_equal(learned.latency_ms, larger.latency_ms, equal_nan=True)


def test_auto_slots_are_twice_the_mean_executions_in_flight():
    """`beyond --workers auto`: 3 requests of 400 ms and 2 of 100 ms over 1,000 ms = 1.4 in flight -> 3 slots."""
    from pipeline.simulate.beyond import auto_slots

    workload = Workload(np.array([0.0, 100.0, 200.0, 600.0, 1000.0]), np.array([0, 0, 1, 0, 1]),
                        np.array([10.0, 10.0]), np.array([1.0, 1.0]), np.array([400.0, 100.0]),
                        np.array([1.0, 1.0]), "auto")
    exec_total = 3 * 400 + 2 * 100
    assert auto_slots(workload) == int(np.ceil(exec_total / 1000 / 0.5)) == 3
    single = Workload(np.array([5.0]), np.array([0]), np.array([1.0]), np.array([1.0]), np.array([9.0]),
                      np.array([1.0]), "one")
    assert auto_slots(single) == 1
