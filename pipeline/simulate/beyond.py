"""`manymodels beyond`: plain eviction against each mechanism beyond eviction, on the default workloads.

One run per (workload, mechanism, memory size), on dask like the sweep; one tidy table
`beyond.parquet` (the run's metrics plus `workload`, `mechanism`, `memory_fraction`) and a flat
headline for DVC metrics. A mechanism is a named set of `run_one` arguments on top of the plain
policy (LRU, the eviction the mechanisms are compared with):

- `plain`: LRU eviction, nothing else;
- `keep-alive`: fixed keep-alive (`ttl`, `ttl_min` minutes), the serverless baseline;
- `hybrid-histogram`, `forecast-prewarm`: keep-alive with pre-warming (policies/keepalive.py);
- `interference`, `load-interference`: LRU with execution slowed by concurrent executions (K) or by
  running loads (K2) on the server (core.simulate);
- `shared-weights`, `adaptive-variants`, `learned-cache`, `host-overhead`: the memory mechanisms
  (mechanisms.py): weights shared per catalog model (the memory sharing saves is in the metrics
  `shared_weights_saved_peak` / `_time`), smaller variants instead of evictions, a learned early-exit
  cache (`learned_cache` spec), a model-server process per server (`host_overhead_mb`).

Inference slots (`workers`) may be given per workload: a workload whose mean concurrent execution
exceeds the slots is overloaded under every mechanism, and its latencies say nothing about them.
`auto` (None) sizes them from the workload: twice its mean executions in flight (sum of the requests'
exec_ms over the span of their arrivals), rounded up, so the average slot utilization is at most 50%
and bursts above it show as queueing, not as a backlog that never drains (`overloaded` still flags it).

Memory sizes are fractions of each workload's requested-model memory (summary.requested_model_mb),
so the grid means the same on every workload.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import polars as pl

from ..cluster import map_on_cluster
from ..errors import ManyModelsError
from ..files import atomic_output_dir
from ..logs import log
from .run import check_interference, check_run_parameters, load_workload, run_one
from .summary import requested_model_mb

PLAIN = "plain"


def mechanism_runs(ttl_min: float, interference: float, load_interference: float,
                   learned_cache: str = "hit=0.3,speedup=0.4,memory=0.1", host_overhead_mb: float = 200.0) -> dict[str, dict]:
    """Every known mechanism: its `run_one` arguments."""
    keep = {"ttl_min": float(ttl_min)}
    return {
        PLAIN: {"policy": "lru"},
        "keep-alive": {"policy": "ttl", "policy_params": keep},
        "hybrid-histogram": {"policy": "hybrid-histogram", "policy_params": keep},
        "forecast-prewarm": {"policy": "forecast-prewarm", "policy_params": keep},
        "interference": {"policy": "lru", "interference": float(interference)},
        "load-interference": {"policy": "lru", "load_interference": float(load_interference)},
        "shared-weights": {"policy": "lru", "shared_weights": True},
        "adaptive-variants": {"policy": "lru", "adaptive_variants": True},
        "learned-cache": {"policy": "lru", "learned_cache": learned_cache},
        "host-overhead": {"policy": "lru", "host_overhead_mb": float(host_overhead_mb)},
    }


def memory_sizes_mb(workload_dir: Path, fractions: list[float]) -> list[tuple[float, float]]:
    """(fraction, whole MB) pairs: fractions x the workload's requested-model memory."""
    if not fractions or any(not f > 0 for f in fractions):
        raise ManyModelsError(f"--memory-fractions: positive numbers needed (got {fractions})")
    total = requested_model_mb(workload_dir)
    if total <= 0:
        raise ManyModelsError(f"{workload_dir}: no model receives a request")
    return [(float(f), float(max(1, round(f * total)))) for f in sorted(set(fractions))]


AUTO_SLOT_UTILIZATION = 0.5


def auto_slots(workload) -> int:
    """Inference slots for an average utilization of at most AUTO_SLOT_UTILIZATION: the requests' total
    exec time over the span of their arrivals (mean executions in flight), divided by it, rounded up."""
    import math

    import numpy as np

    t_ms = np.asarray(workload.t_ms, dtype=float)
    if len(t_ms) < 2 or t_ms[-1] <= t_ms[0]:
        return 1
    exec_total_ms = float(np.asarray(workload.exec_ms, dtype=float)[np.asarray(workload.model_id)].sum())
    in_flight = exec_total_ms / float(t_ms[-1] - t_ms[0])
    return max(1, math.ceil(in_flight / AUTO_SLOT_UTILIZATION))


