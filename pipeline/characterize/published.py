"""The tables users compare with *Serverless in the Wild* (ATC'20) and the released trace's notebook.

- functions per app (share of apps, share of invocations, cumulative);
- trigger shares of functions and of invocations;
- average daily invocations per function and per app (invocations over the window / days, for
  functions and apps with at least one invocation, as the released trace's figure 5a), with the
  trace's CDF at the points read from that figure (DESIGN 2c) beside them;
- per-app inter-arrival CV at minute resolution. Estimator: an app's timeline is the set of
  minutes in which any of its functions fired; gaps are the distances in minutes between
  consecutive such minutes over the whole window (midnight included); CV = population standard
  deviation / mean of the gaps, for apps with at least 2 gaps. Minute resolution bounds it: a
  measured gap g differs from the true gap between the last arrival of one minute and the first
  of the next by less than 1 minute (relative error < 1/g), and arrivals within one minute are
  merged, so an app active in every minute has CV 0 whatever its true burstiness: apps whose
  mean gap is under `RESOLUTION_LIMITED_GAP_MIN` minutes are flagged `resolution_limited`;
- duration (per function: minimum, count-weighted average, maximum over the window) and memory
  (per app: 1st percentile, average, maximum of the allocated-memory samples) percentile tables;
- invocations per hour relative to the mean hour over the whole window.
"""

from __future__ import annotations

import numpy as np
import polars as pl

RESOLUTION_LIMITED_GAP_MIN = 2.0
QUANTILES = (0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0)

# DESIGN 2c: points read from the released trace's analysis notebook (AzurePublicDataset,
# analysis/AzureFunctionsDataset2019-Trace_Analysis.md, figure 5a; reading error about +-0.02).
RELEASED_DAILY_INVOCATIONS_CDF = {
    "function": {0.3: 0.17, 0.7: 0.23, 1.5: 0.39, 3: 0.46, 5: 0.505, 15: 0.59, 50: 0.685, 500: 0.865,
                 1000: 0.89, 3000: 0.945, 30000: 0.983},
    "app": {0.7: 0.13, 1.5: 0.24, 3: 0.30, 15: 0.40, 50: 0.49, 150: 0.59, 500: 0.735, 1000: 0.786,
            3000: 0.874, 30000: 0.956},
}
# Same notebook, figure 6 (per-app IAT CV at full timestamp resolution): share of apps with CV <= x.
RELEASED_APP_IAT_CV_CDF = {0.0: 0.20, 1.0: 0.60, 2.0: 0.73, 4.0: 0.86, 10.0: 0.95}
REFERENCE_SOURCE = "read from the released trace's analysis notebook (figures 5a and 6), +-0.02"
# DESIGN 2b: Serverless in the Wild (ATC'20), on the full Azure data (not the released sample).
ATC20_TRIGGER_SHARES = {"http": (0.55, 0.36), "queue": (0.152, 0.335), "event": (0.022, 0.247), "timer": (0.156, 0.020)}
ATC20_FUNCTIONS_PER_APP_CDF = {1: 0.54, 10: 0.95}
ATC20_SOURCE = "Serverless in the Wild (ATC'20), full Azure data"


def functions_per_app(apps: pl.DataFrame) -> pl.DataFrame:
    """apps: one row per app with `functions` and `invocations`."""
    total_apps, total_inv = apps.height, max(int(apps["invocations"].sum()), 1)
    return apps.group_by("functions").agg(pl.len().alias("apps"), pl.col("invocations").sum()).sort("functions").with_columns(
        (pl.col("apps") / total_apps).alias("app_share"),
        (pl.col("apps").cum_sum() / total_apps).alias("app_cdf"),
        (pl.col("invocations") / total_inv).alias("invocation_share"),
        (pl.col("invocations").cum_sum() / total_inv).alias("invocation_cdf"))


def trigger_shares(pooled: pl.DataFrame) -> pl.DataFrame:
    total_inv = max(int(pooled["invocations"].sum()), 1)
    return pooled.group_by("trigger").agg(pl.len().alias("functions"), pl.col("invocations").sum()).with_columns(
        (pl.col("functions") / pooled.height).alias("function_share"),
        (pl.col("invocations") / total_inv).alias("invocation_share")).sort("functions", "trigger", descending=[True, False])


def daily_invocations(pooled: pl.DataFrame, apps: pl.DataFrame, n_days: int) -> pl.DataFrame:
    """One row per function and per app with at least one invocation: average daily invocations."""
    functions = pooled.filter(pl.col("invocations") > 0).select(
        pl.lit("function").alias("level"), pl.col("invocations"), (pl.col("invocations") / n_days).alias("avg_daily_invocations"))
    per_app = apps.filter(pl.col("invocations") > 0).select(
        pl.lit("app").alias("level"), pl.col("invocations"), (pl.col("invocations") / n_days).alias("avg_daily_invocations"))
    return pl.concat([functions, per_app]).sort("level", "avg_daily_invocations")


