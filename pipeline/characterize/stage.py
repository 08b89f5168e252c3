"""`manymodels characterize`: every table and figure the report and the workload stage read.

Definitions (DESIGN.md 1):
- idle_fraction(f, d) = minutes of day d with zero invocations of f / 1440, for every row of
  day d's invocations file (rows with no invocation at all included: idle fraction 1);
- pooled idle fraction of f = zero minutes / (1440 x days in the trace), over the whole window
  (a day on which f is absent from the file counts as idle);
- idle_half_share = share of functions whose idle fraction exceeds 0.5; "_active" variants leave
  out functions with no invocation in the window (the day, or the whole trace when pooled);
- inter-arrival times at minute resolution: gaps, in minutes, between consecutive minutes with at
  least one invocation (within a minute the trace has no timing); CV = std / mean of a function's
  gaps, for functions with at least two gaps;
- idle period: a run of zero minutes between two active minutes (runs at the window's edges are
  censored and left out); busy period: a run of consecutive active minutes;
- the headline at coarser resolutions and under a keep-alive: see `idleness.py`; the tables
  compared with Serverless in the Wild and the released trace's notebook: see `published.py`.

Outputs: Parquet tables under `out`, `out/summary.json` (every figure, nested) and a small flat
metrics JSON (the headline keys `dvc metrics show` prints).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import polars as pl

from ..cluster import map_on_cluster
from ..db import connect_read_only, frame, meta
from ..errors import ManyModelsError
from ..files import atomic_output_dir, portable_path, write_text_atomic
from ..logs import log
from ..trace.schema import MINUTES_PER_DAY, TRIGGERS
from . import days as day_partials
from . import published
from .fits import popularity_fits
from .idleness import check_resolutions, idleness_tables, resident_minutes

TOP_SHARES = {"top_0_1pct": 0.001, "top_1pct": 0.01, "top_10pct": 0.10}


def _share(mask: pl.Series) -> float | None:
    return float(mask.mean()) if len(mask) else None


def _headline_rows(frame_: pl.DataFrame, scope: str, idle_col: str, active_col: str) -> list[dict]:
    rows = []
    groups = [("all", frame_)] + [(t, frame_.filter(pl.col("trigger") == t)) for t in TRIGGERS]
    for trigger, group in groups:
        for population, members in (("all", group), ("active", group.filter(pl.col(active_col) > 0))):
            rows.append({
                "scope": scope, "trigger": trigger, "population": population, "functions": members.height,
                "idle_half_functions": int((members[idle_col] > 0.5).sum()),
                "idle_half_share": _share(members[idle_col] > 0.5),
                "median_idle_fraction": float(members[idle_col].median()) if members.height else None,
            })
    return rows


def _top_share(sorted_desc: np.ndarray, fraction: float) -> float | None:
    total = sorted_desc.sum()
    if len(sorted_desc) == 0 or total == 0:
        return None
    k = max(1, math.ceil(fraction * len(sorted_desc)))
    return float(sorted_desc[:k].sum() / total)


def characterize(db: Path, out: Path, metrics_path: Path, scheduler: str | None = None,
                 workers: int | None = None, headline_day: int = 1,
                 resolutions_min: tuple[int, ...] | list[int] = (1, 5, 10, 60), keep_alive_min: int = 10) -> dict:
    """Write the tables, summary.json and the flat metrics; return the full summary."""
    db, out = Path(db), Path(out)
    resolutions_min = check_resolutions(list(resolutions_min) + [1], keep_alive_min)
    with connect_read_only(db) as con:
        info = meta(con)
        days = json.loads(info["days"])
        functions = frame(con, "SELECT function_id, owner, app, function, trigger FROM functions ORDER BY function_id")
        function_days = frame(con, "SELECT function_id, day::INTEGER AS day, trigger, invocations, active_minutes "
                                   "FROM function_days ORDER BY day, function_id")
        durations = frame(con, """
            SELECT function_id, min(Minimum) AS min_duration_ms,
                   sum(Average * Count) / nullif(sum(Count), 0) AS avg_duration_ms,
                   avg(percentile_Average_50) AS p50_duration_ms, avg(percentile_Average_99) AS p99_duration_ms,
                   max(Maximum) AS max_duration_ms, sum(Count)::BIGINT AS duration_count
            FROM durations GROUP BY function_id""")
        memory = frame(con, """
            SELECT owner, app, min(AverageAllocatedMb_pct1) AS p1_memory_mb, avg(AverageAllocatedMb) AS avg_memory_mb,
                   avg(AverageAllocatedMb_pct50) AS p50_memory_mb, max(AverageAllocatedMb_pct100) AS max_memory_mb
            FROM memory GROUP BY owner, app""")
        app_ids = frame(con, "SELECT app_id, owner, app FROM apps")
    source = info["source"]
    n_days = len(days)
    window_minutes = n_days * MINUTES_PER_DAY
    if functions.height == 0:
        raise ManyModelsError(f"{db}: the functions table is empty")
    log.info("read %s (%s): %d functions, %d function-days, days %s", db, source, functions.height,
             function_days.height, days)

    if headline_day not in days:
        raise ManyModelsError(f"--headline-day {headline_day}: {db} holds days {', '.join(map(str, days))}")
    partials = map_on_cluster(day_partials.day_partial, days, "characterize days", scheduler=scheduler,
                              workers=workers, db=str(db), resolutions_min=resolutions_min,
                              keep_alive_min=int(keep_alive_min))
    combined = day_partials.combine([day_partials.normalized(p) for p in partials], days)

    # --- idle fractions and the headline -------------------------------------------------------
    idle_days = function_days.with_columns(
        (1.0 - pl.col("active_minutes") / MINUTES_PER_DAY).alias("idle_fraction"))
    totals = function_days.group_by("function_id").agg(
        pl.col("invocations").sum(), pl.col("active_minutes").sum(), pl.len().alias("days_present"))
    pooled = functions.join(totals, on="function_id", how="left").with_columns(
        pl.col("invocations").fill_null(0), pl.col("active_minutes").fill_null(0),
        pl.col("days_present").fill_null(0),
    ).with_columns((1.0 - pl.col("active_minutes") / window_minutes).alias("idle_fraction_pooled"))
    headline = []
    for day in days:
        headline += _headline_rows(idle_days.filter(pl.col("day") == day), f"d{day:02d}", "idle_fraction", "invocations")
    headline += _headline_rows(pooled, "pooled", "idle_fraction_pooled", "invocations")
    headline = pl.DataFrame(headline)

    def headline_value(scope: str, population: str, trigger: str = "all") -> float | None:
        row = headline.filter((pl.col("scope") == scope) & (pl.col("population") == population)
                              & (pl.col("trigger") == trigger))
        return row["idle_half_share"][0] if row.height else None

    # --- popularity -----------------------------------------------------------------------------
    popularity = pooled.select("function_id", "trigger", "owner", "app", "invocations", "active_minutes",
                               "days_present", "idle_fraction_pooled").sort(
        ["invocations", "function_id"], descending=[True, False]).with_columns(
        pl.int_range(1, pl.len() + 1).alias("rank"),
        (pl.col("invocations") / n_days).alias("invocations_per_day"),
    )
    grand_total = int(popularity["invocations"].sum())
    popularity = popularity.with_columns(
        (pl.col("invocations") / max(grand_total, 1)).alias("share"),
        (pl.col("invocations").cum_sum() / max(grand_total, 1)).alias("cumulative_share"))
    sorted_invocations = popularity["invocations"].to_numpy()
    fits = popularity_fits(sorted_invocations.astype(float))
    apps = popularity.group_by("owner", "app").agg(pl.col("invocations").sum(), pl.len().alias("functions")).join(
        app_ids, on=["owner", "app"], how="left").sort(["invocations", "owner", "app"], descending=[True, False, False])

    # --- arrivals, idle and busy periods --------------------------------------------------------
    per_function = combined["per_function"].with_columns(
        (pl.col("gap_sum") / pl.col("gaps")).alias("iat_mean_min"),
    ).with_columns(
        pl.when(pl.col("gaps") >= 2).then(
            (pl.col("gap_sumsq") / pl.col("gaps") - pl.col("iat_mean_min") ** 2).clip(lower_bound=0).sqrt()
            / pl.col("iat_mean_min")).alias("iat_cv"))
    arrivals = popularity.select("function_id", "trigger", "invocations", "invocations_per_day").join(
        per_function.select("function_id", "gaps", "iat_mean_min", "iat_cv", "max_idle_min"), on="function_id", how="left"
    ).with_columns(
        (pl.col("invocations") <= n_days * 24).alias("at_most_once_per_hour"),
        (pl.col("invocations") <= n_days * MINUTES_PER_DAY).alias("at_most_once_per_minute"),
    ).sort("function_id")
    runs = pl.concat([
        combined["idle"].with_columns(pl.lit("idle").alias("kind")),
        combined["busy"].with_columns(pl.lit("busy").alias("kind")),
    ]).select("kind", "length_min", "periods")
    diurnal = combined["diurnal"]
    diurnal_minute = diurnal.group_by("minute").agg(pl.col("invocations").sum()).sort("minute")

    # --- resources --------------------------------------------------------------------------------
    resources_functions = popularity.select("function_id", "trigger", "owner", "app", "invocations").join(
        durations, on="function_id", how="left").sort("function_id")
    resources_apps = apps.join(memory, on=["owner", "app"], how="left").sort("owner", "app")

    def spearman(a: pl.DataFrame, x: str, y: str) -> float | None:
        both = a.select(x, y).drop_nulls()
        if both.height < 3:
            return None
        value = both.select(pl.corr(x, y, method="spearman")).item()
        return None if value is None or math.isnan(value) else float(value)

    # --- resolutions, keep-alive, and the figures compared with the published ones ----------------
    per_day_resident, pooled_resident = resident_minutes(
        combined["stats"], function_days, functions, keep_alive_min, max(days))
    idle_days_all, idle_pooled, idle_resolution = idleness_tables(
        idle_days, pooled.drop("owner", "app", "function"), combined["bins"], per_day_resident, pooled_resident,
        resolutions_min, keep_alive_min, n_days)
    functions_per_app = published.functions_per_app(apps)
    triggers = published.trigger_shares(pooled)
    daily = published.daily_invocations(pooled, apps, n_days)
    daily_reference = published.daily_invocations_reference(daily)
    app_iat = published.app_iat(combined["per_app"], apps)
    app_iat_reference = published.app_iat_reference(app_iat)
    resource_quantiles = published.resource_percentiles(resources_functions, resources_apps)
    hourly = published.hourly_relative(diurnal, days)

    def idle_share(scope: str, population: str, measure: str, resolution: int | None = None) -> float | None:
        row = idle_resolution.filter(
            (pl.col("scope") == scope) & (pl.col("population") == population) & (pl.col("trigger") == "all")
            & (pl.col("measure") == measure)
            & (pl.col("resolution_min") == resolution if resolution is not None else pl.lit(True)))
        return row["share"][0] if row.height else None

    # --- write --------------------------------------------------------------------------------
    tables = {
        "headline": headline, "idle_fractions": idle_days_all, "idle_pooled": idle_pooled,
        "idle_resolution": idle_resolution,
        "popularity": popularity, "apps": apps,
        "arrivals": arrivals, "run_lengths": runs, "diurnal": diurnal,
        "resources_functions": resources_functions, "resources_apps": resources_apps,
        "functions_per_app": functions_per_app, "triggers": triggers, "daily_invocations": daily,
        "daily_invocations_reference": daily_reference, "app_iat": app_iat, "app_iat_reference": app_iat_reference,
        "resource_percentiles": resource_quantiles, "hourly": hourly,
    }

    iat = arrivals["iat_cv"].drop_nulls()
    app_cv = app_iat["iat_cv"].drop_nulls()
    hd = f"d{headline_day:02d}"
    idle_lengths = combined["idle"]
    app_totals = apps["invocations"].to_numpy()
    metrics = {
        "source": source,
        "synthetic": source == "synthetic",
        "db": portable_path(db),
        "days": n_days,
        "day_list": days,
        "functions": functions.height,
        "functions_active": int((pooled["invocations"] > 0).sum()),
        "apps": apps.height,
        "invocations": grand_total,
        "headline_day": f"d{headline_day:02d}",
        "idle_half_share_d01": headline_value(f"d{headline_day:02d}", "all"),
        "idle_half_share_d01_active": headline_value(f"d{headline_day:02d}", "active"),
        "idle_half_share_pooled": headline_value("pooled", "all"),
        "idle_half_share_pooled_active": headline_value("pooled", "active"),
        "idle_half_share_by_day": {f"d{d:02d}": headline_value(f"d{d:02d}", "all") for d in days},
        "idle_half_share_by_day_active": {f"d{d:02d}": headline_value(f"d{d:02d}", "active") for d in days},
        "by_trigger": headline.filter(pl.col("scope").is_in([f"d{headline_day:02d}", "pooled"])).to_dicts(),
        "trigger_mix": triggers.sort("trigger").to_dicts(),
        "resolutions_min": list(resolutions_min),
        "keep_alive_min": int(keep_alive_min),
        "idle_half_share_by_resolution": {
            f"{scope}_{population}": {f"{k}min": idle_share(scope, population, "idle_bins", k) for k in resolutions_min}
            for scope in (hd, "pooled") for population in ("all", "active")},
        "resident_under_half_share": {
            f"{scope}_{population}": idle_share(scope, population, "keepalive_resident")
            for scope in (hd, "pooled") for population in ("all", "active")},
        "apps_and_triggers": {
            "apps_one_function_share": _share(apps["functions"] == 1),
            "apps_at_most_10_functions_share": _share(apps["functions"] <= 10),
            "apps_over_100_functions_share": _share(apps["functions"] > 100),
            "invocations_from_apps_at_most_3_functions_share":
                float(apps.filter(pl.col("functions") <= 3)["invocations"].sum() / grand_total) if grand_total else None,
            "avg_daily_invocations_per_function_median":
                float(daily.filter(pl.col("level") == "function")["avg_daily_invocations"].median() or 0.0),
            "avg_daily_invocations_per_app_median":
                float(daily.filter(pl.col("level") == "app")["avg_daily_invocations"].median() or 0.0),
        },
        "popularity": {
            **{f"{name}_invocation_share": _top_share(sorted_invocations, f) for name, f in TOP_SHARES.items()},
            "apps_top_18_6pct_invocation_share": _top_share(np.sort(app_totals)[::-1], 0.186),
            "orders_of_magnitude": float(math.log10(sorted_invocations.max() / sorted_invocations[sorted_invocations > 0].min()))
            if (sorted_invocations > 0).any() else None,
            "fits": fits,
            "best_fit": fits["tail_comparison"]["winner"],
        },
        "arrivals": {
            "functions_at_most_once_per_hour_share": _share(arrivals["at_most_once_per_hour"]),
            "functions_at_most_once_per_minute_share": _share(arrivals["at_most_once_per_minute"]),
            "apps_at_most_once_per_hour_share": _share(apps["invocations"] <= n_days * 24),
            "apps_at_most_once_per_minute_share": _share(apps["invocations"] <= n_days * MINUTES_PER_DAY),
            "iat_cv_functions": len(iat),
            "iat_cv_above_1_share": _share(iat > 1.0),
            "iat_cv_median": float(iat.median()) if len(iat) else None,
            "idle_periods": int(idle_lengths["periods"].sum()),
            "idle_period_median_min": _weighted_median(idle_lengths),
            "busy_period_median_min": _weighted_median(combined["busy"]),
            "diurnal_peak_to_trough": float(diurnal_minute["invocations"].max() / max(diurnal_minute["invocations"].min(), 1))
            if diurnal_minute.height else None,
            "hourly_relative_min": hourly["relative_to_mean"].min(),
            "hourly_relative_max": hourly["relative_to_mean"].max(),
            "app_iat_cv_apps": len(app_cv),
            "app_iat_cv_zero_share": _share(app_cv == 0.0),
            "app_iat_cv_above_1_share": _share(app_cv > 1.0),
            "app_iat_cv_median": float(app_cv.median()) if len(app_cv) else None,
            "app_iat_resolution_limited_share": _share(app_iat.filter(pl.col("iat_cv").is_not_null())["resolution_limited"]),
            "app_iat_resolution_limited_gap_min": published.RESOLUTION_LIMITED_GAP_MIN,
        },
        "resources": {
            "functions_with_durations": int(resources_functions["avg_duration_ms"].is_not_null().sum()),
            "avg_duration_under_1s_share": _share(resources_functions["avg_duration_ms"].drop_nulls() < 1000),
            "apps_with_memory": int(resources_apps["avg_memory_mb"].is_not_null().sum()),
            "median_app_memory_mb": float(resources_apps["avg_memory_mb"].median()) if resources_apps["avg_memory_mb"].is_not_null().any() else None,
            "spearman_invocations_vs_duration": spearman(resources_functions, "invocations", "avg_duration_ms"),
            "spearman_app_invocations_vs_memory": spearman(resources_apps, "invocations", "avg_memory_mb"),
        },
    }
    fitted = fitted_params(metrics, pooled, idle_days, combined, diurnal_minute, n_days)
    # the previous tables stay until every new one is written
    with atomic_output_dir(out, owned=("*.parquet", "*.json")) as tmp:
        for name, table in tables.items():
            table.write_parquet(tmp / f"{name}.parquet")
        (tmp / "summary.json").write_text(json.dumps(metrics, indent=2, default=float) + "\n")
        (tmp / "fitted_params.json").write_text(json.dumps(fitted, indent=2) + "\n")
    log.info("wrote %d tables, summary.json and fitted_params.json to %s", len(tables), out)
    write_text_atomic(Path(metrics_path), json.dumps(flat_metrics(metrics), indent=2, default=float) + "\n")
    log.info("wrote %s: idle_half_share_d01=%s pooled=%s (%s trace)", metrics_path,
             _pct(metrics["idle_half_share_d01"]), _pct(metrics["idle_half_share_pooled"]), source)
    return metrics


def flat_metrics(summary: dict) -> dict:
    """The few flat keys of the DVC metrics file (`dvc metrics show` prints one column per key);
    everything else is in summary.json and the Parquet tables."""
    hd = summary["headline_day"]
    by_resolution = summary["idle_half_share_by_resolution"]
    flat = {key: summary[key] for key in (
        "source", "synthetic", "days", "functions", "functions_active", "apps", "invocations", "headline_day",
        "idle_half_share_d01", "idle_half_share_d01_active", "idle_half_share_pooled", "idle_half_share_pooled_active")}
    for k in summary["resolutions_min"]:
        if k != 1:
            flat[f"idle_half_share_d01_{k}min"] = by_resolution[f"{hd}_all"][f"{k}min"]
    flat["resident_under_half_share_d01"] = summary["resident_under_half_share"][f"{hd}_all"]
    flat["resident_under_half_share_d01_active"] = summary["resident_under_half_share"][f"{hd}_active"]
    flat["keep_alive_min"] = summary["keep_alive_min"]
    flat["top_1pct_invocation_share"] = summary["popularity"]["top_1pct_invocation_share"]
    flat["popularity_best_fit"] = summary["popularity"]["best_fit"]
    flat["app_iat_cv_above_1_share"] = summary["arrivals"]["app_iat_cv_above_1_share"]
    return flat


def _weighted_median(histogram: pl.DataFrame) -> float | None:
    if histogram.height == 0 or histogram["periods"].sum() == 0:
        return None
    ordered = histogram.sort("length_min")
    cumulative = ordered["periods"].cum_sum().to_numpy()
    index = int(np.searchsorted(cumulative, cumulative[-1] / 2.0))
    return float(ordered["length_min"][index])


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def fitted_params(metrics: dict, pooled: pl.DataFrame, idle_days: pl.DataFrame, combined: dict,
                  diurnal_minute: pl.DataFrame, n_days: int) -> dict:
    """What the workload stage needs to draw models with the trace's shape."""
    per_day = (pooled["invocations"] / n_days).to_numpy()
    positive = per_day[per_day > 0]
    logs = np.log(positive) if len(positive) else np.array([])
    curve = diurnal_minute["invocations"].to_numpy().astype(float)
    full_curve = np.zeros(MINUTES_PER_DAY)
    if len(curve):
        full_curve[diurnal_minute["minute"].to_numpy() - 1] = curve
    mean = full_curve.mean()
    return {
        "source": metrics["source"],
        "db": metrics["db"],  # the parametric workload model is fitted from it
        "days": n_days,
        "functions": metrics["functions"],
        "never_active_share": float(np.mean(per_day == 0)) if len(per_day) else None,
        "rate_per_day_lognormal": {"mu": float(logs.mean()) if len(logs) else None,
                                   "sigma": float(logs.std()) if len(logs) else None},
        "power_law": metrics["popularity"]["fits"]["power_law"],
        "zipf": metrics["popularity"]["fits"]["zipf"],
        "idle_fraction_quantiles": _quantiles(idle_days["idle_fraction"].to_numpy()),
        "idle_period_histogram": {"length_min": combined["idle"]["length_min"].to_list(),
                                  "periods": combined["idle"]["periods"].to_list()},
        "busy_period_histogram": {"length_min": combined["busy"]["length_min"].to_list(),
                                  "periods": combined["busy"]["periods"].to_list()},
        "diurnal_multiplier": (full_curve / mean).round(6).tolist() if mean > 0 else [1.0] * MINUTES_PER_DAY,
    }


def _quantiles(values: np.ndarray) -> dict:
    if len(values) == 0:
        return {}
    qs = [0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0]
    return {f"q{int(q * 100):02d}": float(np.quantile(values, q)) for q in qs}
