"""The idleness headline at several time resolutions, and as a keep-alive cache sees it.

- Idle fraction at k-minute resolution: the day (or window) is cut into bins of k minutes
  (k divides 1,440, so bins never straddle midnight); a bin is idle if the function has no
  invocation in it; idle fraction = idle bins / bins. At k = 1 this is the paper's definition.
- Keep-alive residency: a function is resident in minute m if it was invoked in one of the
  minutes m - K .. m (K = keep-alive, 10 minutes as AWS), i.e. from each invocation minute for K
  minutes after it; resident fraction = resident minutes / 1,440 (per day) or / window minutes
  (pooled). With sorted invocation minutes t_1 < ... < t_n the resident set has
  sum_i min(K + 1, t_(i+1) - t_i) + min(K + 1, end - t_n + 1) minutes. On a given day the
  minutes carried over from the previous day's last invocations count (what a cache sees).
- Share under half: share of functions with resident fraction < 0.5 (they occupy memory less
  than half the day under that keep-alive); "_active" leaves out rows with no invocation.
"""

from __future__ import annotations

import polars as pl

from ..errors import ManyModelsError
from ..trace.schema import MINUTES_PER_DAY, TRIGGERS


def check_resolutions(resolutions_min: list[int], keep_alive_min: int) -> tuple[int, ...]:
    values = tuple(sorted({int(k) for k in resolutions_min}))
    bad = [k for k in values if k < 1 or MINUTES_PER_DAY % k]
    if not values or bad:
        raise ManyModelsError(f"--resolutions-min: each value must divide 1440 (got {list(resolutions_min)})")
    if not 0 <= int(keep_alive_min) < MINUTES_PER_DAY:
        raise ManyModelsError(f"--keep-alive-min must be in 0..1439 (got {keep_alive_min})")
    return values


def resident_minutes(stats: pl.DataFrame, function_days: pl.DataFrame, functions: pl.DataFrame,
                     keep_alive_min: int, last_day: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(per function-day resident minutes, per function pooled resident minutes).

    `stats` has one row per function and day with an invocation (first/last minute and the
    within-day sum of min(gap, K + 1)); `function_days` every row of every day's file."""
    k1 = int(keep_alive_min) + 1
    st = stats.select("function_id", "day", "first_minute", "last_minute", "resident_inner_min").sort(
        "function_id", "day")
    t_last = (pl.col("day") - 1) * MINUTES_PER_DAY + pl.col("last_minute")
    t_next = ((pl.col("day") - 1) * MINUTES_PER_DAY + pl.col("first_minute")).shift(-1).over("function_id")
    end = last_day * MINUTES_PER_DAY
    pooled_part = st.with_columns(
        pl.min_horizontal(pl.lit(k1), pl.coalesce(t_next, pl.lit(end + 1)) - t_last).alias("last_contribution"))
    pooled = functions.select("function_id").join(
        pooled_part.group_by("function_id").agg(
            (pl.col("resident_inner_min").sum() + pl.col("last_contribution").sum()).alias("resident_min")),
        on="function_id", how="left").with_columns(pl.col("resident_min").fill_null(0).cast(pl.Int64))
    spill = st.select("function_id", (pl.col("day") + 1).alias("day"),
                      (pl.col("last_minute") + int(keep_alive_min) - MINUTES_PER_DAY).clip(lower_bound=0)
                      .alias("carry_min")).filter(pl.col("carry_min") > 0)
    per_day = function_days.select("function_id", "day").join(
        st, on=["function_id", "day"], how="left").join(spill, on=["function_id", "day"], how="left").with_columns(
        (pl.col("resident_inner_min").fill_null(0)
         + (MINUTES_PER_DAY + 1 - pl.col("last_minute")).clip(upper_bound=k1).fill_null(0)
         + pl.min_horizontal(pl.col("carry_min").fill_null(0),
                             (pl.col("first_minute") - 1).fill_null(MINUTES_PER_DAY))).cast(pl.Int64)
        .alias("resident_min")).select("function_id", "day", "resident_min")
    return per_day, pooled


def _rows(frame_: pl.DataFrame, scope: str, measure: str, column: str, threshold_above: bool,
          resolution_min: int | None, keep_alive_min: int | None) -> list[dict]:
    rows = []
    groups = [("all", frame_)] + [(t, frame_.filter(pl.col("trigger") == t)) for t in TRIGGERS]
    for trigger, group in groups:
        for population, members in (("all", group), ("active", group.filter(pl.col("invocations") > 0))):
            hit = (members[column] > 0.5) if threshold_above else (members[column] < 0.5)
            rows.append({"scope": scope, "trigger": trigger, "population": population, "measure": measure,
                         "resolution_min": resolution_min, "keep_alive_min": keep_alive_min,
                         "functions": members.height, "matching": int(hit.sum()),
                         "share": float(hit.mean()) if members.height else None})
    return rows


def idleness_tables(idle_days: pl.DataFrame, pooled: pl.DataFrame, bins: pl.DataFrame, per_day_resident: pl.DataFrame,
                    pooled_resident: pl.DataFrame, resolutions_min: tuple[int, ...], keep_alive_min: int,
                    n_days: int) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(idle_days with idle_fraction_<k>min and resident_fraction, pooled likewise, headline table)."""
    bin_cols = [f"active_bins_{k}min" for k in resolutions_min]
    per_day = idle_days.join(bins.select("function_id", "day", *bin_cols), on=["function_id", "day"], how="left").join(
        per_day_resident, on=["function_id", "day"], how="left").with_columns(
        *[(1.0 - pl.col(f"active_bins_{k}min").fill_null(0) / (MINUTES_PER_DAY // k)).alias(f"idle_fraction_{k}min")
          for k in resolutions_min],
        (pl.col("resident_min").fill_null(0) / MINUTES_PER_DAY).alias("resident_fraction"),
    ).drop(bin_cols)
    totals = bins.group_by("function_id").agg(*[pl.col(c).sum() for c in bin_cols])
    window = pooled.join(totals, on="function_id", how="left").join(pooled_resident, on="function_id", how="left").with_columns(
        *[(1.0 - pl.col(f"active_bins_{k}min").fill_null(0) / (n_days * MINUTES_PER_DAY // k))
          .alias(f"idle_fraction_pooled_{k}min") for k in resolutions_min],
        (pl.col("resident_min").fill_null(0) / (n_days * MINUTES_PER_DAY)).alias("resident_fraction_pooled"),
    ).drop(bin_cols)
    rows: list[dict] = []
    for day in sorted(per_day["day"].unique().to_list()):
        part = per_day.filter(pl.col("day") == day)
        for k in resolutions_min:
            rows += _rows(part, f"d{day:02d}", "idle_bins", f"idle_fraction_{k}min", True, k, None)
        rows += _rows(part, f"d{day:02d}", "keepalive_resident", "resident_fraction", False, None, keep_alive_min)
    for k in resolutions_min:
        rows += _rows(window, "pooled", "idle_bins", f"idle_fraction_pooled_{k}min", True, k, None)
    rows += _rows(window, "pooled", "keepalive_resident", "resident_fraction_pooled", False, None, keep_alive_min)
    table = pl.DataFrame(rows, schema={"scope": pl.String, "trigger": pl.String, "population": pl.String,
                                       "measure": pl.String, "resolution_min": pl.Int32, "keep_alive_min": pl.Int32,
                                       "functions": pl.Int64, "matching": pl.Int64, "share": pl.Float64})
    return per_day, window, table
