"""Per-day partial results (computed on dask workers, one day each) and their exact combination.

A partial holds, for one day: per-function first/last active minute and the sums of its
within-day inter-arrival gaps; histograms of within-day idle and busy periods; the busy periods
that touch midnight (so runs crossing days can be merged); the diurnal profile; per function, its
active k-minute bins at each resolution and its within-day keep-alive residency (minutes covered
by [t, t + keep_alive] of consecutive invocation minutes); per app, the same gap sums over the
minutes in which any of its functions fired. Combining adds
the gaps that cross days and merges midnight-crossing busy periods, so the result equals a
computation over the whole timeline at once (a test checks this against plain numpy)."""

from __future__ import annotations

import polars as pl

from ..db import connect_read_only, frame
from ..trace.schema import MINUTES_PER_DAY

DAY_SQL = """
CREATE TEMP TABLE active AS
SELECT function_id, minute::INTEGER AS minute, count,
       (minute - lag(minute) OVER w)::BIGINT AS gap,
       minute - row_number() OVER w AS island
FROM invocations WHERE day = {day}
WINDOW w AS (PARTITION BY function_id ORDER BY minute)
"""


APP_SQL = """
CREATE TEMP TABLE app_active AS
SELECT app_id, minute, (minute - lag(minute) OVER w)::BIGINT AS gap
FROM (SELECT DISTINCT a.app_id, x.minute FROM active x JOIN functions f USING (function_id)
      JOIN apps a ON a.owner = f.owner AND a.app = f.app)
WINDOW w AS (PARTITION BY app_id ORDER BY minute)
"""


def day_partial(day: int, db: str, resolutions_min: tuple[int, ...] = (1, 5, 10, 60),
                keep_alive_min: int = 10) -> dict[str, pl.DataFrame]:
    bins = ", ".join(f"count(DISTINCT (minute - 1) // {int(k)})::INTEGER AS active_bins_{int(k)}min"
                     for k in resolutions_min)
    with connect_read_only(db) as con:
        con.execute("SET threads = 1")
        con.execute(DAY_SQL.format(day=int(day)))
        stats = frame(con, f"""
            SELECT function_id, {int(day)}::INTEGER AS day, min(minute) AS first_minute, max(minute) AS last_minute,
                   count(gap)::BIGINT AS gaps, coalesce(sum(gap), 0)::DOUBLE AS gap_sum,
                   coalesce(sum(gap * gap), 0)::DOUBLE AS gap_sumsq,
                   coalesce(max(gap) - 1, 0)::INTEGER AS max_idle_run,
                   coalesce(sum(least(gap, {int(keep_alive_min) + 1})) FILTER (WHERE gap IS NOT NULL), 0)::INTEGER
                   AS resident_inner_min
            FROM active GROUP BY function_id""")
        active_bins = frame(con, f"SELECT function_id, {int(day)}::INTEGER AS day, {bins} FROM active GROUP BY function_id")
        con.execute(APP_SQL)
        app_stats = frame(con, f"""
            SELECT app_id, {int(day)}::INTEGER AS day, min(minute)::INTEGER AS first_minute,
                   max(minute)::INTEGER AS last_minute, count(gap)::BIGINT AS gaps,
                   coalesce(sum(gap), 0)::DOUBLE AS gap_sum, coalesce(sum(gap * gap), 0)::DOUBLE AS gap_sumsq,
                   count(*)::INTEGER AS active_minutes
            FROM app_active GROUP BY app_id""")
        idle = frame(con, """
            SELECT (gap - 1)::INTEGER AS length_min, count(*)::BIGINT AS periods
            FROM active WHERE gap > 1 GROUP BY ALL""")
        runs = frame(con, """
            SELECT function_id, min(minute)::INTEGER AS start_minute, max(minute)::INTEGER AS end_minute,
                   count(*)::INTEGER AS length_min
            FROM active GROUP BY function_id, island""")
        diurnal = frame(con, f"""
            SELECT {int(day)}::INTEGER AS day, minute::INTEGER AS minute, sum(count)::BIGINT AS invocations,
                   count(*)::BIGINT AS active_functions
            FROM active GROUP BY minute ORDER BY minute""")
    edge = (pl.col("start_minute") == 1) | (pl.col("end_minute") == MINUTES_PER_DAY)
    busy = runs.filter(~edge).group_by("length_min").agg(pl.len().cast(pl.Int64).alias("periods"))
    edges = runs.filter(edge).with_columns(pl.lit(int(day), dtype=pl.Int32).alias("day"))
    return {"stats": stats, "idle": idle, "busy": busy, "edges": edges, "diurnal": diurnal,
            "bins": active_bins, "app_stats": app_stats}


def _gap_totals(stats: pl.DataFrame, key: str, days: list[int] | None = None) -> pl.DataFrame:
    """Per key, the day rows with the gap that crosses to the key's next present day (boundary_gap).

    Minutes are on the trace's calendar (day d starts at minute (d - 1) x 1440), so with a gap in
    the days (d01, d03) d03 starts at minute 2,880. A gap between two active minutes that spans a
    day missing from the trace (`days`) is censored like the window's edges: nobody saw that day."""
    t_first = (pl.col("day") - 1) * MINUTES_PER_DAY + pl.col("first_minute")
    t_last = (pl.col("day") - 1) * MINUTES_PER_DAY + pl.col("last_minute")
    gap = (t_first.shift(-1).over(key) - t_last).cast(pl.Int64)
    if days:
        # calendar days missing before each trace day; a change between two days means a missing day between
        missing_before = {d: d - min(days) - i for i, d in enumerate(sorted(days))}
        missing = pl.col("day").replace_strict(missing_before, return_dtype=pl.Int64)
        gap = pl.when(missing.shift(-1).over(key) == missing).then(gap)
    return stats.sort(key, "day").with_columns(gap.alias("boundary_gap"))


