"""The cache outcome of a workload, through the simulator's API: no-latency hit ratios at memory
points set by the reference, and the cold-start ratio with latency.

Memory points: fraction x the reference's requested-model memory (sum of size_mb over the models
with at least one request). A candidate with a different number of requested models gets that
memory scaled by (candidate requested models / reference requested models), so that both sides hold
the same share of their requested models on average (with equal counts, exactly the fractions of
the reference's memory)."""

from __future__ import annotations

import numpy as np

from ..simulate.core import Workload, simulate
from ..simulate.run import summarize


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