def _task(task: dict) -> dict:
    labels = {k: task.pop(k) for k in ("workload", "mechanism", "memory_fraction")}
    metrics = run_one(**task)
    flat = {k: v for k, v in metrics.items() if not isinstance(v, dict | list) and k != "simulated_requests_per_second"}
    return flat | labels | {"workload_dir": flat["workload"], "policy_params": json.dumps(metrics["policy_params"], sort_keys=True)}


def run_beyond(workloads_dir: Path, workloads: list[str], memory_fractions: list[float], mechanisms: list[str],
               out: Path, seed: int = 0, servers: int = 1, workers: int | None | list[int | None] = 4,
               ttl_min: float = 10.0,
               interference: float = 0.5, load_interference: float = 0.5, scheduler: str | None = None,
               dask_workers: int | None = None, learned_cache: str = "hit=0.3,speedup=0.4,memory=0.1",
               host_overhead_mb: float = 200.0) -> pl.DataFrame:
    known = mechanism_runs(ttl_min, interference, load_interference, learned_cache, host_overhead_mb)
    unknown = [m for m in mechanisms if m not in known]
    if unknown:
        raise ManyModelsError(f"--mechanisms: unknown {', '.join(map(repr, unknown))}; known: {', '.join(known)}")
    if not workloads:
        raise ManyModelsError("--workloads: name at least one workload")
    check_interference(interference, load_interference)
    slots = list(workers) if isinstance(workers, list | tuple) else [workers] * len(workloads)
    if len(slots) == 1:
        slots = slots * len(workloads)
    if len(slots) != len(workloads):
        raise ManyModelsError(f"--workers: one value, or one per workload ({len(workloads)}), got {len(slots)}")
    tasks = []
    for name, slot_count in zip(workloads, slots, strict=True):
        directory = Path(workloads_dir) / name
        workload, _ = load_workload(directory)  # checked once here; the tasks skip the checksums
        if slot_count is None:
            slot_count = auto_slots(workload)
            log.info("beyond: %s: %d inference slots (auto: mean executions in flight / %.1f)", name, slot_count,
                     AUTO_SLOT_UTILIZATION)
        for (fraction, memory), mechanism in itertools.product(memory_sizes_mb(directory, memory_fractions), mechanisms):
            check_run_parameters(memory, servers, slot_count, seed, known[mechanism].get("policy_params"))
            tasks.append({"workload": name, "mechanism": mechanism, "memory_fraction": fraction,
                          "workload_dir": str(directory), "memory_mb": memory, "seed": seed, "servers": servers,
                          "workers": slot_count, "verify": False, **known[mechanism]})
    log.info("beyond: %d workloads x %d mechanisms x %d memory sizes = %d runs", len(workloads), len(mechanisms),
             len(set(memory_fractions)), len(tasks))
    rows = map_on_cluster(_task, tasks, "beyond runs", scheduler=scheduler, workers=dask_workers)
    table = pl.DataFrame(rows).sort("workload", "mechanism", "memory_mb")
    with atomic_output_dir(Path(out), owned=("*.parquet", "*.json")) as tmp:
        table.write_parquet(tmp / "beyond.parquet")
    log.info("wrote %s (%d rows)", Path(out) / "beyond.parquet", table.height)
    return table


HEADLINE_KEYS = ("hit_ratio", "cold_starts", "latency_p99_ms", "memory_time_mb_min", "memory_peak_mb",
                 "load_time_ms_total", "prewarm_loads", "wasted_prewarms", "overloaded", "accuracy_mean", "downgrades",
                 "shared_weights_saved_peak", "shared_weights_saved_time")


def beyond_headline(table: pl.DataFrame) -> dict:
    """Per workload, at the middle memory fraction: each mechanism's figures and their ratio to plain."""
    out: dict = {}
    for name in sorted(table["workload"].unique().to_list()):
        part = table.filter(pl.col("workload") == name)
        fractions = sorted(part["memory_fraction"].unique().to_list())
        middle = fractions[len(fractions) // 2]
        at = part.filter(pl.col("memory_fraction") == middle)
        plain = at.filter(pl.col("mechanism") == PLAIN)
        base = plain.row(0, named=True) if plain.height else None
        entry = {"memory_fraction": middle, "memory_mb": float(at["memory_mb"][0])}
        for row in at.sort("mechanism").iter_rows(named=True):
            figures = {k: row[k] for k in HEADLINE_KEYS if k in row}
            if base is not None and row["mechanism"] != PLAIN:
                for k in ("cold_starts", "memory_time_mb_min", "latency_p99_ms"):
                    if base.get(k) and row.get(k) is not None:
                        figures[f"{k}_vs_plain"] = row[k] / base[k]
            entry[row["mechanism"]] = figures
        out[name] = entry
    return out
