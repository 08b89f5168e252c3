"""What the simulation report reads: the memory grid, the spread over seeds, and the winners.

- Memory grid: the default sizes are fractions of the workload's *requested-model memory* (the
  summed `size_mb` of the models that receive at least one request), so the grid means the same
  on any workload: at 1.0 every requested model fits at once.
- Spread over seeds: per policy and memory size, mean / min / max / std of the hit ratio and the
  p99 latency over the seeds (seeds change tie-breaks and the random policy).
- Winner per memory size: the policy with the highest mean hit ratio, if its lowest hit ratio
  over the seeds is above the runner-up's highest (the seed ranges do not overlap) and the
  margin over the runner-up exceeds two binomial standard errors of a hit ratio measured on
  that many requests (2 sqrt(p (1 - p) / n): seeds do not redraw the workload, so a margin
  smaller than that would not survive another draw of the same workload; requests are not
  independent, so this noise floor is a lower bound); otherwise "no meaningful winner". Runs flagged `overloaded` by the
  simulator (the loads cannot keep up: latency grows without bound) are counted per size.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import polars as pl

from ..errors import ManyModelsError
from ..logs import log
from ..workload.layout import require_workload

OFFLINE_POLICIES = ("belady", "cremebrulee-oracle")
# mechanism settings a sweep may vary beside policy, memory and seed (columns of sweep.parquet), with
# their value when off (the CLI's sweep compares each swept setting as its own configuration)
SWEEP_DIMENSIONS = {"interference": 0.0, "load_interference": 0.0, "shared_weights": False, "adaptive_variants": False,
                    "host_overhead_mb": 0.0, "hosting": "multi", "learned_cache": "off"}


def requested_model_mb(workload_dir: Path) -> float:
    """Summed size of the models that receive at least one request (MB)."""
    directory = require_workload(workload_dir)
    models = pl.read_parquet(directory / "models.parquet")
    if "requests" in models.columns:
        requested = models.filter(pl.col("requests") > 0)
    else:
        ids = pl.read_parquet(directory / "requests.parquet", columns=["model_id"])["model_id"].unique()
        requested = models.filter(pl.col("model_id").is_in(ids.implode()))
    return float(requested["size_mb"].sum())


def memory_grid_mb(workload_dir: Path, fractions: list[float]) -> list[float]:
    """Memory sizes (whole MB) = fractions x the workload's requested-model memory."""
    if not fractions or any(f <= 0 for f in fractions):
        raise ManyModelsError(f"--memory-fractions: positive numbers needed (got {fractions})")
    total = requested_model_mb(workload_dir)
    if total <= 0:
        raise ManyModelsError(f"{workload_dir}: no model receives a request; use --memory-mb")
    sizes = sorted({float(max(1, round(f * total))) for f in fractions})
    log.info("memory grid: fractions %s of %.0f MB requested-model memory = %s MB", fractions, total, sizes)
    return sizes


def spread_table(table: pl.DataFrame) -> pl.DataFrame:
    """Per policy and memory size: the hit ratio and p99 latency over seeds, and overloaded runs."""
    overloaded = ([pl.col("overloaded").cast(pl.Int64).sum().alias("overloaded_runs")]
                  if "overloaded" in table.columns else [pl.lit(None, pl.Int64).alias("overloaded_runs")])
    return table.group_by("policy", "memory_mb").agg(
        pl.len().alias("seeds"), pl.col("requests").first().alias("requests"),
        pl.col("hit_ratio").mean().alias("hit_ratio_mean"), pl.col("hit_ratio").min().alias("hit_ratio_min"),
        pl.col("hit_ratio").max().alias("hit_ratio_max"), pl.col("hit_ratio").std(ddof=0).alias("hit_ratio_std"),
        pl.col("latency_p99_ms").mean().alias("latency_p99_ms_mean"), pl.col("latency_p99_ms").min().alias("latency_p99_ms_min"),
        pl.col("latency_p99_ms").max().alias("latency_p99_ms_max"),
        pl.col("cold_starts").mean().alias("cold_starts_mean"), pl.col("rejected_ratio").mean().alias("rejected_ratio_mean"),
        *overloaded,
    ).with_columns(pl.col("policy").is_in(list(OFFLINE_POLICIES)).alias("offline")).sort("memory_mb", "policy")


