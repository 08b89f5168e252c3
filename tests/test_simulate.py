"""The model-cache simulator against independent implementations, libCacheSim, and known answers."""

from __future__ import annotations

import json
from collections import OrderedDict

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.errors import ManyModelsError
from pipeline.simulate.core import Workload, simulate
from pipeline.simulate.run import run_one, sweep, sweep_headline
from pipeline.workload.export import export
from pipeline.workload.synthesize import WorkloadConfig, synthesize

ONLINE = ["lru", "fifo", "lfu", "random", "gdsf", "ttl", "cremebrulee"]
ALL = ONLINE + ["belady", "cremebrulee-oracle"]


def make(models: list[int], sizes: list[float], times: list[int] | None = None, load=None, exe=None,
         unload: float = 1.0) -> Workload:
    n = len(sizes)
    t = np.array(times if times is not None else range(len(models)), dtype=np.int64)
    return Workload(t, np.array(models, dtype=np.int32), np.array(sizes, dtype=float),
                    np.array(load or [1000.0] * n), np.array(exe or [10.0] * n), np.zeros(n) + unload)


def reference(models: list[int], sizes: list[float], capacity: float, policy: str, seed: int) -> list[bool]:
    """A plain, separate implementation of LRU / FIFO / LFU (in-cache counts, ties by the seeded
    permutation the simulator documents) for an object cache with sizes."""
    tiebreak = np.random.default_rng(seed).permutation(len(sizes))
    cache: OrderedDict[int, int] = OrderedDict()  # model -> in-cache count
    used, hits = 0.0, []
    for m in models:
        if m in cache:
            hits.append(True)
            cache[m] += 1
            if policy == "lru":
                cache.move_to_end(m)
            continue
        hits.append(False)
        if sizes[m] > capacity:
            continue
        while used + sizes[m] > capacity:
            if policy == "lfu":
                victim = min(cache, key=lambda k: (cache[k], tiebreak[k]))
            else:
                victim = next(iter(cache))
            used -= sizes[victim]
            del cache[victim]
        cache[m] = 1
        used += sizes[m]
    return hits


sequences = st.integers(2, 12).flatmap(lambda n: st.tuples(
    st.lists(st.integers(0, n - 1), min_size=1, max_size=300),
    st.lists(st.sampled_from([1.0, 2.0, 3.0, 5.0, 8.0]), min_size=n, max_size=n),
    st.sampled_from([3.0, 5.0, 8.0, 13.0, 21.0]),
    st.integers(0, 5)))


@given(case=sequences, policy=st.sampled_from(["lru", "fifo", "lfu"]))
@settings(max_examples=150, deadline=None)
def test_object_cache_policies_equal_independent_implementation(case, policy):
    models, sizes, capacity, seed = case
    result = simulate(make(models, sizes), policy, capacity, seed=seed, no_latency=True)
    assert result.hits.tolist() == reference(models, sizes, capacity, policy, seed)


@given(case=sequences)
@settings(max_examples=100, deadline=None)
def test_belady_bounds_every_online_policy_at_unit_sizes(case):
    models, sizes, capacity, seed = case
    unit = [1.0] * len(sizes)
    slots = float(max(1, int(capacity) % 6 + 1))
    workload = make(models, unit)
    best = simulate(workload, "belady", slots, seed=seed, no_latency=True).hits.sum()
    for policy in ONLINE:
        assert simulate(workload, policy, slots, seed=seed, no_latency=True).hits.sum() <= best, policy


@pytest.mark.parametrize("policy", ALL)
def test_cache_larger_than_working_set_misses_only_on_first_use(policy):
    rng = np.random.default_rng(1)
    models = rng.integers(0, 20, 2000).tolist()
    sizes = rng.uniform(10, 100, 20).tolist()
    times = np.cumsum(rng.integers(1, 1000, 2000)).tolist()
    result = simulate(make(models, sizes, times), policy, sum(sizes) + 1, no_latency=True,
                      policy_params={"ttl_min": 1e9} if policy == "ttl" else None)
    first = np.zeros(len(models), dtype=bool)
    first[np.unique(models, return_index=True)[1]] = True
    assert np.array_equal(~result.hits, first)
    assert result.evictions == 0


