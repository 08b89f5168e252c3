"""The cache outcome of a workload, through the simulator's API: no-latency hit ratios at memory
points set by the reference, and the cold-start ratio with latency.

Memory points: fraction x the reference's requested-model memory (sum of size_mb over the models
with at least one request). A candidate with a different number of requested models gets that
memory scaled by (candidate requested models / reference requested models), so that both sides hold
the same share of their requested models on average (with equal counts, exactly the fractions of
the reference's memory)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..simulate.core import Workload, simulate
from ..simulate.run import load_workload, summarize


def requested_memory_mb(workload: Workload) -> tuple[float, int]:
    """(sum of size_mb over the models with at least one request, number of those models)."""
    requested = np.bincount(workload.model_id, minlength=len(workload.size_mb)) > 0
    return float(workload.size_mb[requested].sum()), int(requested.sum())


def policy_params(policy: str, ttl_min: float) -> dict:
    return {"ttl_min": ttl_min} if policy == "ttl" else {}


def hit_ratio(workload: Workload, policy: str, memory_mb: float, ttl_min: float, seed: int) -> float | None:
    """Requests served from memory / requests, every load, execution and unload time zero."""
    if len(workload.t_ms) == 0:
        return None
    result = simulate(workload, policy, memory_mb, seed=seed, no_latency=True,
                      policy_params=policy_params(policy, ttl_min))
    return float(result.hits.mean())


def cold_start_ratio(workload: Workload, policy: str, memory_mb: float, slots: int, ttl_min: float,
                     seed: int) -> float | None:
    """Cold starts / requests with the models' load, execution and unload times on one server."""
    if len(workload.t_ms) == 0:
        return None
    result = simulate(workload, policy, memory_mb, servers=1, workers=slots, seed=seed,
                      policy_params=policy_params(policy, ttl_min))
    summary = summarize(result, workload)
    return summary["cold_starts"] / summary["requests"]


@lru_cache(maxsize=2)
def _workload(directory: str) -> Workload:
    """A workload read once per worker process (every run on a side reads the same files)."""
    return load_workload(directory)[0]


def cache_run(task: dict) -> float | None:
    """One simulation as a cluster task: {directory, kind: hit_ratio | cold_start_ratio, policy,
    memory_mb, ttl_min, slots, seed}."""
    workload = _workload(task["directory"])
    if task["kind"] == "hit_ratio":
        return hit_ratio(workload, task["policy"], task["memory_mb"], task["ttl_min"], task["seed"])
    return cold_start_ratio(workload, task["policy"], task["memory_mb"], task["slots"], task["ttl_min"], task["seed"])