def combine(partials: list[dict[str, pl.DataFrame]], days: list[int] | None = None) -> dict[str, pl.DataFrame]:
    """Merge per-day partials into whole-window results (exactly); `days` as in `_gap_totals`."""
    stats = _gap_totals(pl.concat([p["stats"] for p in partials]), "function_id", days)
    per_function = stats.group_by("function_id").agg(
        (pl.col("gaps").sum() + pl.col("boundary_gap").is_not_null().sum()).alias("gaps"),
        (pl.col("gap_sum").sum() + pl.col("boundary_gap").sum()).alias("gap_sum"),
        (pl.col("gap_sumsq").sum() + (pl.col("boundary_gap").cast(pl.Float64) ** 2).sum()).alias("gap_sumsq"),
        pl.max_horizontal(pl.col("max_idle_run").max(), (pl.col("boundary_gap") - 1).max().fill_null(0)).alias("max_idle_min"),
        pl.col("day").min().alias("first_active_day"),
    ).sort("function_id")
    boundary_idle = stats.filter(pl.col("boundary_gap") > 1).select(
        (pl.col("boundary_gap") - 1).cast(pl.Int32).alias("length_min"))
    idle = pl.concat([
        pl.concat([p["idle"] for p in partials]),
        boundary_idle.group_by("length_min").agg(pl.len().cast(pl.Int64).alias("periods")),
    ]).group_by("length_min").agg(pl.col("periods").sum()).sort("length_min")

    edges = pl.concat([p["edges"] for p in partials]).with_columns(
        ((pl.col("day") - 1) * MINUTES_PER_DAY + pl.col("start_minute")).alias("t_start"),
        ((pl.col("day") - 1) * MINUTES_PER_DAY + pl.col("end_minute")).alias("t_end"),
    ).sort("function_id", "t_start")
    joined = (pl.col("function_id") == pl.col("function_id").shift(1)) & (pl.col("t_start") == pl.col("t_end").shift(1) + 1)
    merged = edges.with_columns((~joined.fill_null(False)).cum_sum().alias("chain")).group_by("chain").agg(
        pl.col("length_min").sum())
    busy = pl.concat([
        pl.concat([p["busy"] for p in partials]),
        merged.group_by("length_min").agg(pl.len().cast(pl.Int64).alias("periods")),
    ]).group_by("length_min").agg(pl.col("periods").sum()).sort("length_min")
    diurnal = pl.concat([p["diurnal"] for p in partials]).sort("day", "minute")
    app_stats = _gap_totals(pl.concat([p["app_stats"] for p in partials]), "app_id", days)
    per_app = app_stats.group_by("app_id").agg(
        (pl.col("gaps").sum() + pl.col("boundary_gap").is_not_null().sum()).alias("gaps"),
        (pl.col("gap_sum").sum() + pl.col("boundary_gap").sum()).alias("gap_sum"),
        (pl.col("gap_sumsq").sum() + (pl.col("boundary_gap").cast(pl.Float64) ** 2).sum()).alias("gap_sumsq"),
        pl.col("active_minutes").sum().alias("active_minutes"),
    ).sort("app_id")
    bins = pl.concat([p["bins"] for p in partials], how="diagonal_relaxed").sort("function_id", "day")
    return {"per_function": per_function, "idle": idle, "busy": busy, "diurnal": diurnal,
            "stats": stats.drop("boundary_gap"), "bins": bins, "per_app": per_app}


EMPTY = {
    "stats": pl.DataFrame(schema={"function_id": pl.Int32, "day": pl.Int32, "first_minute": pl.Int32,
                                  "last_minute": pl.Int32, "gaps": pl.Int64, "gap_sum": pl.Float64,
                                  "gap_sumsq": pl.Float64, "max_idle_run": pl.Int32,
                                  "resident_inner_min": pl.Int32}),
    "idle": pl.DataFrame(schema={"length_min": pl.Int32, "periods": pl.Int64}),
    "busy": pl.DataFrame(schema={"length_min": pl.Int32, "periods": pl.Int64}),
    "edges": pl.DataFrame(schema={"function_id": pl.Int32, "start_minute": pl.Int32, "end_minute": pl.Int32,
                                  "length_min": pl.Int32, "day": pl.Int32}),
    "diurnal": pl.DataFrame(schema={"day": pl.Int32, "minute": pl.Int32, "invocations": pl.Int64,
                                    "active_functions": pl.Int64}),
    "app_stats": pl.DataFrame(schema={"app_id": pl.Int32, "day": pl.Int32, "first_minute": pl.Int32,
                                      "last_minute": pl.Int32, "gaps": pl.Int64, "gap_sum": pl.Float64,
                                      "gap_sumsq": pl.Float64, "active_minutes": pl.Int32}),
}


def normalized(partial: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """Cast a partial to the fixed schemas (so an empty day concatenates cleanly)."""
    fixed = {name: partial[name].select(
        [pl.col(c).cast(t) for c, t in EMPTY[name].schema.items()]) for name in EMPTY}
    bins = partial["bins"]
    fixed["bins"] = bins.select(pl.col("function_id", "day").cast(pl.Int32),
                                *[pl.col(c).cast(pl.Int32) for c in bins.columns if c.startswith("active_bins_")])
    return fixed