def test_latency_model_known_answer():
    # model 0: load 1000 ms, exec 100 ms. Requests at 0 (cold), 500 (waits for the load: a miss,
    # not a second cold start), 2000 (hit). One inference slot.
    workload = make([0, 0, 0], [10.0], [0, 500, 2000], load=[1000.0], exe=[100.0])
    result = simulate(workload, "lru", 100.0)
    assert result.hits.tolist() == [False, False, True]
    assert result.cold.tolist() == [True, False, False]
    assert result.latency_ms.tolist() == [1100.0, 700.0, 100.0]


def test_eviction_unload_time_and_memory_reserved_during_load():
    # two models of 60 MB in 100 MB: the second load evicts the first (unload 1 ms first)
    workload = make([0, 1, 0], [60.0, 60.0], [0, 5000, 10_000], load=[1000.0, 2000.0], exe=[10.0, 10.0])
    result = simulate(workload, "lru", 100.0)
    assert result.cold.tolist() == [True, True, True]
    assert result.latency_ms.tolist() == [1010.0, 2011.0, 1011.0]
    assert result.evictions == 2
    # a request arriving while the only other model is still loading waits until that model is loaded
    # (1000) and its request has run (1010): then it evicts it (unload 1 ms), loads until 2011 and
    # runs 10 ms: done at 2021, arrived at 10
    busy = simulate(make([0, 1], [60.0, 60.0], [0, 10], load=[1000.0, 1000.0]), "lru", 100.0)
    assert busy.rejected.tolist() == [False, False]
    assert busy.latency_ms.tolist() == [1010.0, 2011.0]
    # a model larger than the memory is rejected and counted, never given an infinite latency
    big = simulate(make([0, 1], [60.0, 160.0], [0, 10]), "lru", 100.0)
    assert big.rejected.tolist() == [False, True] and np.isnan(big.latency_ms[1]) and not big.hits[1]


def test_two_servers_place_on_the_one_with_room():
    workload = make([0, 1, 0, 1], [60.0, 60.0], [0, 1, 5000, 5001])
    one = simulate(workload, "lru", 100.0, servers=1, no_latency=True)
    two = simulate(workload, "lru", 100.0, servers=2, no_latency=True)
    assert one.hits.tolist() == [False, False, False, False]
    assert two.hits.tolist() == [False, False, True, True]


def test_unknown_policy_lists_valid_names(tmp_path):
    with pytest.raises(ManyModelsError, match=r"unknown policy 'lruu'; valid policies: belady, cremebrulee"):
        simulate(make([0], [1.0]), "lruu", 10.0)


def test_user_policy_by_module_path():
    # MRU written outside the core, loaded by name
    workload = make([0, 1, 2, 0], [1.0, 1.0, 1.0], None)
    result = simulate(workload, "tests.custom_policy:MRU", 2.0, no_latency=True)
    assert result.hits.tolist() == [False, False, False, True]  # MRU evicted 1, kept 0


@pytest.fixture(scope="module")
def small_workload(small_synthetic_trace, tmp_path_factory):
    _, db = small_synthetic_trace
    out = tmp_path_factory.mktemp("simwl") / "w"
    synthesize(WorkloadConfig(mode="replay", models=40, minutes=1440, seed=3, selection="quantile", rate_scale=0.2),
               out, db=db)
    return out


@pytest.mark.parametrize("policy", ["lru", "fifo"])
def test_no_latency_matches_libcachesim_request_by_request(small_workload, tmp_path, policy):
    lcs = pytest.importorskip("libcachesim")
    export(small_workload, "libcachesim", tmp_path / "trace.csv")
    memory_mb = 300.0
    metrics = run_one(small_workload, policy, memory_mb, tmp_path / "sim", no_latency=True, records=True)
    ours = pl.read_parquet(tmp_path / "sim" / "requests.parquet")["hit"].to_list()
    params = lcs.ReaderInitParam()
    params.has_header, params.delimiter = True, ","
    params.time_field, params.obj_id_field, params.obj_size_field = 1, 2, 3
    reader = lcs.TraceReader(str(tmp_path / "trace.csv"), lcs.TraceType.CSV_TRACE, params)
    cache = {"lru": lcs.LRU, "fifo": lcs.FIFO}[policy](cache_size=int(memory_mb * 1_000_000))
    theirs = [bool(cache.get(request)) for request in reader]
    assert len(theirs) == len(ours) == metrics["requests"]
    assert ours == theirs