def cdf_at(values: np.ndarray, points: list[float]) -> list[float | None]:
    """Share of `values` <= each point (the empirical CDF), None when there are no values."""
    values = np.sort(np.asarray(values, dtype=float))
    if len(values) == 0:
        return [None] * len(points)
    return (np.searchsorted(values, np.asarray(points, dtype=float), side="right") / len(values)).tolist()


def daily_invocations_reference(daily: pl.DataFrame) -> pl.DataFrame:
    rows = []
    for level, points in RELEASED_DAILY_INVOCATIONS_CDF.items():
        xs = list(points)
        trace = cdf_at(daily.filter(pl.col("level") == level)["avg_daily_invocations"].to_numpy(), xs)
        rows += [{"level": level, "avg_daily_invocations": float(x), "released_trace_share": points[x],
                  "this_trace_share": t} for x, t in zip(xs, trace)]
    return pl.DataFrame(rows)


def app_iat(per_app: pl.DataFrame, apps: pl.DataFrame) -> pl.DataFrame:
    """Per app: gaps at minute resolution, mean gap, CV (None below 2 gaps), resolution_limited."""
    mean = pl.col("gap_sum") / pl.col("gaps")
    return apps.select("app_id", "functions", "invocations").join(per_app, on="app_id", how="left").with_columns(
        pl.col("gaps").fill_null(0), pl.col("active_minutes").fill_null(0),
        mean.alias("iat_mean_min"),
        pl.when(pl.col("gaps") >= 2).then(
            (pl.col("gap_sumsq") / pl.col("gaps") - mean ** 2).clip(lower_bound=0).sqrt() / mean).alias("iat_cv"),
    ).with_columns(
        (pl.col("iat_cv").is_not_null() & (pl.col("iat_mean_min") < RESOLUTION_LIMITED_GAP_MIN)).alias("resolution_limited"),
    ).drop("gap_sum", "gap_sumsq").sort("app_id")


def app_iat_reference(table: pl.DataFrame) -> pl.DataFrame:
    cv = table["iat_cv"].drop_nulls().to_numpy()
    xs = list(RELEASED_APP_IAT_CV_CDF)
    return pl.DataFrame({"iat_cv": [float(x) for x in xs], "released_trace_share": [RELEASED_APP_IAT_CV_CDF[x] for x in xs],
                         "this_trace_share": cdf_at(cv, xs)}, schema={"iat_cv": pl.Float64, "released_trace_share": pl.Float64,
                                                                     "this_trace_share": pl.Float64})


def resource_percentiles(functions: pl.DataFrame, apps: pl.DataFrame) -> pl.DataFrame:
    """Quantiles over functions (durations, ms) and apps (memory, MB) of each statistic column."""
    columns = [("duration_ms", "minimum", functions, "min_duration_ms"),
               ("duration_ms", "average", functions, "avg_duration_ms"),
               ("duration_ms", "maximum", functions, "max_duration_ms"),
               ("memory_mb", "minimum (1st percentile)", apps, "p1_memory_mb"),
               ("memory_mb", "average", apps, "avg_memory_mb"),
               ("memory_mb", "maximum", apps, "max_memory_mb")]
    rows = []
    for kind, statistic, table, column in columns:
        values = table[column].drop_nulls().to_numpy().astype(float)
        for q in QUANTILES:
            rows.append({"kind": kind, "statistic": statistic, "column": column, "quantile": q, "n": len(values),
                         "value": float(np.quantile(values, q)) if len(values) else None})
    return pl.DataFrame(rows, schema={"kind": pl.String, "statistic": pl.String, "column": pl.String,
                                      "quantile": pl.Float64, "n": pl.Int64, "value": pl.Float64})


def hourly_relative(diurnal: pl.DataFrame, days: list[int]) -> pl.DataFrame:
    """Invocations in every hour of the window (zeros included) / the mean over all its hours."""
    grid = pl.DataFrame({"day": np.repeat(days, 24).astype(np.int32), "hour_of_day": np.tile(np.arange(24), len(days)).astype(np.int32)})
    per_hour = diurnal.group_by("day", ((pl.col("minute") - 1) // 60).cast(pl.Int32).alias("hour_of_day")).agg(
        pl.col("invocations").sum())
    table = grid.join(per_hour, on=["day", "hour_of_day"], how="left").with_columns(
        pl.col("invocations").fill_null(0)).sort("day", "hour_of_day").with_columns(
        ((pl.col("day") - min(days)) * 24 + pl.col("hour_of_day")).alias("hour"))
    mean = table["invocations"].mean() or 0.0
    return table.with_columns((pl.col("invocations") / mean if mean > 0 else pl.lit(None, pl.Float64)).alias("relative_to_mean"))

