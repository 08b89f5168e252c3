"""Per-day partial results (computed on dask workers, one day each) and their exact combination.

A partial holds, for one day: per-function first/last active minute and the sums of its
within-day inter-arrival gaps; histograms of within-day idle and busy periods; the busy periods
that touch midnight (so runs crossing days can be merged); the diurnal profile. Combining adds
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


def day_partial(day: int, db: str) -> dict[str, pl.DataFrame]:
    with connect_read_only(db) as con:
        con.execute("SET threads = 1")
        con.execute(DAY_SQL.format(day=int(day)))
        stats = frame(con, f"""
            SELECT function_id, {int(day)}::INTEGER AS day, min(minute) AS first_minute, max(minute) AS last_minute,
                   count(gap)::BIGINT AS gaps, coalesce(sum(gap), 0)::DOUBLE AS gap_sum,
                   coalesce(sum(gap * gap), 0)::DOUBLE AS gap_sumsq,
                   coalesce(max(gap) - 1, 0)::INTEGER AS max_idle_run
            FROM active GROUP BY function_id""")
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
    return {"stats": stats, "idle": idle, "busy": busy, "edges": edges, "diurnal": diurnal}


def combine(partials: list[dict[str, pl.DataFrame]], days: list[int] | None = None) -> dict[str, pl.DataFrame]:
    """Merge per-day partials into whole-window results (exactly).

    Minutes are on the trace's calendar (day d starts at minute (d - 1) x 1440), so with a gap in
    the days (d01, d03) d03 starts at minute 2,880. A gap between two active minutes that spans a
    day missing from the trace (`days`) is censored like the window's edges: nobody saw that day."""
    stats = pl.concat([p["stats"] for p in partials]).sort("function_id", "day")
    t_first = (pl.col("day") - 1) * MINUTES_PER_DAY + pl.col("first_minute")
    t_last = (pl.col("day") - 1) * MINUTES_PER_DAY + pl.col("last_minute")
    gap = (t_first.shift(-1).over("function_id") - t_last).cast(pl.Int64)
    if days:
        # calendar days missing before each trace day; a change between two days means a missing day between
        missing_before = {d: d - days[0] - i for i, d in enumerate(sorted(days))}
        missing = pl.col("day").replace_strict(missing_before, return_dtype=pl.Int64)
        gap = pl.when(missing.shift(-1).over("function_id") == missing).then(gap)
    stats = stats.with_columns(gap.alias("boundary_gap"))
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
    return {"per_function": per_function, "idle": idle, "busy": busy, "diurnal": diurnal}


EMPTY = {
    "stats": pl.DataFrame(schema={"function_id": pl.Int32, "day": pl.Int32, "first_minute": pl.Int32,
                                  "last_minute": pl.Int32, "gaps": pl.Int64, "gap_sum": pl.Float64,
                                  "gap_sumsq": pl.Float64, "max_idle_run": pl.Int32}),
    "idle": pl.DataFrame(schema={"length_min": pl.Int32, "periods": pl.Int64}),
    "busy": pl.DataFrame(schema={"length_min": pl.Int32, "periods": pl.Int64}),
    "edges": pl.DataFrame(schema={"function_id": pl.Int32, "start_minute": pl.Int32, "end_minute": pl.Int32,
                                  "length_min": pl.Int32, "day": pl.Int32}),
    "diurnal": pl.DataFrame(schema={"day": pl.Int32, "minute": pl.Int32, "invocations": pl.Int64,
                                    "active_functions": pl.Int64}),
}


def normalized(partial: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """Cast a partial to the fixed schemas (so an empty day concatenates cleanly)."""
    return {name: partial[name].select(
        [pl.col(c).cast(t) for c, t in EMPTY[name].schema.items()]) for name in EMPTY}