def test_simulate_writes_metrics_and_memory(small_workload, tmp_path):
    metrics = run_one(small_workload, "cremebrulee", 500.0, tmp_path, workers=2)
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    for key in ("hit_ratio", "requests", "cold_starts", "evictions", "latency_p99_ms"):
        assert on_disk[key] == metrics[key]
    assert 0 <= on_disk["hit_ratio"] <= 1 and on_disk["source_trace"] == "synthetic"
    memory = pl.read_parquet(tmp_path / "memory.parquet")
    assert memory.height == 1440 and memory["peak_mb"].max() <= 500.0


def test_sweep_is_tidy_and_deterministic(small_workload, tmp_path):
    table = sweep(small_workload, ["lru", "belady", "random"], [200.0, 800.0], [0, 1], tmp_path / "a", no_latency=True)
    assert table.height == 12
    assert set(table.columns) >= {"policy", "memory_mb", "seed", "hit_ratio", "latency_p99_ms", "cold_starts"}
    again = sweep(small_workload, ["lru", "belady", "random"], [200.0, 800.0], [0, 1], tmp_path / "b", no_latency=True)
    assert "simulated_requests_per_second" not in table.columns  # wall clock: logs only
    assert table.equals(again)
    assert (tmp_path / "a" / "sweep.parquet").exists()
    best = sweep_headline(table)
    assert set(best) == {"200", "800"} and best["200"]["best_hit_ratio_policy"] in {"lru", "random"}
    # LRU has no randomness at these sizes: its seeds agree; every run saw every request
    lru = table.filter(pl.col("policy") == "lru")
    assert lru.group_by("memory_mb").agg(pl.col("hit_ratio").n_unique())["hit_ratio"].to_list() == [1, 1]
    assert table["requests"].n_unique() == 1


def test_keep_alive_expiry_makes_the_next_request_a_cold_start():
    # TTL 1 minute: the request at 90 s finds model 0 expired (idle since 0): a cold start, not a hit
    workload = make([0, 0, 0], [10.0], [0, 90_000, 100_000])
    result = simulate(workload, "ttl", 100.0, no_latency=True, policy_params={"ttl_min": 1.0})
    assert result.hits.tolist() == [False, False, True]
    assert result.cold.tolist() == [True, True, False]
    assert result.evictions == 1
    assert result.memory_events[1].tolist() == [10.0, 0.0, 10.0]


# ---- the numbered cases (issue 10), each with its hand-computed answer

def test_case1_no_head_of_line_blocking_across_models():
    # one slot; model 1's load (5000..6000) must not hold the hit on model 0 at 5001: it runs at once
    workload = make([0, 1, 0], [10.0, 10.0], [0, 5000, 5001], load=[1000.0, 1000.0], exe=[10.0, 10.0])
    result = simulate(workload, "lru", 100.0)
    assert result.hits.tolist() == [False, False, True]
    assert result.latency_ms.tolist() == [1010.0, 1010.0, 10.0]


@pytest.mark.parametrize(("workers", "latency"), [(1, [1010.0, 2021.0, 1000.0]), (2, [1010.0, 2011.0, 990.0])])
def test_case2_a_request_for_a_loading_model_waits_for_its_load(workers, latency):
    # model 1 cannot evict model 0 while it loads and has work; the request for model 0 at 20 waits
    # for model 0's own load (done at 1000): a miss, not a second cold start. With 2 slots both
    # requests for model 0 run 1000..1010; model 1 then evicts it (unload 1) and loads 1011..2011.
    workload = make([0, 1, 0], [60.0, 60.0], [0, 10, 20], load=[1000.0, 1000.0], exe=[10.0, 10.0])
    result = simulate(workload, "lru", 100.0, workers=workers)
    assert result.cold.tolist() == [True, True, False]
    assert result.hits.tolist() == [False, False, False]
    assert result.latency_ms.tolist() == latency
    assert result.evictions == 1


def test_case3_queued_work_pins_memory():
    # model 0 has three 1-second requests queued on one slot (100..3100); model 1 (arrives at 3) may
    # only evict it once they are done: unload 1, load 3101..3201, run 3201..4201
    workload = make([0, 0, 0, 1], [60.0, 60.0], [0, 1, 2, 3], load=[100.0, 100.0], exe=[1000.0, 1000.0])
    result = simulate(workload, "lru", 100.0)
    assert result.latency_ms.tolist() == [1100.0, 2099.0, 3098.0, 4198.0]
    t, used = result.memory_events
    assert t.tolist() == [0, 3100] and used.tolist() == [60.0, 60.0]


