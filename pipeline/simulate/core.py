"""The event-driven core: requests in time order against one or more servers of memory M.

Serving model (all times simulated, in ms; nothing reads the wall clock). Where a choice is open
it follows model servers such as TF Serving and Triton: a model is served once fully loaded,
requests queue per model, loads run beside inference, and memory held by a model with work in
flight is not taken from it.
- Per-model queues. Each server has `workers` inference slots; a free slot takes the earliest
  queued request whose model is loaded on that server (no head-of-line blocking across models).
  latency = completion - arrival.
- A request for a loaded model is a hit. A request for a model that is loading, or whose load is
  waiting to start, waits for that load: a miss, not a second cold start. Otherwise it is a cold
  start and asks for a load.
- Loads are decided when they can start: the victims are chosen then (so a victim requested again
  while the load waits is simply not chosen: the eviction is cancelled), unloaded one after the
  other (unload time), and the model loads (load time); its memory is reserved from the decision.
  Loads run beside inference, not in its queue. Loads that cannot start yet wait in request order.
- Queued and running work pins its model's memory: only a loaded model with no queued or running
  request may be evicted. A model still loading is never evicted.
- Several servers place and evict globally: a model goes to the server with the most free memory
  if one has room; else the policy's least valuable evictable residents across all servers are
  taken in order until one server has freed enough, and (of that server's candidates) the policy
  selects what to evict. A model lives on one server at a time.
- `max_wait_ms` (optional): a request that has not started after waiting that long is dropped and
  counted (`timed_out`; latency NaN, excluded from latency statistics), as a serving deadline.
- A model larger than a server's memory cannot be served: the request is rejected and counted
  (as a miss; `rejected`), never given an infinite latency.
- Keep-alive expiry (policy `ttl`) drops an idle, unpinned model whose last request is `ttl_min`
  old; the memory series records it at max(last request + TTL, last completion).
- Belady and CremeBrulee-oracle know each request's next use; next-use ties (same millisecond) go
  to the request position, so Belady is the optimum at unit sizes even with tied timestamps.
  CremeBrulee evicts as the original: the lowest-utility set that frees enough, sorted by size,
  largest first, and only the prefix needed; its frequencies count across evictions.
With `no_latency` every load, exec and unload time is zero, so the hit sequence is exactly that
of an object cache whose object sizes are the models' memory (a separate, faster loop that the
tests check against the event loop at zero times).

Memory is counted in bytes (size_mb x 10^6, rounded, as the libCacheSim export writes it). The
loops are compiled (numba, `engine.py`); a policy given as `package.module:ClassName` (a `Policy`
subclass) runs the same loops as plain Python.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import ManyModelsError
from . import engine
from .mechanisms import (
    Mechanisms,
    catalog_arrays,
    check_mechanisms,
    mechanism_state,
    off_state,
    parse_learned_cache,
)
from .policies import PolicyContext, make_policy


@dataclass
class Workload:
    t_ms: np.ndarray  # int64, sorted
    model_id: np.ndarray  # int32
    size_mb: np.ndarray
    load_ms: np.ndarray
    exec_ms: np.ndarray
    unload_ms: np.ndarray
    name: str = "workload"
    # the memory mechanisms' catalog (issue 13): per model, the row of `catalog` it is bound to (-1:
    # none); `catalog` = `load_catalog_mechanisms()` of the workload's catalog. None: every model its
    # own catalog entry (no family, accuracy unknown, weights = size_mb, instance 0)
    catalog_index: np.ndarray | None = None
    catalog: object | None = None  # polars DataFrame


@dataclass
class RunResult:
    hits: np.ndarray  # bool per request
    cold: np.ndarray  # bool per request: this request started a load
    rejected: np.ndarray  # bool per request
    latency_ms: np.ndarray  # float per request (NaN for rejected and timed-out requests; excluded from stats)
    exec_ms: np.ndarray
    evictions: int
    bytes_loaded: int
    memory_events: tuple[np.ndarray, np.ndarray]  # (t_ms, memory in use after the change, MB), time order
    timed_out: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))  # bool per request
    loads: int = 0
    load_time_ms_total: float = 0.0  # simulated load time of every load started
    end_ms: float = 0.0  # when the last request completed (the last arrival with no latency)
    # memory mechanisms (issue 13); filled on every run
    served_accuracy: np.ndarray = field(default_factory=lambda: np.zeros(0))  # top-1 of what served each request (NaN: unknown)
    downgrades: int = 0  # resident models swapped for a smaller variant
    variant_served: int = 0  # requests served by a smaller resident variant of their model
    early_exits: int = 0  # requests answered by the learned cache
    memory_unshared_mb: np.ndarray | None = None  # memory in use as if no weights were shared (with memory_events)
    prewarm_loads: int = 0  # loads without a request (keep-alive policies with pre-warming)
    wasted_prewarms: int = 0  # pre-warmed models unloaded or evicted before any request used them
    prewarms_skipped: int = 0  # pre-warms due while the memory was full or loads waited for it


NEXT_USE_POLICIES = ("belady", "cremebrulee-oracle")
# keep-alive with pre-warming: LRU eviction under memory pressure plus per-model keep-alive and
# pre-warm timers in the event loop (`engine._ka_*`; the policies' modules document the rules)
KEEPALIVE_POLICIES = {"hybrid-histogram": engine.KA_HYBRID, "forecast-prewarm": engine.KA_FORECAST}
KEEPALIVE_PARAMS = ("bin_min", "range_min", "min_samples", "cv", "head_pct", "tail_pct", "margin", "oob_share",
                    "fc_margin", "fc_min_samples", "fc_devs")


def next_use(t_ms: np.ndarray, model_id: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each request, the position of the next request for the same model (n if none) and its
    time (inf if none)."""
    model_id = np.asarray(model_id)
    if len(model_id) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    if model_id.min() < 0:
        raise ManyModelsError(f"negative model_id {int(model_id.min())}")
    return engine.next_use_kernel(np.asarray(t_ms), model_id, int(model_id.max()) + 1)


