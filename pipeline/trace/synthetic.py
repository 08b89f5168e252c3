"""A synthetic trace in the exact Azure Functions 2019 schema, calibrated to published statistics.

Every figure used for calibration is from Shahrad et al., "Serverless in the Wild" (ATC'20),
as listed in DESIGN.md 2b; `CALIBRATION_TARGETS` names them, and the manifest written beside
the CSVs (`SYNTHETIC.json`) records, for each, the target and what this trace achieved, so a
reader can see how close the twin is. Everything downstream of this trace says "synthetic".

Model (per app, then per function):
- functions per app: 54% one function, otherwise 1 + a lognormal count (95% <= 10, ~0.04% > 100);
- app invocations per day: log10 rate ~ Normal(1.45, 1.77) clipped at 3.3 sd, solved from "45% of apps at most once
  per hour, 81% at most once per minute" (mean lowered from 1.60 to 1.45
  because timer functions, fixed by their periods, are busier); split over the app's functions by Dirichlet(0.5) weights;
- trigger per function from the published function shares; non-timer trigger groups are then
  rescaled to the published invocation shares; timers fire periodically (period 1 min .. 1 day),
  95% at most once per minute;
- per minute: Poisson counts modulated by a diurnal curve over a 50% baseline and a weekend dip;
  a share of functions is bursty (on/off Markov modulated, which gives inter-arrival CV > 1);
- durations: per-function average ~ lognormal(log mean -0.38, sigma 2.36) seconds, percentiles
  spread around it; memory: per-app average ~ Burr XII(c=11.652, k=0.221, lambda=107.083) MB;
- churn: some functions appear late or leave early; some rows carry no invocation at all;
- the released sample's data-quality quirks at small rates (duplicate duration/memory rows,
  missing duration/memory rows, 0 ms averages, a trigger that changes between days).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
from scipy import stats

from ..errors import ManyModelsError
from ..logs import log, track
from .schema import (
    DURATION_COLUMNS,
    DURATION_PERCENTILES,
    DURATIONS,
    INVOCATIONS,
    MEMORY,
    MEMORY_COLUMNS,
    MEMORY_DAYS,
    MEMORY_PERCENTILES,
    MINUTE_COLUMNS,
    MINUTES_PER_DAY,
    SYNTHETIC_MANIFEST,
    TRACE_DAYS,
    TRIGGERS,
    file_name,
)

# Published shares (ATC'20 Fig. 3); orchestration/storage/others split the remainder as in that figure.
TRIGGER_FUNCTION_SHARE = {
    "http": 0.550, "queue": 0.152, "event": 0.022, "timer": 0.156,
    "orchestration": 0.069, "storage": 0.028, "others": 0.023,
}
TRIGGER_INVOCATION_SHARE = {
    "http": 0.359, "queue": 0.335, "event": 0.247, "timer": 0.020,
    "orchestration": 0.023, "storage": 0.007, "others": 0.009,
}
CALIBRATION_TARGETS = {
    "apps_with_one_function": 0.54,
    "apps_with_at_most_10_functions": 0.95,
    "apps_with_more_than_100_functions": 0.0004,
    "apps_at_most_once_per_hour": 0.45,
    "apps_at_most_once_per_minute": 0.81,
    "invocation_share_top_18_6pct_apps": 0.996,
    "timer_functions_at_most_once_per_minute": 0.95,
    "functions_avg_duration_under_1s": 0.50,
    "functions_max_duration_at_most_10s": 0.75,
    "apps_avg_memory_at_most_170mb": 0.50,
    "apps_max_memory_at_most_400mb": 0.90,
    **{f"function_share_{t}": s for t, s in TRIGGER_FUNCTION_SHARE.items()},
    **{f"invocation_share_{t}": s for t, s in TRIGGER_INVOCATION_SHARE.items()},
}

TIMER_PERIODS_MIN = np.array([1, 2, 5, 10, 15, 30, 60, 120, 360, 720, 1440])
TIMER_PERIOD_PROB = np.array([0.14, 0.04, 0.22, 0.12, 0.10, 0.10, 0.14, 0.04, 0.04, 0.02, 0.04])
DURATION_Z = np.array([-2.6, -2.0, -0.67, 0.0, 0.67, 2.3, 3.0])  # p0, p1, p25, p50, p75, p99, p100
MEMORY_Z = np.array([-2.3, -1.6, -0.67, 0.0, 0.67, 1.6, 2.3, 3.0])  # pct1 .. pct100


@dataclass(frozen=True)
class SyntheticTraceConfig:
    functions: int = 2000
    days: int = 2
    seed: int = 42
    app_rate_log10_mean: float = 1.45
    app_rate_log10_sd: float = 1.77
    app_rate_z_clip: float = 3.3  # caps the busiest app near 10^7.4 invocations/day (about 17k/minute)
    bursty_share: float = 0.35
    diurnal_baseline: float = 0.5
    weekend_factor: float = 0.8
    churn_share: float = 0.06
    quirk_duplicate_rows: float = 0.001
    quirk_missing_duration: float = 0.01
    quirk_missing_memory: float = 0.02
    quirk_zero_ms_average: float = 0.002
    quirk_trigger_change: float = 0.001
    quirk_missing_min_max: float = 0.005
    targets: dict = field(default_factory=lambda: dict(CALIBRATION_TARGETS))

    def validate(self) -> None:
        if self.functions < 1:
            raise ManyModelsError(f"--functions must be at least 1, got {self.functions}")
        if not 1 <= self.days <= TRACE_DAYS:
            raise ManyModelsError(f"--days must be in 1..{TRACE_DAYS}, got {self.days}")


def _hashes(rng: np.random.Generator, n: int, salt: str) -> np.ndarray:
    """HMAC-like 64-hex ids, deterministic for the seed."""
    raw = rng.bytes(16 * n)
    return np.array(
        [hashlib.sha256(salt.encode() + raw[16 * i:16 * i + 16]).hexdigest() for i in range(n)]
    )


@dataclass
class Population:
    owner: np.ndarray
    app: np.ndarray
    function: np.ndarray
    app_index: np.ndarray  # per function, index into the app arrays
    trigger: np.ndarray
    rate_per_day: np.ndarray  # expected invocations per day
    timer_period_min: np.ndarray  # 0 for non-timer functions
    timer_phase_min: np.ndarray
    timer_burst: np.ndarray
    bursty: np.ndarray
    on_mean_min: np.ndarray
    off_mean_min: np.ndarray
    first_day: np.ndarray
    last_day: np.ndarray
    avg_duration_ms: np.ndarray
    duration_spread: np.ndarray
    app_owner: np.ndarray
    app_hash: np.ndarray
    app_memory_mb: np.ndarray
    app_memory_spread: np.ndarray


def _functions_per_app(rng: np.random.Generator, n_functions: int) -> np.ndarray:
    sizes: list[np.ndarray] = []
    total = 0
    while total < n_functions:
        batch = max(16, n_functions // 2)
        single = rng.random(batch) < 0.54
        extra = 1 + np.maximum(1, np.rint(np.exp(rng.normal(0.641, 1.263, batch)))).astype(np.int64)
        k = np.where(single, 1, extra)
        sizes.append(k)
        total += int(k.sum())
    k = np.concatenate(sizes)
    cut = np.searchsorted(np.cumsum(k), n_functions)
    k = k[: cut + 1].copy()
    k[-1] -= int(k.sum()) - n_functions
    return k[k > 0]


def _assign_non_timer_triggers(rng: np.random.Generator, trigger: np.ndarray, rate: np.ndarray) -> np.ndarray:
    """Re-deal the non-timer trigger labels (same counts) so each group gets its published share of
    invocations: the busiest functions go, in turn, to the group furthest below its target share."""
    trigger = trigger.copy()
    order = np.flatnonzero(trigger != "timer")
    order = order[np.argsort(-rate[order], kind="stable")]
    names = [t for t in TRIGGER_FUNCTION_SHARE if t != "timer"]
    quota = {t: int(np.sum(trigger[order] == t)) for t in names}
    share_sum = sum(TRIGGER_INVOCATION_SHARE[t] for t in names)
    total = float(rate[order].sum())
    target = {t: TRIGGER_INVOCATION_SHARE[t] / share_sum * total for t in names}
    deficit = dict(target)
    position = 0
    while position < len(order) and any(deficit[t] > 0 and quota[t] > 0 for t in names):
        candidates = [t for t in names if quota[t] > 0]
        chosen = max(candidates, key=lambda t: deficit[t] / target[t] if target[t] else -1.0)
        index = order[position]
        trigger[index] = chosen
        quota[chosen] -= 1
        deficit[chosen] -= rate[index]
        position += 1
    rest = np.concatenate([np.full(quota[t], t, dtype=trigger.dtype) for t in names])
    trigger[order[position:]] = rng.permutation(rest)
    return trigger


def population(config: SyntheticTraceConfig) -> Population:
    rng = np.random.default_rng([config.seed, 0])
    n = config.functions
    per_app = _functions_per_app(rng, n)
    n_apps = len(per_app)
    app_index = np.repeat(np.arange(n_apps), per_app)
    # owners: most own one app, some several
    owner_of_app = np.cumsum(rng.random(n_apps) < 0.7) - 1
    owner_of_app = np.maximum(owner_of_app, 0)
    owner_hash = _hashes(rng, int(owner_of_app.max()) + 1, "owner")
    app_hash = _hashes(rng, n_apps, "app")
    function_hash = _hashes(rng, n, "function")

    z = np.clip(rng.standard_normal(n_apps), -config.app_rate_z_clip, config.app_rate_z_clip)
    app_rate = 10.0 ** (config.app_rate_log10_mean + config.app_rate_log10_sd * z)
    weights = rng.gamma(0.5, 1.0, n) + 1e-12
    app_weight_sum = np.bincount(app_index, weights, minlength=n_apps)
    rate = app_rate[app_index] * weights / app_weight_sum[app_index]

    names = np.array(list(TRIGGER_FUNCTION_SHARE))
    probs = np.array(list(TRIGGER_FUNCTION_SHARE.values()))
    trigger = rng.choice(names, size=n, p=probs / probs.sum())

    is_timer = trigger == "timer"
    period = np.where(is_timer, rng.choice(TIMER_PERIODS_MIN, size=n, p=TIMER_PERIOD_PROB), 0)
    burst = np.where(is_timer & (period == 1) & (rng.random(n) < 0.35), rng.integers(2, 12, n), 1)
    phase = rng.integers(0, np.maximum(period, 1))
    timer_rate = np.where(is_timer, burst * MINUTES_PER_DAY / np.maximum(period, 1), 0.0)
    rate = np.where(is_timer, timer_rate, rate)

    trigger = _assign_non_timer_triggers(rng, trigger, rate)
    bursty = (~is_timer) & (rng.random(n) < config.bursty_share)
    on_mean = rng.uniform(5, 120, n)
    off_mean = on_mean * rng.uniform(1.5, 20, n)

    first_day = np.ones(n, dtype=np.int64)
    last_day = np.full(n, config.days, dtype=np.int64)
    if config.days > 1:
        late = rng.random(n) < config.churn_share / 2
        early = rng.random(n) < config.churn_share / 2
        first_day = np.where(late, rng.integers(2, config.days + 1, n), 1)
        last_day = np.where(early, rng.integers(first_day, config.days + 1), config.days)

    avg_s = np.exp(rng.normal(-0.38, 2.36, n))
    avg_ms = np.round(np.clip(avg_s * 1000.0, 1.0, 3.6e6), 3)
    avg_ms = np.where(rng.random(n) < config.quirk_zero_ms_average, 0.0, avg_ms)
    spread = rng.uniform(0.05, 0.45, n)

    burr = stats.burr12(c=11.652, d=0.221, scale=107.083)
    app_memory = np.clip(burr.rvs(size=n_apps, random_state=rng), 1.0, 8192.0)
    app_memory_spread = rng.uniform(0.02, 0.2, n_apps)

    return Population(
        owner=owner_hash[owner_of_app[app_index]], app=app_hash[app_index], function=function_hash,
        app_index=app_index, trigger=trigger, rate_per_day=rate, timer_period_min=period,
        timer_phase_min=phase, timer_burst=burst, bursty=bursty, on_mean_min=on_mean,
        off_mean_min=off_mean, first_day=first_day, last_day=last_day, avg_duration_ms=avg_ms,
        duration_spread=spread, app_owner=owner_hash[owner_of_app], app_hash=app_hash,
        app_memory_mb=app_memory, app_memory_spread=app_memory_spread,
    )


def diurnal_curve(baseline: float) -> np.ndarray:
    """Mean-one multiplier per minute of day: a constant `baseline` share plus a daily wave peaking at 14:00."""
    minute = np.arange(MINUTES_PER_DAY)
    wave = 0.5 * (1.0 + np.cos(2.0 * np.pi * (minute - 840) / MINUTES_PER_DAY))
    curve = baseline + (1.0 - baseline) * wave
    return curve / curve.mean()


def day_counts(pop: Population, config: SyntheticTraceConfig, day: int, rows: np.ndarray) -> np.ndarray:
    """Per-minute invocation counts (rows x 1440, int64) of the given functions on `day`."""
    rng = np.random.default_rng([config.seed, day])
    curve = diurnal_curve(config.diurnal_baseline)
    weekday = (day - 1) % 7
    day_factor = config.weekend_factor if weekday in (5, 6) else 1.0
    n = len(rows)
    counts = np.zeros((n, MINUTES_PER_DAY), dtype=np.int64)

    period = pop.timer_period_min[rows]
    timer = period > 0
    if timer.any():
        global_minute = (day - 1) * MINUTES_PER_DAY + np.arange(MINUTES_PER_DAY)
        fires = (global_minute[None, :] - pop.timer_phase_min[rows][timer][:, None]) % period[timer][:, None] == 0
        counts[timer] = fires * pop.timer_burst[rows][timer][:, None]

    other = ~timer
    lam = (pop.rate_per_day[rows][other] * day_factor / MINUTES_PER_DAY)[:, None] * curve[None, :]
    bursty = pop.bursty[rows][other]
    if bursty.any():
        on_mean = pop.on_mean_min[rows][other][bursty]
        off_mean = pop.off_mean_min[rows][other][bursty]
        duty = on_mean / (on_mean + off_mean)
        state = rng.random(len(on_mean)) < duty
        on = np.empty((len(on_mean), MINUTES_PER_DAY), dtype=bool)
        leave, enter = 1.0 / on_mean, 1.0 / off_mean
        for minute in range(MINUTES_PER_DAY):  # a Markov chain over time, vectorized over functions
            on[:, minute] = state
            u = rng.random(len(state))
            state = np.where(state, u >= leave, u < enter)
        lam[bursty] = lam[bursty] * on / duty[:, None]
    counts[other] = rng.poisson(lam)
    return counts


def _percentiles(center: np.ndarray, spread: np.ndarray, z: np.ndarray) -> np.ndarray:
    return np.round(center[:, None] * np.exp(spread[:, None] * z[None, :]), 3)


def _duration_frame(pop: Population, config: SyntheticTraceConfig, day: int, rows: np.ndarray,
                    invocations: np.ndarray) -> pl.DataFrame:
    rng = np.random.default_rng([config.seed, day, 1])
    keep = (invocations > 0) & (rng.random(len(rows)) >= config.quirk_missing_duration)
    rows, invocations = rows[keep], invocations[keep]
    day_noise = np.exp(rng.normal(0.0, 0.1, len(rows)))
    avg = np.round(pop.avg_duration_ms[rows] * day_noise, 3)
    pct = _percentiles(avg, pop.duration_spread[rows], DURATION_Z)
    minimum = np.round(pct[:, 0] * rng.uniform(0.5, 1.0, len(rows)), 3)
    maximum = np.round(pct[:, -1] * rng.uniform(1.0, 2.0, len(rows)), 3)
    missing = rng.random(len(rows)) < config.quirk_missing_min_max
    count = np.maximum(1, np.rint(invocations * rng.uniform(0.97, 1.03, len(rows)))).astype(np.int64)
    frame = pl.DataFrame({
        "HashOwner": pop.owner[rows], "HashApp": pop.app[rows], "HashFunction": pop.function[rows],
        "Average": avg, "Count": count,
        "Minimum": pl.Series(np.where(missing, np.nan, minimum)).fill_nan(None),
        "Maximum": pl.Series(np.where(missing, np.nan, maximum)).fill_nan(None),
        **{name: pct[:, i] for i, name in enumerate(DURATION_PERCENTILES)},
    }).select(DURATION_COLUMNS)
    return _with_duplicates(frame, rng, config.quirk_duplicate_rows)


def _memory_frame(pop: Population, config: SyntheticTraceConfig, day: int, active_apps: np.ndarray) -> pl.DataFrame:
    rng = np.random.default_rng([config.seed, day, 2])
    apps = active_apps[rng.random(len(active_apps)) >= config.quirk_missing_memory]
    avg = np.round(pop.app_memory_mb[apps] * np.exp(rng.normal(0.0, 0.05, len(apps))), 3)
    pct = _percentiles(avg, pop.app_memory_spread[apps], MEMORY_Z)
    frame = pl.DataFrame({
        "HashOwner": pop.app_owner[apps], "HashApp": pop.app_hash[apps],
        "SampleCount": rng.integers(1, 20000, len(apps)), "AverageAllocatedMb": avg,
        **{name: pct[:, i] for i, name in enumerate(MEMORY_PERCENTILES)},
    }).select(MEMORY_COLUMNS)
    return _with_duplicates(frame, rng, config.quirk_duplicate_rows)


def _with_duplicates(frame: pl.DataFrame, rng: np.random.Generator, share: float) -> pl.DataFrame:
    if frame.height == 0:
        return frame
    duplicated = np.flatnonzero(rng.random(frame.height) < share)
    return pl.concat([frame, frame[duplicated]]) if len(duplicated) else frame


def write_day(pop: Population, config: SyntheticTraceConfig, day: int, out: Path) -> dict:
    """Write the three files of one day; return a few numbers for the calibration report."""
    present = np.flatnonzero((pop.first_day <= day) & (pop.last_day >= day))
    counts = day_counts(pop, config, day, present)
    trigger = pop.trigger[present].copy()
    if day > 1:  # the released sample has a function whose trigger differs between days
        rng = np.random.default_rng([config.seed, day, 3])
        flip = rng.random(len(present)) < config.quirk_trigger_change
        trigger[flip] = rng.choice(np.array(TRIGGERS), size=int(flip.sum()))
    keys = pl.DataFrame({
        "HashOwner": pop.owner[present], "HashApp": pop.app[present],
        "HashFunction": pop.function[present], "Trigger": trigger,
    })
    minutes = pl.from_numpy(counts, schema=MINUTE_COLUMNS)
    pl.concat([keys, minutes], how="horizontal").write_csv(out / file_name(INVOCATIONS, day))
    invocations = counts.sum(axis=1)
    durations = _duration_frame(pop, config, day, present, invocations)
    durations.write_csv(out / file_name(DURATIONS, day))
    memory = None
    if day <= MEMORY_DAYS:
        active_apps = np.unique(pop.app_index[present])
        memory = _memory_frame(pop, config, day, active_apps)
        memory.write_csv(out / file_name(MEMORY, day))
    return {"day": day, "present": present, "invocations": invocations, "durations": durations, "memory": memory}


def calibration(pop: Population, day_stats: list[dict], days: int) -> dict:
    """Achieved values of the calibration targets, computed from what was written (invocations over
    all days; durations and memory from day 1's files)."""
    n = len(pop.function)
    total = np.zeros(n)
    for s in day_stats:
        total[s["present"]] += s["invocations"]
    per_day = total / days
    n_apps = len(pop.app_hash)
    app_rate = np.bincount(pop.app_index, per_day, minlength=n_apps)
    functions_per_app = np.bincount(pop.app_index, minlength=n_apps)
    app_sorted = np.sort(app_rate)[::-1]
    top = max(1, round(0.186 * n_apps))
    timer = pop.trigger == "timer"
    first = day_stats[0]
    achieved = {
        "apps_with_one_function": float(np.mean(functions_per_app == 1)),
        "apps_with_at_most_10_functions": float(np.mean(functions_per_app <= 10)),
        "apps_with_more_than_100_functions": float(np.mean(functions_per_app > 100)),
        "apps_at_most_once_per_hour": float(np.mean(app_rate <= 24)),
        "apps_at_most_once_per_minute": float(np.mean(app_rate <= MINUTES_PER_DAY)),
        "invocation_share_top_18_6pct_apps": float(app_sorted[:top].sum() / max(app_sorted.sum(), 1)),
        "timer_functions_at_most_once_per_minute": float(np.mean(pop.timer_burst[timer] <= 1)) if timer.any() else None,
        # durations and memory as written in the first day's files
        "functions_avg_duration_under_1s": float((first["durations"]["Average"] < 1000).mean()),
        "functions_max_duration_at_most_10s": float((first["durations"]["Maximum"].drop_nulls() <= 10_000).mean()),
        "apps_avg_memory_at_most_170mb": float((first["memory"]["AverageAllocatedMb"] <= 170).mean()),
        "apps_max_memory_at_most_400mb": float((first["memory"]["AverageAllocatedMb_pct100"] <= 400).mean()),
    }
    grand = total.sum()
    for t in TRIGGER_FUNCTION_SHARE:
        achieved[f"function_share_{t}"] = float(np.mean(pop.trigger == t))
        achieved[f"invocation_share_{t}"] = float(total[pop.trigger == t].sum() / grand) if grand else None
    positive = per_day[per_day > 0]
    achieved["invocations_per_day_orders_of_magnitude"] = (
        float(math.log10(positive.max() / positive.min())) if len(positive) else 0.0
    )
    return achieved


def synthesize_trace(config: SyntheticTraceConfig, out: Path) -> dict:
    """Write a synthetic trace (three files per day) and its manifest into `out`; return the manifest."""
    config.validate()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("*.anon.d*.csv"):
        stale.unlink()
    pop = population(config)
    log.info("synthetic trace: %d functions in %d apps, %d days, seed %d",
             config.functions, len(pop.app_hash), config.days, config.seed)
    day_stats = [write_day(pop, config, day, out) for day in track(range(1, config.days + 1), "synth-trace days")]
    achieved = calibration(pop, day_stats, config.days)
    manifest = {
        "source": "synthetic",
        "generator": "manymodels synth-trace",
        "config": {k: v for k, v in asdict(config).items() if k != "targets"},
        "files": sorted(p.name for p in out.glob("*.anon.d*.csv")),
        "total_invocations": int(sum(int(s["invocations"].sum()) for s in day_stats)),
        "calibration": {
            key: {"target": config.targets.get(key), "achieved": value} for key, value in achieved.items()
        },
    }
    (out / SYNTHETIC_MANIFEST).write_text(json.dumps(manifest, indent=2))
    log.info("wrote %d files and %s to %s (%d invocations)", len(manifest["files"]), SYNTHETIC_MANIFEST,
             out, manifest["total_invocations"])
    return manifest