def winners(spread: pl.DataFrame, online_only: bool = True) -> pl.DataFrame:
    """Per memory size: best and runner-up by mean hit ratio, margin, seed spread, meaningful or not."""
    data = spread.filter(~pl.col("offline")) if online_only else spread
    rows = []
    for memory in sorted(data["memory_mb"].unique().to_list()):
        part = data.filter(pl.col("memory_mb") == memory).sort(["hit_ratio_mean", "policy"], descending=[True, False])
        best = part.row(0, named=True)
        second = part.row(1, named=True) if part.height > 1 else None
        margin = best["hit_ratio_mean"] - second["hit_ratio_mean"] if second else None
        spread_ = max(best["hit_ratio_max"] - best["hit_ratio_min"], second["hit_ratio_max"] - second["hit_ratio_min"]) if second else None
        p, n = best["hit_ratio_mean"], max(int(best["requests"] or 0), 1)
        noise = 2.0 * math.sqrt(max(p * (1.0 - p), 0.0) / n)
        meaningful = bool(second is not None and margin > noise and best["hit_ratio_min"] > second["hit_ratio_max"])
        overloaded = part["overloaded_runs"]
        rows.append({
            "memory_mb": memory, "online_only": online_only, "best_policy": best["policy"],
            "best_hit_ratio": best["hit_ratio_mean"], "runner_up_policy": second["policy"] if second else None,
            "runner_up_hit_ratio": second["hit_ratio_mean"] if second else None, "margin": margin,
            "seed_spread": spread_, "noise_2se": noise, "meaningful": meaningful,
            "winner": best["policy"] if meaningful else "no meaningful winner",
            "overloaded_runs": int(overloaded.sum()) if overloaded.is_not_null().any() else None,
            "runs": int(part["seeds"].sum()),
        })
    return pl.DataFrame(rows, schema={
        "memory_mb": pl.Float64, "online_only": pl.Boolean, "best_policy": pl.String, "best_hit_ratio": pl.Float64,
        "runner_up_policy": pl.String, "runner_up_hit_ratio": pl.Float64, "margin": pl.Float64, "seed_spread": pl.Float64, "noise_2se": pl.Float64,
        "meaningful": pl.Boolean, "winner": pl.String, "overloaded_runs": pl.Int64, "runs": pl.Int64})


def write_summary(table: pl.DataFrame, workload_dir: Path, out: Path, memory_fractions: list[float] | None = None) -> dict:
    """Write spread.parquet, winners.parquet and grid.json under `out`; return the flat DVC metrics."""
    out = Path(out)
    spread = spread_table(table)
    best = pl.concat([winners(spread, True), winners(spread, False)])
    spread.write_parquet(out / "spread.parquet")
    best.write_parquet(out / "winners.parquet")
    requested = requested_model_mb(workload_dir)
    grid = {"requested_model_mb": requested, "memory_mb": sorted(table["memory_mb"].unique().to_list()),
            "memory_fractions": memory_fractions,
            "fraction_of_requested": {f"{m:g}": m / requested if requested else None for m in table["memory_mb"].unique().sort()}}
    (out / "grid.json").write_text(json.dumps(grid, indent=2) + "\n")
    log.info("wrote %s, %s, %s", out / "spread.parquet", out / "winners.parquet", out / "grid.json")
    online = best.filter(pl.col("online_only"))
    return {
        "workload": Path(workload_dir).name,
        "source_trace": table["source_trace"][0] if "source_trace" in table.columns else None,
        "runs": table.height,
        "policies": table["policy"].n_unique(),
        "memory_sizes": table["memory_mb"].n_unique(),
        "seeds": table["seed"].n_unique(),
        "requested_model_mb": requested,
        "memory_sizes_with_a_meaningful_online_winner": int(online["meaningful"].sum()),
        "overloaded_runs": int(table["overloaded"].cast(pl.Int64).sum()) if "overloaded" in table.columns else None,
    }