def overload_workload(minutes: int = 20) -> Workload:
    # two 60 MB models alternating every 100 ms, each request 150 ms of inference
    n = minutes * 600
    return make([i % 2 for i in range(n)], [60.0, 60.0], list(range(0, 100 * n, 100)),
                load=[1000.0, 1000.0], exe=[150.0, 150.0])


def test_case4_overload_is_flagged_and_bounded_by_max_wait():
    from pipeline.simulate.run import summarize
    workload = overload_workload()
    n = len(workload.t_ms)
    # one slot: 1.5 s of work arrives each second, the backlog grows all run long (~600 s at the end)
    one = summarize(simulate(workload, "lru", 200.0, workers=1), workload)
    assert one["overloaded"] and one["timed_out"] == 0 and one["latency_p99_ms"] > 500_000
    two = summarize(simulate(workload, "lru", 200.0, workers=2), workload)
    # misses: the requests before each model is loaded (0..800 for model 0, 100..900 for model 1)
    assert not two["overloaded"] and two["hit_ratio"] == (n - 10) / n and two["latency_p99_ms"] == 150.0
    # both models stay loaded from 0 and 100 ms on: 60 MB x 0.1 s + 120 MB until the last completion
    end_ms = 100 * (n - 1) + 150
    assert two["memory_time_mb_min"] == pytest.approx((60.0 * 100 + 120.0 * (end_ms - 100)) / 60_000)
    assert two["load_time_ms_total"] == 2000.0 and two["loads"] == 2
    bounded = summarize(simulate(workload, "lru", 200.0, workers=1, max_wait_ms=5000.0), workload)
    assert bounded["timed_out"] > 0.01 * n and bounded["overloaded"]
    assert bounded["latency_p99_ms"] <= 5000.0 + 150.0  # started within 5 s, then ran
    # the headline names no winner among overloaded runs (here: the 1-slot runs filed under 100 MB)
    rows = [dict(policy=p, memory_mb=m, seed=0, **{k: v for k, v in summarize(
        simulate(workload, p, 200.0, workers=w), workload).items() if k in ("hit_ratio", "latency_p99_ms", "overloaded")})
        for p in ("lru", "fifo") for m, w in ((100.0, 1), (200.0, 2))]
    best = sweep_headline(pl.DataFrame(rows))
    assert best["100"]["overloaded"] and best["100"]["best_hit_ratio_policy"] is None
    assert not best["200"]["overloaded"] and best["200"]["best_hit_ratio_policy"] in {"lru", "fifo"}


def test_case5_several_servers_evict_globally():
    # 60 MB models on 2 x 100 MB hold one model each: a global LRU over 2 slots gets 4 hits
    workload = make([0, 1, 2, 3, 2, 3, 2, 3, 0, 1], [60.0] * 4)
    result = simulate(workload, "lru", 100.0, servers=2, no_latency=True)
    assert result.hits.tolist() == [False, False, False, False, True, True, True, True, False, False]


@given(case=sequences, servers=st.integers(1, 4), policy=st.sampled_from(["lru", "fifo", "lfu"]))
@settings(max_examples=60, deadline=None)
def test_servers_of_one_model_each_are_one_cache_of_that_many_models(case, servers, policy):
    models, sizes, _, seed = case
    one_each = [60.0] * len(sizes)
    result = simulate(make(models, one_each), policy, 100.0, servers=servers, seed=seed, no_latency=True)
    assert result.hits.tolist() == reference(models, [1.0] * len(sizes), float(servers), policy, seed)


def test_case6_belady_breaks_next_use_ties_by_position():
    workload = make([1, 2, 0, 1, 2, 0], [1.0, 1.0, 1.0], [0, 1, 2, 3, 3, 4])
    belady = simulate(workload, "belady", 2.0, seed=2, no_latency=True)
    # at request 2 model 1 (next at position 3) stays, 2 (position 4) goes; at 4, 1 (never) goes
    assert belady.hits.tolist() == [False, False, False, True, False, True]
    assert simulate(workload, "random", 2.0, seed=2, no_latency=True).hits.sum() <= belady.hits.sum()


