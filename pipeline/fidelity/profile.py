"""Minute-resolution statistics of a request stream, per model (the figures fidelity compares).

A request stream (t_ms, model_id) over a window of `minutes` minutes is reduced to its active
minutes (model, minute, requests), as the trace itself records invocations. From those:

- requests per model, and idle fraction = minutes of the window with zero requests / window minutes
  (every model of the workload, models with no request included: idle fraction 1);
- IAT CV of a model = std / mean (population std) of the gaps, in minutes, between its consecutive
  active minutes, for models with at least two gaps (the characterization's definition);
- idle period = a run of zero minutes between two active minutes (runs at the window's edges are
  censored and left out); busy period = a run of consecutive active minutes; both pooled over models,
  and the median idle period per model (models with at least one idle period);
- hourly profile = requests in each hour of the window / mean requests per hour (a last, partial
  hour is scaled to a full hour's rate);
- top shares = share of all requests made to the most requested 0.1 / 1 / 10% of the models
  (ceil(fraction x models), at least one; every model counted, as the characterization counts every
  trace function).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import polars as pl

MINUTE_MS = 60_000
TOP_FRACTIONS = {"top_0_1pct_share": 0.001, "top_1pct_share": 0.01, "top_10pct_share": 0.10}


@dataclass(frozen=True)
class ActiveMinutes:
    """The non-zero minutes of a request stream, sorted by (model, minute)."""

    model_id: np.ndarray  # int64
    minute: np.ndarray  # int64, minutes from the window's start
    requests: np.ndarray  # int64, requests in that minute
    n_models: int
    minutes: int  # window length


def active_minutes(t_ms: np.ndarray, model_id: np.ndarray, n_models: int, minutes: int) -> ActiveMinutes:
    """Count requests per (model, minute of the window)."""
    counts = (pl.DataFrame({"model_id": np.asarray(model_id, dtype=np.int64),
                            "minute": np.asarray(t_ms, dtype=np.int64) // MINUTE_MS})
              .group_by("model_id", "minute").len().sort("model_id", "minute"))
    return ActiveMinutes(counts["model_id"].to_numpy(), counts["minute"].to_numpy(),
                         counts["len"].to_numpy().astype(np.int64), int(n_models), int(minutes))


@dataclass(frozen=True)
class Profile:
    per_model: pl.DataFrame  # model_id, requests, active_minutes, idle_fraction, gaps, iat_cv, median_idle_period_min
    idle_periods_min: np.ndarray  # pooled
    busy_periods_min: np.ndarray  # pooled
    hourly: np.ndarray  # requests per hour / mean hour
    top_shares: dict[str, float | None]


def _runs(active: ActiveMinutes) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(gap model, gap minutes) between consecutive active minutes of one model, and
    (busy model, busy length) of every run of consecutive active minutes."""
    m, t = active.model_id, active.minute
    same = m[1:] == m[:-1]
    gap = np.diff(t)
    gap_model, gap_min = m[1:][same], gap[same]
    # a busy run starts at an active minute that does not directly follow one of the same model
    starts = np.ones(len(m), dtype=bool)
    starts[1:] = ~(same & (gap == 1))
    run_id = np.cumsum(starts) - 1
    busy_len = np.bincount(run_id, minlength=int(starts.sum())) if len(m) else np.zeros(0, dtype=np.int64)
    return gap_model, gap_min, m[starts], busy_len.astype(np.int64)


def top_shares(requests_per_model: np.ndarray) -> dict[str, float | None]:
    ordered = np.sort(np.asarray(requests_per_model))[::-1]
    total = ordered.sum()
    if len(ordered) == 0 or total == 0:
        return dict.fromkeys(TOP_FRACTIONS)
    return {name: float(ordered[:max(1, math.ceil(f * len(ordered)))].sum() / total)
            for name, f in TOP_FRACTIONS.items()}


def hourly_profile(active: ActiveMinutes) -> np.ndarray:
    """Requests per hour of the window / mean requests per hour (a partial last hour scaled up)."""
    hours = max(1, math.ceil(active.minutes / 60))
    per_hour = np.bincount(active.minute // 60, weights=active.requests, minlength=hours)[:hours].astype(float)
    hour_minutes = np.minimum(60, active.minutes - 60 * np.arange(hours)).astype(float)
    rate = per_hour / hour_minutes
    mean = per_hour.sum() / active.minutes
    return rate / mean if mean > 0 else np.zeros(hours)


def profile(active: ActiveMinutes) -> Profile:
    n = active.n_models
    requests = np.bincount(active.model_id, weights=active.requests, minlength=n).astype(np.int64)
    active_count = np.bincount(active.model_id, minlength=n).astype(np.int64)
    gap_model, gap_min, _busy_model, busy_len = _runs(active)
    gaps = np.bincount(gap_model, minlength=n)
    gap_sum = np.bincount(gap_model, weights=gap_min, minlength=n)
    gap_sumsq = np.bincount(gap_model, weights=gap_min.astype(float) ** 2, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = gap_sum / gaps
        cv = np.sqrt(np.clip(gap_sumsq / gaps - mean ** 2, 0, None)) / mean
    cv = np.where(gaps >= 2, cv, np.nan)
    idle = gap_min > 1
    idle_model, idle_len = gap_model[idle], gap_min[idle] - 1
    median_idle = (pl.DataFrame({"model_id": idle_model, "length": idle_len})
                   .group_by("model_id").agg(pl.col("length").median().alias("median_idle_period_min")))
    per_model = pl.DataFrame({
        "model_id": np.arange(n, dtype=np.int64),
        "requests": requests,
        "active_minutes": active_count,
        "idle_fraction": 1.0 - active_count / active.minutes,
        "gaps": gaps.astype(np.int64),
        "iat_cv": cv,
    }).with_columns(pl.col("iat_cv").fill_nan(None)).join(median_idle, on="model_id", how="left").sort("model_id")
    return Profile(per_model, idle_len.astype(np.int64), busy_len, hourly_profile(active), top_shares(requests))