def next_use_ms(t_ms: np.ndarray, model_id: np.ndarray) -> np.ndarray:
    """For each request, the time of the next request for the same model (inf if none)."""
    return next_use(t_ms, model_id)[1]


def policy_weights(policy: str, size_mb: np.ndarray, load_ms: np.ndarray, exec_ms: np.ndarray,
                   params: dict) -> np.ndarray:
    """Per-model constant factor of a policy's priority (one function for the compiled state and
    the Python classes, so both compute the same floats): GDSF load/size; CremeBrulee
    (c / max c)^b / size with c the load time or load/exec."""
    size = np.asarray(size_mb, dtype=float)
    load = np.asarray(load_ms, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        if policy == "gdsf":
            return load / size
        if policy in ("cremebrulee", "cremebrulee-oracle"):
            cost = load / np.asarray(exec_ms, dtype=float) if params.get("cost", "load") == "load_over_exec" else load
            top = cost.max() if len(cost) and cost.max() > 0 else 1.0
            return (cost / top) ** float(params.get("beta", 1.0)) / size
    return np.zeros(len(size))


def policy_state(kind: int, policy: str, n_requests: int, size_mb, load_ms, exec_ms, tiebreak, params: dict,
                 next_pos, next_ms, seed_state: int) -> tuple:
    """The compiled policy's state (`engine.R_*` rows), the same shapes and dtypes for every kind."""
    m = len(size_mb)
    width = max(m, 8)
    ints = np.full((engine.INT_ROWS, width), -1, dtype=np.int64)
    ints[engine.R_INTS] = 0
    ints[engine.R_INTS, engine.I_HEAD] = ints[engine.R_INTS, engine.I_TAIL] = -1
    ints[engine.R_INTS, engine.I_CURSOR] = engine.NO_CURSOR
    ints[engine.R_INTS, engine.I_RNG] = seed_state
    ints[engine.R_KEY2, :m] = tiebreak
    ints[engine.R_TIE, :m] = tiebreak
    ints[engine.R_COUNT] = 0
    ints[engine.R_INPOL] = 0
    floats = np.zeros((engine.FLOAT_ROWS, width))
    floats[engine.R_FLOATS, engine.F_TTL] = float(params.get("ttl_min", 10.0)) * 60_000.0
    floats[engine.R_FLOATS, engine.F_ALPHA] = float(params.get("alpha", 1.0))
    floats[engine.R_WEIGHT, :m] = policy_weights(policy, size_mb, load_ms, exec_ms, params)
    if next_pos is None:
        next_pos, next_ms = np.zeros(1, dtype=np.int64), np.zeros(1)
    return (ints, floats, np.ascontiguousarray(next_pos, dtype=np.int64), np.ascontiguousarray(next_ms, dtype=float))


def simulate(workload: Workload, policy: str, memory_mb: float, servers: int = 1, workers: int = 1,
             seed: int = 0, no_latency: bool = False, policy_params: dict | None = None,
             max_wait_ms: float | None = None, python: bool = False, shared_weights: bool = False,
             adaptive_variants: bool = False, host_overhead_mb: float = 0.0, hosting: str = "multi",
             learned_cache: dict | str | None = None, interference: float = 0.0,
             load_interference: float = 0.0) -> RunResult:
    """Run one policy on one workload. `python=True` runs a built-in policy's Python class through
    the plain-Python loop (as a user's `package.module:ClassName` policy always runs).

    The memory mechanisms (`shared_weights`, `adaptive_variants`, `host_overhead_mb`/`hosting`,
    `learned_cache`; see `mechanisms.py`) run in the event loop; with `no_latency` they run in the
    same event loop with every load, exec and unload time zero (an object cache with their memory).
    `interference` K and `load_interference` K2: a request's execution time, fixed when it starts, is
    exec x (1 + K (busy - 1)) x (1 + K2 loads) with busy the executions running on its server
    (itself included) and loads the loads running there (no effect with `no_latency`: exec is 0).
    Policies `hybrid-histogram` and `forecast-prewarm` run the event loop (with zero times when
    `no_latency`), since their unloads and pre-warms are timed."""
    mech = Mechanisms(bool(shared_weights), bool(adaptive_variants), float(host_overhead_mb), hosting,
                      parse_learned_cache(learned_cache))
    check_mechanisms(mech.host_overhead_mb, mech.hosting)
    params = dict(policy_params or {})
    keepalive_mode = KEEPALIVE_POLICIES.get(policy, engine.KA_OFF)
    n_models = len(workload.size_mb)
    rng = np.random.default_rng(seed)
    tiebreak = rng.permutation(n_models)
    seed_state = int(rng.integers(0, 2**63))
    times, models = np.ascontiguousarray(workload.t_ms), np.ascontiguousarray(workload.model_id)
    list_loop = (no_latency and not python and servers == 1 and policy in ("lru", "fifo", "ttl")
                 and not mech.on and times.dtype in (np.int64, np.float64) and models.dtype in (np.int32, np.int64))
    if not list_loop:  # the list loop takes the stored dtypes as they are (no full-size copies)
        times, models = times.astype(np.float64, copy=False), models.astype(np.int64, copy=False)
    if len(models) and (models.min() < 0 or models.max() >= n_models):
        raise ManyModelsError(f"workload {workload.name}: model_id outside 0..{n_models - 1}")
    size_mb = np.asarray(workload.size_mb, dtype=float)
    size_b = np.round(size_mb * 1_000_000).astype(np.int64)
    capacity = int(float(memory_mb) * 1_000_000)  # bytes, as libCacheSim's cache_size
    compiled = not python and (policy in engine.KINDS or policy in KEEPALIVE_POLICIES)
    needs_future = policy in NEXT_USE_POLICIES or not compiled
    next_pos, next_ms = next_use(times, models) if needs_future else (None, None)
    # policies decide with the models' real profiles, even when simulated times are zero
    profile_load = np.asarray(workload.load_ms, dtype=float)
    profile_exec = np.asarray(workload.exec_ms, dtype=float)
    if compiled:
        kind = engine.KINDS.get(policy, engine.LRU)
        state = policy_state(kind, policy, len(times), size_mb, profile_load, profile_exec, tiebreak, params,
                             next_pos, next_ms, seed_state)
        cache_loop, event_loop = engine.cache_loop, engine.event_loop
    else:
        context = PolicyContext(size_mb.tolist(), profile_load.tolist(), profile_exec.tolist(), rng,
                                tiebreak.tolist(), params, next_ms.tolist(), size_bytes=size_b.tolist(),
                                next_use_index=next_pos.tolist(), seed_state=seed_state,
                                weight=policy_weights(policy, size_mb, profile_load, profile_exec, params).tolist())
        kind = -1
        state = engine.PythonPolicyState(make_policy(policy, context))
        cache_loop, event_loop = engine.python_build(engine.cache_loop), engine.python_build(engine.event_loop)
    xout = np.zeros(8)
    xparams = engine.keepalive_params(
        keepalive_mode, float(params.get("ttl_min", 10.0)) * 60_000.0, workers, float(interference),
        float(load_interference), **{k: params[k] for k in KEEPALIVE_PARAMS if k in params})
    if mech.on:  # the memory mechanisms: the event loop (zero times with no_latency)
        return _simulate_mechanisms(workload, mech, kind, state, event_loop, times, models, size_mb, capacity,
                                    servers, workers, seed, no_latency, max_wait_ms, xparams, xout)
    if list_loop:
        out = engine.list_cache_loop(kind, state, times, models, size_b, capacity)
    elif no_latency and compiled and servers == 1 and kind in engine.HEAP_KINDS and not keepalive_mode:
        out = engine.heap_cache_loop(kind, state, times, models, size_b, capacity)
    elif no_latency and not keepalive_mode:
        out = cache_loop(kind, state, times, models, size_b, capacity, servers)
    else:
        zero = np.zeros(n_models)
        load, execute, unload = (np.zeros(n_models) for _ in range(3)) if no_latency else (
            np.array(a, dtype=float) for a in (workload.load_ms, workload.exec_ms, workload.unload_ms))  # writable copies
        out = event_loop(kind, state, times, models, size_b, load if len(load) else zero, execute, unload,
                         capacity, servers, workers, -1.0 if max_wait_ms is None else float(max_wait_ms),
                         off_state(len(times)), xparams, xout)
    hits, cold, rejected, timed_out, latency, evictions, loads, loaded_bytes, load_total, end_ms, mem_t, mem_d = out
    mem_t, mem_d = np.asarray(mem_t), np.asarray(mem_d)
    if len(mem_t) > 1 and not bool((mem_t[1:] >= mem_t[:-1]).all()):  # in time order already without latency
        order = np.argsort(mem_t, kind="stable")
        mem_t, mem_d = mem_t[order], mem_d[order]
    mem_used_mb = np.cumsum(mem_d) / 1_000_000
    exec_ms = np.zeros(len(times)) if no_latency else np.asarray(workload.exec_ms, dtype=float)[models]
    return RunResult(np.asarray(hits, dtype=bool), np.asarray(cold, dtype=bool), np.asarray(rejected, dtype=bool),
                     np.asarray(latency, dtype=float), exec_ms, int(evictions), int(loaded_bytes),
                     (mem_t.astype(np.int64), mem_used_mb), np.asarray(timed_out, dtype=bool),
                     int(loads), float(load_total), float(end_ms),
                     served_accuracy=_base_accuracy(workload, models, np.asarray(rejected, dtype=bool)),
                     **_prewarm_counts(xout))


def _prewarm_counts(xout: np.ndarray) -> dict:
    return {"prewarm_loads": int(xout[engine.K_PREWARMS]), "wasted_prewarms": int(xout[engine.K_WASTED]),
            "prewarms_skipped": int(xout[engine.K_SKIPPED])}


def _base_accuracy(workload: Workload, models: np.ndarray, rejected: np.ndarray) -> np.ndarray:
    """Top-1 accuracy of each request's own model (NaN: unknown or not served)."""
    if workload.catalog is None or workload.catalog_index is None or len(models) == 0:
        return np.full(len(models), np.nan)
    cat = catalog_arrays(workload)
    accuracy = cat.accuracy[cat.index[models]]
    return np.where(rejected, np.nan, accuracy)


def _simulate_mechanisms(workload: Workload, mech: Mechanisms, kind: int, state, event_loop, times, models, size_mb,
                         capacity: int, servers: int, workers: int, seed: int, no_latency: bool,
                         max_wait_ms: float | None, xparams: np.ndarray, xout: np.ndarray) -> RunResult:
    """One run with the memory mechanisms on (`mechanisms.py`)."""
    n_models = len(size_mb)
    cat = catalog_arrays(workload)
    if no_latency:
        load, execute, unload = np.zeros(n_models), np.zeros(n_models), np.zeros(n_models)
    else:
        load, execute, unload = (np.array(a, dtype=float) for a in (workload.load_ms, workload.exec_ms,
                                                                     workload.unload_ms))
    served_models = np.array(models, dtype=np.int64)  # the loop writes the model that served each request
    B, size_b = mechanism_state(workload, mech, cat, servers, execute, len(times), no_latency, seed, served_models)
    out = event_loop(kind, state, times, served_models, size_b, load, execute, unload, capacity, servers, workers,
                     -1.0 if max_wait_ms is None else float(max_wait_ms), B, xparams, xout)
    hits, cold, rejected, timed_out, latency, evictions, loads, loaded_bytes, load_total, end_ms, mem_t, mem_d = out
    order = np.argsort(mem_t, kind="stable")
    mem_used_mb = np.cumsum(np.asarray(mem_d)[order]) / 1_000_000
    memu = B[engine.B_MEMU][:len(mem_d)]
    unshared_mb = np.cumsum(memu[order]) / 1_000_000
    rejected = np.asarray(rejected, dtype=bool)
    variant = B[engine.B_SERVED]
    known = (variant >= 0) & ~rejected
    accuracy = np.full(len(times), np.nan)
    accuracy[known] = cat.accuracy[variant[known]]
    xmul = B[engine.B_XMUL]
    if no_latency:
        exec_ms = np.zeros(len(times))
    else:
        own = cat.index[models]
        exec_of = np.where(known & (variant != own), cat.exec_ms[np.maximum(variant, 0)],
                           np.asarray(workload.exec_ms, dtype=float)[models])
        exec_ms = exec_of * xmul
    return RunResult(np.asarray(hits, dtype=bool), np.asarray(cold, dtype=bool), rejected,
                     np.asarray(latency, dtype=float), exec_ms, int(evictions), int(loaded_bytes),
                     (np.asarray(mem_t)[order].astype(np.int64), mem_used_mb), np.asarray(timed_out, dtype=bool),
                     int(loads), float(load_total), float(end_ms), served_accuracy=accuracy,
                     downgrades=int(B[engine.B_INTS][engine.BI_DOWNGRADES]),
                     variant_served=int(B[engine.B_INTS][engine.BI_REDIRECTS]),
                     early_exits=int((xmul[~rejected] != 1.0).sum()), memory_unshared_mb=unshared_mb,
                     **_prewarm_counts(xout))