tied_sequences = st.integers(2, 10).flatmap(lambda n: st.tuples(
    st.lists(st.integers(0, n - 1), min_size=1, max_size=200),
    st.integers(1, 5), st.integers(0, 5)))


@given(case=tied_sequences, gaps=st.lists(st.integers(0, 2), min_size=200, max_size=200))
@settings(max_examples=100, deadline=None)
def test_belady_bounds_every_online_policy_with_tied_timestamps(case, gaps):
    models, slots, seed = case
    times = np.cumsum(gaps[:len(models)]).tolist()  # many requests share a millisecond
    workload = make(models, [1.0] * (max(models) + 1), times)
    best = simulate(workload, "belady", float(slots), seed=seed, no_latency=True).hits.sum()
    for policy in ONLINE:
        assert simulate(workload, policy, float(slots), seed=seed, no_latency=True,
                        policy_params={"ttl_min": 0.001} if policy == "ttl" else None).hits.sum() <= best, policy


def test_case7_cremebrulee_evicts_only_the_largest_needed_of_its_low_utility_set():
    # utilities f c / size: A 1x1/10, B 1x12/60, C 3x300/30. D needs 50 MB: {A, B} frees enough;
    # sorted by size B goes alone, so A stays and its last request hits
    workload = make([0, 1, 2, 2, 2, 3, 0], [10.0, 60.0, 30.0, 50.0], load=[1.0, 12.0, 300.0, 100.0])
    result = simulate(workload, "cremebrulee", 100.0, no_latency=True)
    assert result.hits.astype(int).tolist() == [0, 0, 0, 1, 1, 0, 1]


def random_latency_workload(seed: int, n: int = 400, models: int = 12) -> Workload:
    rng = np.random.default_rng(seed)
    return Workload(np.cumsum(rng.integers(0, 400, n)), rng.zipf(1.5, n).clip(1, models).astype(np.int32) - 1,
                    rng.choice([10.0, 20.0, 35.0, 60.0], models), rng.uniform(50, 2000, models).round(),
                    rng.uniform(1, 300, models).round(), rng.uniform(1, 50, models).round())


@pytest.mark.parametrize("policy", ALL)
def test_case8_compiled_core_equals_the_python_policy_path(policy):
    # the compiled policies (heaps, lists) and the Python classes through the plain-Python loop agree
    # request by request: with latency, several servers and slots, timeouts, and without latency
    params = {"ttl_min": 0.05} if policy == "ttl" else None
    for seed in range(3):
        workload = random_latency_workload(seed)
        for kwargs in ({"no_latency": True}, {"servers": 2, "workers": 2}, {"workers": 1, "max_wait_ms": 3000.0}):
            fast = simulate(workload, policy, 90.0, seed=seed, policy_params=params, **kwargs)
            slow = simulate(workload, policy, 90.0, seed=seed, policy_params=params, python=True, **kwargs)
            for field in ("hits", "cold", "rejected", "timed_out", "latency_ms"):
                assert np.array_equal(getattr(fast, field), getattr(slow, field), equal_nan=True), (field, kwargs)
            assert (fast.evictions, fast.bytes_loaded) == (slow.evictions, slow.bytes_loaded)
            assert np.array_equal(fast.memory_events[1], slow.memory_events[1])


