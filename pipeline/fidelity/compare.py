"""Two samples side by side: two-sample Kolmogorov-Smirnov distance and quantiles."""

from __future__ import annotations

import numpy as np
import polars as pl

QUANTILES = {"p10": 0.10, "p50": 0.50, "p90": 0.90, "p99": 0.99}


def ks_distance(a: np.ndarray, b: np.ndarray) -> float | None:
    """sup |F_a(x) - F_b(x)| over x (the two-sample KS statistic D); None when a sample is empty."""
    a = np.sort(np.asarray(a, dtype=float))
    b = np.sort(np.asarray(b, dtype=float))
    if len(a) == 0 or len(b) == 0:
        return None
    points = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, points, side="right") / len(a)
    cdf_b = np.searchsorted(b, points, side="right") / len(b)
    return float(np.max(np.abs(cdf_a - cdf_b)))


def quantiles(values: np.ndarray) -> dict[str, float | None]:
    values = np.asarray(values, dtype=float)
    if len(values) == 0:
        return dict.fromkeys(QUANTILES)
    return {name: float(v) for name, v in zip(QUANTILES, np.quantile(values, list(QUANTILES.values())), strict=True)}


def compare_samples(metric: str, candidate: np.ndarray, reference: np.ndarray) -> dict:
    """One row of the summary table: sample sizes, KS D, and the quantiles of both sides."""
    cq, rq = quantiles(candidate), quantiles(reference)
    return {"metric": metric, "candidate_n": len(candidate), "reference_n": len(reference),
            "ks_d": ks_distance(candidate, reference),
            **{f"candidate_{k}": v for k, v in cq.items()}, **{f"reference_{k}": v for k, v in rq.items()}}


SUMMARY_SCHEMA = {"metric": pl.String, "candidate_n": pl.Int64, "reference_n": pl.Int64, "ks_d": pl.Float64,
                  **{f"{side}_{k}": pl.Float64 for side in ("candidate", "reference") for k in QUANTILES}}


def summary_table(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=SUMMARY_SCHEMA)


def hourly_table(candidate: np.ndarray, reference: np.ndarray) -> pl.DataFrame:
    """Hour of the window, both profiles (share of the mean hour) and their difference, over the
    hours both windows have."""
    hours = min(len(candidate), len(reference))
    return pl.DataFrame({"hour": np.arange(hours, dtype=np.int64), "candidate": candidate[:hours],
                         "reference": reference[:hours]}).with_columns(
        (pl.col("candidate") - pl.col("reference")).alias("difference"))