@given(case=sequences, policy=st.sampled_from(ALL), servers=st.integers(1, 3), workers=st.integers(1, 3))
@settings(max_examples=80, deadline=None)
def test_event_loop_at_zero_times_is_the_object_cache(case, policy, servers, workers):
    models, sizes, capacity, seed = case
    times = (np.arange(len(models)) // 2).tolist()
    zero = Workload(np.array(times, dtype=np.int64), np.array(models, dtype=np.int32), np.array(sizes),
                    np.zeros(len(sizes)), np.zeros(len(sizes)), np.zeros(len(sizes)))
    params = {"ttl_min": 0.0001} if policy == "ttl" else None
    events = simulate(zero, policy, capacity, seed=seed, servers=servers, workers=workers, policy_params=params)
    cache = simulate(zero, policy, capacity, seed=seed, servers=servers, no_latency=True, policy_params=params)
    assert events.hits.tolist() == cache.hits.tolist() and events.cold.tolist() == cache.cold.tolist()
    assert events.evictions == cache.evictions


@given(seed=st.integers(0, 1000), policy=st.sampled_from(ALL), servers=st.integers(1, 3))
@settings(max_examples=40, deadline=None)
def test_memory_never_exceeds_the_servers_and_latency_covers_execution(seed, policy, servers):
    workload = random_latency_workload(seed, n=300)
    result = simulate(workload, policy, 90.0, servers=servers, workers=2, seed=seed)
    assert result.memory_events[1].max(initial=0) <= 90.0 * servers + 1e-9
    served = ~result.rejected & ~result.timed_out
    assert (result.latency_ms[served] >= result.exec_ms[served]).all()
    # every request is a hit, a cold start, a wait on a load, or a rejection; at most one load per miss
    assert not (result.hits & result.cold).any() and result.loads == result.cold.sum()


def test_max_wait_drops_requests_that_could_not_start_in_time():
    # one slot, exec 1000: the request at 2002 would start at 4000 (waited 1998 > 1500): dropped
    workload = make([0, 0, 0, 0], [10.0], [0, 2000, 2001, 2002], load=[100.0], exe=[1000.0])
    result = simulate(workload, "lru", 100.0, max_wait_ms=1500.0)
    assert result.timed_out.tolist() == [False, False, False, True]
    assert result.latency_ms[:3].tolist() == [1100.0, 1000.0, 1999.0] and np.isnan(result.latency_ms[3])


@given(case=sequences, policy=st.sampled_from(["lru", "fifo", "ttl"]))
@settings(max_examples=80, deadline=None)
def test_list_fast_path_equals_the_general_object_cache_loop(case, policy):
    from pipeline.simulate import engine
    from pipeline.simulate.core import policy_state
    models, sizes, capacity, seed = case
    arrays = (np.arange(len(models), dtype=float), np.array(models, dtype=np.int64),
              np.round(np.array(sizes) * 1e6).astype(np.int64))
    def state():
        return policy_state(engine.KINDS[policy], policy, len(models), np.array(sizes), np.ones(len(sizes)),
                            np.ones(len(sizes)), np.arange(len(sizes)), {"ttl_min": 0.0001}, None, None, seed)
    fast = engine.list_cache_loop(engine.KINDS[policy], state(), *arrays, int(capacity * 1e6))
    general = engine.cache_loop(engine.KINDS[policy], state(), *arrays, int(capacity * 1e6), 1)
    for a, b in zip(fast, general, strict=True):
        assert np.array_equal(a, b, equal_nan=True)


@given(case=sequences, policy=st.sampled_from(["lfu", "gdsf", "cremebrulee", "belady", "cremebrulee-oracle"]),
       alpha=st.sampled_from([0.0, 0.5, 1.0, 2.0]))
@settings(max_examples=120, deadline=None)
def test_heap_fast_path_equals_the_general_object_cache_loop(case, policy, alpha):
    # the lazily repaired heap (LFU, GDSF, CremeBrulee) and the refreshed lower bounds
    # (CremeBrulee-oracle) evict the same models in the same order as the general loop's heap
    from pipeline.simulate import engine
    from pipeline.simulate.core import next_use, policy_state
    models, sizes, capacity, seed = case
    rng = np.random.default_rng(seed)
    times = np.cumsum(rng.integers(0, 3, len(models))).astype(float)  # tied timestamps too
    ids = np.array(models, dtype=np.int64)
    next_pos, next_ms = next_use(times, ids)
    load, exe = rng.uniform(1, 300, len(sizes)).round(), rng.uniform(1, 50, len(sizes)).round()
    tiebreak = rng.permutation(len(sizes))
    def state():
        return policy_state(engine.KINDS[policy], policy, len(models), np.array(sizes), load, exe, tiebreak,
                            {"alpha": alpha}, next_pos, next_ms, seed)
    arrays = (times, ids, np.round(np.array(sizes) * 1e6).astype(np.int64), int(capacity * 1e6))
    fast = engine.heap_cache_loop(engine.KINDS[policy], state(), *arrays)
    general = engine.cache_loop(engine.KINDS[policy], state(), *arrays, 1)
    for a, b in zip(fast, general, strict=True):
        assert np.array_equal(a, b, equal_nan=True)
