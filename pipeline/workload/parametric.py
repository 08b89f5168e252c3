"""The parametric workload model: fit per-function behaviour from the trace, then sample models.

`fit(con, ...) -> WorkloadModel` reads one window of the trace database and keeps, for every
function present in it, a small vector of fitted features and empirical tables:

- its trigger, requests and active minutes in the window (rate and idle fraction);
- its first active minute in the window (-1: never active in it);
- the quantile tables (K equal-probability slices kept as their means, so a function with K runs or
  fewer is kept exactly) of its own busy-period lengths, its own idle-period lengths (runs of zero
  minutes between active minutes; the window is taken as circular, so the idle run across its
  edges counts and the runs fill it exactly), and its own requests per active minute beyond the
  first, divided by the trace's diurnal multiplier at that minute (so dispersion and the
  count-rate are the function's, the time-of-day swing the trace's);
- the trace's diurnal multiplier (requests per hour of day over the mean hour, interpolated per
  minute).

The fit reads the trace at the workload's rate scale (counts scaled and stochastically rounded as
the replay does, emptied minutes dropped), so thinning acts on the trace's own sequences.

`sample_population(model, n_models, rng)` draws each workload model's feature vector from that
empirical joint distribution: when n_models <= functions, a systematic sample over the functions
ordered by popularity (and by IAT CV within popularity bands past the head), so the heavy tail's
giants are kept by stratum rather than by chance; beyond that every function as many whole times
as fit plus a systematic sample for the rest, all but the first copy kernel draws (a function with
its idle-period, busy-period and count scales perturbed by Gaussian kernels in log space,
Silverman bandwidths from the trace's spread).
`sample_blocks(...)` runs a semi-Markov on/off process per model, started in its stationary state, with the model's own busy- and
idle-period distributions (periodic functions, whose idle runs are near-constant, stay periodic),
counts per active minute from its own count table times the diurnal multiplier; block by block,
in bounded memory, compiled with numba.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numba
import numpy as np

from ..db import frame
from ..errors import ManyModelsError
from ..trace.schema import MINUTES_PER_DAY, TRIGGERS
from .requests import scaled_counts

QUANTILES = 256  # a power of two: tables are visited in bit-reversed order (stratified draws)
MODEL_CHUNK = 1 << 17  # models per compiled call: bounds the per-block buffers


@dataclass
class WorkloadModel:
    """Fitted parameters and empirical tables of the parametric generator (one row per function)."""

    window_minutes: int
    start_minute_of_day: int
    trigger: np.ndarray          # int8 index into TRIGGERS
    requests: np.ndarray         # int64, in the window
    active_minutes: np.ndarray   # int64, in the window
    first_active: np.ndarray     # int64 minute of the window, -1 if never active
    busy_table: np.ndarray       # float32 (functions, K) busy-period lengths, minutes
    idle_table: np.ndarray       # float32 (functions, K) idle-period lengths, minutes (0: always busy)
    extra_table: np.ndarray      # float32 (functions, K) requests per active minute minus 1, deseasonalized
    diurnal: np.ndarray          # float64 (1440,) multiplier per minute of the day, mean 1
    iat_cv: np.ndarray           # float64 CV of the gaps between its active minutes (NaN: fewer than 2 gaps)
    hour_profile: np.ndarray     # float64 (functions, 24) its activity by hour of day, mean 1 (all ones: no
    #                              significant time-of-day pattern); idle lengths are in its operational time
    source: dict = field(default_factory=dict)

    @property
    def functions(self) -> int:
        return len(self.requests)

    ARRAYS = ("trigger", "requests", "active_minutes", "first_active", "busy_table", "idle_table",
              "extra_table", "diurnal", "iat_cv", "hour_profile")

    def save(self, path: Path) -> None:
        """One .npz file: the arrays, and the scalars and source as JSON."""
        header = {"window_minutes": self.window_minutes, "start_minute_of_day": self.start_minute_of_day,
                  "source": self.source, "triggers": list(TRIGGERS)}
        np.savez_compressed(path, header=np.array(json.dumps(header)),
                            **{name: getattr(self, name) for name in self.ARRAYS})

    @classmethod
    def load(cls, path: Path) -> WorkloadModel:
        with np.load(path, allow_pickle=False) as data:
            header = json.loads(str(data["header"]))
            return cls(window_minutes=header["window_minutes"], start_minute_of_day=header["start_minute_of_day"],
                       source=header["source"],
                       **{name: data[name] if name in data.files else _missing(name, len(data["requests"]))
                          for name in cls.ARRAYS})


def _missing(name: str, n: int) -> np.ndarray:
    """Arrays a model saved by an older version lacks: no IAT CV known, no time-of-day pattern."""
    return np.ones((n, 24)) if name == "hour_profile" else np.full(n, np.nan)


# ----------------------------------------------------------------------------------- fit
@numba.njit(cache=True)
def _table(values: np.ndarray, k: int) -> np.ndarray:
    """K equal-probability slices of the sorted values, each kept as its mean (the mean is exact, the
    tails are kept as slice means rather than cut at a quantile); with K values or fewer, the values
    themselves, so resampling the table is resampling the function's own periods."""
    out = np.zeros(k, dtype=np.float32)
    n = len(values)
    if n == 0:
        return out
    ordered = np.sort(values)
    for i in range(k):
        lo = (i * n) // k
        hi = ((i + 1) * n) // k
        if hi > lo:
            out[i] = ordered[lo:hi].mean()
        else:
            out[i] = ordered[min(int((i + 0.5) * n / k), n - 1)]
    return out


@numba.njit(cache=True)
def _operational(row, hour, a, b):
    """Operational length of the window minutes [a, b): the function's activity summed over them."""
    total = 0.0
    for m in range(a, b):
        total += row[hour[m]]
    return total


@numba.njit(cache=True)
def _real_length(row, hour, start, op_length):
    """Minutes from `start` until the function's activity summed over them reaches `op_length`
    (the inverse of `_operational`; past the end of `hour` a minute counts 1)."""
    acc = 0.0
    m = start
    while acc < op_length:
        if m >= len(hour):
            return m - start + np.int64(np.ceil(op_length - acc))
        acc += row[hour[m]]
        m += 1
    return m - start


@numba.njit(cache=True)
def _fit_tables(starts, minute, count, multiplier, window, k, profile, shaped, hour):
    n = len(starts) - 1
    busy_table = np.zeros((n, k), dtype=np.float32)
    idle_table = np.zeros((n, k), dtype=np.float32)
    extra_table = np.zeros((n, k), dtype=np.float32)
    first_active = np.full(n, -1, dtype=np.int64)
    for f in range(n):
        s, e = starts[f], starts[f + 1]
        if e == s:
            continue
        t = minute[s:e]
        extra = np.empty(e - s, dtype=np.float64)
        for i in range(e - s):
            extra[i] = (count[s + i] - 1) / multiplier[t[i]]
        # busy runs (consecutive active minutes) and idle runs between them
        busy = np.empty(e - s, dtype=np.float64)
        idle = np.empty(e - s, dtype=np.float64)
        nb, ni = 0, 0
        run = 1
        for i in range(1, e - s):
            gap = t[i] - t[i - 1]
            if gap == 1:
                run += 1
            else:
                busy[nb] = run
                nb += 1
                idle[ni] = _operational(profile[f], hour, t[i - 1] + 1, t[i]) if shaped[f] else gap - 1
                ni += 1
                run = 1
        busy[nb] = run
        nb += 1
        first_active[f] = t[0]
        wrap = t[0] + window - t[-1] - 1
        if wrap > 0:
            if shaped[f]:
                wrap = _operational(profile[f], hour, t[-1] + 1, window) + _operational(profile[f], hour, 0, t[0])
            idle[ni] = wrap
            ni += 1
        elif nb > 1:  # active at both edges: the last and first runs are one circular run
            busy[0] += busy[nb - 1]
            nb -= 1
        busy_table[f] = _table(busy[:nb], k)
        idle_table[f] = _table(idle[:ni], k)
        extra_table[f] = _table(extra, k)
    return busy_table, idle_table, extra_table, first_active


def gap_cv(f: np.ndarray, minute: np.ndarray, n: int) -> np.ndarray:
    """Per function: std / mean of the gaps between its consecutive active minutes (cells sorted by
    function, then minute); NaN with fewer than two gaps."""
    same = f[1:] == f[:-1]
    gap, owner = np.diff(minute)[same].astype(float), f[1:][same]
    gaps = np.bincount(owner, minlength=n)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.bincount(owner, weights=gap, minlength=n) / gaps
        var = np.bincount(owner, weights=gap * gap, minlength=n) / gaps - mean * mean
        return np.where(gaps >= 2, np.sqrt(np.clip(var, 0, None)) / mean, np.nan)


def hour_profile(f: np.ndarray, minute: np.ndarray, n: int, hour: np.ndarray, p_value: float = 1e-4,
                 floor: float = 0.001, long_idle_minutes: int = 720, min_active_minutes: int = 12) -> np.ndarray:
    """Per function, its activity by hour of day (active minutes per minute of that hour, over its
    mean; exposure = the window's minutes in each hour), smoothed over neighbouring hours, floored at
    `floor` (hours it is never active in pass almost at once in its operational time, as its idle
    periods over them did in the trace), mean 1 over the window; all ones unless the function's active minutes depart from an
    even spread over the hours at significance `p_value` (chi-square over active minutes, divided by
    the mean busy-period length; at least 24 busy periods): most functions keep one clock,
    only those with a clear time-of-day pattern (office hours, nightly jobs) get their own. Their
    idle periods are then measured and drawn in their operational time (the activity summed over
    the minutes), so their busy periods fall at the hours they fall at in the trace.

    A function with a daily phase (office hours, a night batch) at a high rate has one or two long
    busy periods a window, too few for the test; it is shaped as well when one silent stretch holds
    most of its idle time: its longest idle period (circularly over the window, as the fit counts
    it) is at least `long_idle_minutes` (half a day) and at least 3/4 of its idle minutes, with at least
    `min_active_minutes` active minutes. Otherwise its model would draw that stretch (its night)
    anywhere, as an interior gap. Profiles are not smoothed: on/off hours stay sharp."""
    from scipy import stats

    exposure = np.bincount(hour, minlength=24).astype(float)
    seen = exposure > 0
    active = np.bincount(f * 24 + hour[minute], minlength=n * 24).reshape(n, 24).astype(float)
    total = active.sum(axis=1)
    expected = total[:, None] * exposure / exposure.sum()
    # active minutes come in runs (busy periods), not one by one: the statistic is divided by the mean
    # run length (the design effect of that clustering), or chance bursts would read as a daily pattern
    run_start = np.ones(len(f), dtype=bool)
    run_start[1:] = (f[1:] != f[:-1]) | (minute[1:] != minute[:-1] + 1)
    runs = np.bincount(f[run_start], minlength=n)
    with np.errstate(divide="ignore", invalid="ignore"):
        chi2 = np.where(seen, (active - expected) ** 2 / np.where(expected > 0, expected, 1), 0).sum(axis=1)
        chi2 = chi2 / np.where(runs > 0, total / np.maximum(runs, 1), 1)
    shaped = (runs >= 24) & (stats.chi2.sf(chi2, max(int(seen.sum()) - 1, 1)) < p_value)
    # idle periods between consecutive active minutes, plus the one across the window's edge
    window = len(hour)
    same = f[1:] == f[:-1]
    gap, owner = (np.diff(minute) - 1)[same], f[1:][same]
    longest = np.zeros(n)
    np.maximum.at(longest, owner, gap)
    first = np.full(n, -1, dtype=np.int64)
    last = np.full(n, -1, dtype=np.int64)
    first[f[::-1]] = minute[::-1]
    last[f] = minute
    wrap = np.where(first >= 0, first + window - last - 1, 0)
    longest = np.maximum(longest, wrap)
    idle_total = window - total
    phased = ((total >= min_active_minutes) & (longest >= long_idle_minutes)
              & (longest >= 0.75 * np.maximum(idle_total, 1)))
    shaped = shaped | phased
    profile = np.ones((n, 24))
    if shaped.any() and seen.sum() > 1:
        relative = np.where(seen, active[shaped] / np.where(seen, exposure, 1), 0.0)
        relative /= (relative * exposure).sum(axis=1, keepdims=True) / exposure.sum()
        relative = np.maximum(relative, floor)
        relative /= (relative * exposure).sum(axis=1, keepdims=True) / exposure.sum()
        profile[shaped] = relative
    return profile


def diurnal_multiplier(hourly_requests: np.ndarray) -> np.ndarray:
    """Per minute of the day: requests in that hour of the day over the mean hour (hours with no
    request count as the mean), a step per hour, the scale of the trace's own hourly profile."""
    hourly = np.asarray(hourly_requests, dtype=float)
    seen = hourly > 0
    if not seen.any():
        return np.ones(MINUTES_PER_DAY)
    profile = np.where(seen, hourly / hourly[seen].mean(), 1.0)
    return np.repeat(profile / profile.mean(), 60)


def fit(con, start_minute: int, minutes: int, first_day: int, triggers: tuple[str, ...] = (),
        quantiles: int = QUANTILES, source: dict | None = None, rate_scale: float = 1.0,
        rng: np.random.Generator | None = None) -> WorkloadModel:
    """Fit the model on the trace window [start_minute, start_minute + minutes) (minutes from the
    start of `first_day`), over the functions present in it (rows with no invocation included).

    With `rate_scale` != 1 the model is fitted on the trace at that rate: every minute's count
    scaled and stochastically rounded as the replay does (`requests.scaled_counts`, with `rng`),
    minutes left with no invocation dropped. Thinning a trace removes the single-invocation minutes
    where the trace has them (the edges and quiet stretches of its busy periods, its rare
    functions), so the busy and idle periods of the thinned trace are not those of a process fitted
    at rate 1 and thinned afterwards (counts there are drawn independently of the on/off state):
    the model is fitted on what the workload is to reproduce, and sampled without further scaling."""
    end = start_minute + minutes
    trigger_filter = ""
    if triggers:
        trigger_filter = "AND f.trigger IN (" + ", ".join(f"'{t}'" for t in triggers) + ")"
    t = f"((i.day - {first_day}) * {MINUTES_PER_DAY} + i.minute - 1)"
    functions = frame(con, f"""
        SELECT f.function_id, f.trigger FROM functions f
        WHERE f.function_id IN (
            SELECT function_id FROM function_days
            WHERE (day - {first_day}) * {MINUTES_PER_DAY} < {end} AND (day - {first_day} + 1) * {MINUTES_PER_DAY} > {start_minute})
        {trigger_filter}
        ORDER BY f.function_id""")
    if functions.height == 0:
        raise ManyModelsError("no trace function matches the window and trigger filter")
    con.register("fit_functions", functions.with_row_index("f").to_arrow())
    cells = frame(con, f"""
        SELECT ff.f::BIGINT AS f, ({t} - {start_minute})::BIGINT AS minute, i.count::BIGINT AS count
        FROM invocations i JOIN fit_functions ff USING (function_id)
        WHERE {t} >= {start_minute} AND {t} < {end}
        ORDER BY f, minute""")
    con.unregister("fit_functions")
    f = cells["f"].to_numpy()
    minute = cells["minute"].to_numpy()
    count = cells["count"].to_numpy()
    if rate_scale != 1.0:
        count = scaled_counts(count, rate_scale, rng if rng is not None else np.random.default_rng(0))
        kept = count > 0
        f, minute, count = f[kept], minute[kept], count[kept]
    n = functions.height
    minute_of_day = (start_minute + minute) % MINUTES_PER_DAY
    hourly = np.bincount(minute_of_day // 60, weights=count - 1, minlength=24)  # what it modulates
    diurnal = diurnal_multiplier(hourly)
    per_window_minute = diurnal[(start_minute + np.arange(minutes)) % MINUTES_PER_DAY]
    starts = np.searchsorted(f, np.arange(n + 1))
    hour = ((start_minute + np.arange(minutes)) % MINUTES_PER_DAY) // 60
    profile = hour_profile(f, minute, n, hour)
    busy, idle, extra, first_active = _fit_tables(starts, minute, count, per_window_minute, minutes,
                                                  quantiles, profile, ~np.all(profile == 1.0, axis=1), hour)
    trigger_index = {name: i for i, name in enumerate(TRIGGERS)}
    return WorkloadModel(
        window_minutes=minutes, start_minute_of_day=start_minute % MINUTES_PER_DAY,
        trigger=np.array([trigger_index.get(x, len(TRIGGERS) - 1) for x in functions["trigger"]], dtype=np.int8),
        requests=np.bincount(f, weights=count, minlength=n).astype(np.int64),
        active_minutes=np.bincount(f, minlength=n).astype(np.int64),
        first_active=first_active, busy_table=busy, idle_table=idle, extra_table=extra,
        diurnal=diurnal, iat_cv=gap_cv(f, minute, n), hour_profile=profile, source=dict(source or {}, start_minute=start_minute, minutes=minutes,
                                     triggers=list(triggers), rate_scale=rate_scale))


# -------------------------------------------------------------------------------- sample
@dataclass
class Population:
    """Per workload model: the function whose features it draws, and its kernel perturbation."""

    source: np.ndarray       # int64 function index
    idle_scale: np.ndarray   # float64 multiplier of idle-period lengths
    busy_scale: np.ndarray   # float64 multiplier of busy-period lengths
    count_scale: np.ndarray  # float64 multiplier of requests per active minute beyond the first
    round_offset: np.ndarray  # float64 in [0, 1): period lengths are floor(scaled length + offset), so
    #                           a model's constant periods stay constant (periodic stays periodic)
    stratum: np.ndarray       # int64 (models, 3): where each model starts in its busy, idle and count tables


def _silverman(values: np.ndarray) -> float:
    values = values[np.isfinite(values)]
    if len(values) < 2:
        return 0.0
    spread = min(values.std(), (np.quantile(values, 0.75) - np.quantile(values, 0.25)) / 1.349)
    return float(0.9 * spread * len(values) ** -0.2)


def sampling_order(model: WorkloadModel, k: int, rng: np.random.Generator) -> np.ndarray:
    """Function indices in the order a systematic sample of k of them walks (`systematic_sample`).

    By popularity first: from the most to the least requested (then by active minutes; the
    remaining ties, such as the functions never invoked in the window, in a seeded random order).
    Then, past the head, the order within consecutive blocks of strata (a block of strata starting
    at stratum i spans max(1, i // 4) strata, so the head keeps its exact popularity order and a
    block never spans more than a fifth of the ranks before it) is by the function's IAT CV: the
    sample is stratified on burstiness too within each popularity band, which a popularity order
    alone leaves to chance."""
    n = model.functions
    order = np.lexsort((rng.random(n), -model.active_minutes, -model.requests))
    if k <= 0 or k >= n:
        return order
    step = n / k
    cv = np.nan_to_num(model.iat_cv[order], nan=-1.0)  # no CV (fewer than 2 gaps) first in a block
    tiebreak = np.arange(n)
    block = np.zeros(n, dtype=np.int64)
    stratum, index = 0, 0
    while stratum < k:
        stop = min(k, stratum + max(1, stratum // 4))
        block[int(np.floor(stratum * step)):int(np.floor(stop * step)) if stop < k else n] = index
        stratum, index = stop, index + 1
    return order[np.lexsort((tiebreak, cv, block))]


def systematic_sample(ordered: np.ndarray, k: int, rng: np.random.Generator, weight: np.ndarray | None = None,
                      tries: int = 16) -> np.ndarray:
    """k of the `ordered` items, one in each of k equal consecutive strata, at one random offset
    (systematic sampling): every quantile of the ordering keeps its share of the sample. Drawn
    without replacement at random instead, a heavy-tailed population keeps or loses its few giants
    by chance (the top 1% of 1,000 models is 10 of them), and with them the top shares and the
    cache's working set. With `weight` (per item, in `ordered`'s order), the offset is the best of
    `tries` seeded random ones for the total: the sample's weight times n / k closest to the
    population's (balanced sampling: the sample's volume is the population's share, whichever of
    two neighbouring giants a stratum keeps)."""
    n = len(ordered)
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    offsets = rng.random(tries if weight is not None else 1)
    positions = np.minimum(np.floor((np.arange(k)[None, :] + offsets[:, None]) * (n / k)).astype(np.int64), n - 1)
    best = 0
    if weight is not None:
        best = int(np.argmin(np.abs(weight[positions].sum(axis=1) * (n / k) - weight.sum())))
    return np.sort(ordered[positions[best]]).astype(np.int64)


def sample_population(model: WorkloadModel, n_models: int, rng: np.random.Generator) -> Population:
    """Each model's feature vector drawn from the empirical joint distribution of the trace's
    functions, a systematic sample over their popularity order (`systematic_sample`); past the
    number of functions, every function as many whole times as fit and a systematic sample of
    them for the rest, all but the first copy kernel-smoothed (Silverman bandwidths)."""
    n_functions = model.functions
    if n_models <= n_functions:
        order = sampling_order(model, n_models, rng)
        source = systematic_sample(order, n_models, rng, weight=model.requests[order].astype(float))
        ones = np.ones(n_models)
        return Population(source, ones, ones.copy(), ones.copy(), np.full(n_models, 0.5),
                          rng.integers(0, model.busy_table.shape[1], (n_models, 3)))
    copies, remainder = divmod(n_models, n_functions)
    order = sampling_order(model, remainder, rng)
    source = np.concatenate([np.tile(np.arange(n_functions), copies),
                             systematic_sample(order, remainder, rng, weight=model.requests[order].astype(float))])
    jittered = np.arange(n_models) >= n_functions
    active = model.active_minutes > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        log_idle = np.log(model.idle_table.mean(axis=1))
        log_busy = np.log(model.busy_table.mean(axis=1))
        log_extra = np.log(model.extra_table.mean(axis=1))
    scales = []
    for values in (log_idle, log_busy, log_extra):
        h = _silverman(values[active])
        # mean-preserving lognormal kernel: E[scale] = 1, so a kernel draw keeps its source's expected periods
        scales.append(np.where(jittered, np.exp(rng.normal(-h * h / 2, h, n_models)), 1.0))
    offset = np.where(jittered, rng.random(n_models), 0.5)
    return Population(source, scales[0], scales[1], scales[2], offset,
                      rng.integers(0, model.busy_table.shape[1], (n_models, 3)))


def bit_reversed(k: int) -> np.ndarray:
    """0..k-1 in bit-reversed order (k a power of two): any 2^m consecutive entries (cyclically) fall
    in 2^m different strata of the sorted table, so consecutive draws cover a model's own
    distribution evenly (stratified resampling: the same marginal, less sampling noise)."""
    bits = int(k).bit_length() - 1
    if 1 << bits != k:
        raise ValueError(f"table size {k} is not a power of two")
    index = np.arange(k)
    return np.array([int(format(i, f"0{bits}b")[::-1], 2) if bits else 0 for i in index], dtype=np.int64)


@numba.njit(cache=True)
def _rounded(value):
    """Stochastic rounding (of request counts): the mean is kept."""
    whole = np.floor(value)
    return np.int64(whole) + (1 if np.random.random() < value - whole else 0)


@numba.njit(cache=True)
def _length_biased(row, scale, offset):
    """A period in progress at a random instant: a table entry picked with probability proportional
    to its length; (the part of it still to run, 1..length; the entry's index)."""
    total = row.sum()
    u = np.random.random() * total
    acc = 0.0
    index = len(row) - 1
    for i in range(len(row)):
        acc += row[i]
        if u < acc:
            index = i
            break
    length = max(np.int64(np.floor(row[index] * scale + offset)), 1)
    return 1 + np.int64(np.floor(np.random.random() * length)), index


@numba.njit(cache=True)
def _initial_state(seed, source, first_active, busy_table, idle_table, busy_scale, idle_scale, round_offset,
                   stratum, order, profile, shaped, hour):
    """Each model starts in the stationary state of its own on/off process: busy with probability
    mean busy / (mean busy + mean idle), inside a length-biased period (a renewal process observed
    from a random instant, as the trace's window observes each function); the stratified cycle of
    that table continues from the period it started in (bit reversal is its own inverse)."""
    np.random.seed(seed)
    n = len(source)
    state = np.zeros(n, dtype=np.int8)
    change_at = np.zeros(n, dtype=np.int64)
    for j in range(n):
        f = source[j]
        if first_active[f] < 0:
            change_at[j] = np.int64(1) << 62
            continue
        busy = busy_table[f].mean() * busy_scale[j]
        idle = idle_table[f].mean() * idle_scale[j]
        busy_probability = busy / (busy + idle) if idle > 0 else 1.0
        if shaped[f]:  # its profile is its active minutes per minute by hour over the mean: scale the chance
            busy_probability = min(1.0, busy_probability * profile[f, hour[0]])
        if idle <= 0 or np.random.random() < busy_probability:
            state[j] = 1
            change_at[j], index = _length_biased(busy_table[f], busy_scale[j], round_offset[j])
            stratum[j, 0] = order[index] + 1
        else:
            change_at[j], index = _length_biased(idle_table[f], idle_scale[j], round_offset[j])
            if shaped[f]:
                change_at[j] = max(_real_length(profile[f], hour, 0, change_at[j]), 1)
            stratum[j, 1] = order[index] + 1
    return state, change_at


@numba.njit(cache=True)
def _block(seed, block_start, block_end, source, idle_scale, busy_scale, count_scale, round_offset, stratum, order,
            busy_table,
           idle_table, extra_table, multiplier, state, change_at, out_model, out_minute, out_count,
           model_offset, profile, shaped, hour):
    """Advance every model's on/off process over [block_start, block_end); write its active minutes
    and their request counts; return how many were written."""
    np.random.seed(seed)
    k = len(order)
    written = 0
    for j in range(len(source)):
        f = source[j]
        t = block_start
        while t < block_end:
            if change_at[j] <= t:
                if state[j] == 1:
                    length = np.int64(np.floor(idle_table[f, order[stratum[j, 1] % k]] * idle_scale[j]
                                              + round_offset[j]))
                    stratum[j, 1] += 1
                    state[j] = 0
                    if shaped[f] and length > 0:  # drawn in the function's operational time
                        length = _real_length(profile[f], hour, change_at[j], length)
                    change_at[j] += max(length, 0)
                else:
                    length = np.int64(np.floor(busy_table[f, order[stratum[j, 0] % k]] * busy_scale[j]
                                               + round_offset[j]))
                    stratum[j, 0] += 1
                    state[j] = 1
                    change_at[j] += max(length, 1)
                continue
            end = min(change_at[j], block_end)
            if state[j] == 1:
                for m in range(t, end):
                    value = extra_table[f, order[stratum[j, 2] % k]] * count_scale[j] * multiplier[m]
                    stratum[j, 2] += 1
                    extra = _rounded(value)
                    out_model[written] = j + model_offset
                    out_minute[written] = m
                    out_count[written] = 1 + extra
                    written += 1
            t = end
    return written


def sample_blocks(model: WorkloadModel, population: Population, minutes: int, block_minutes: int,
                  start_minute_of_day: int, rng: np.random.Generator
                  ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(model_id, minute, count) of every active minute, one block of minutes at a time."""
    n = len(population.source)
    minute_multiplier = model.diurnal[(start_minute_of_day + np.arange(minutes)) % MINUTES_PER_DAY]
    order = bit_reversed(model.busy_table.shape[1])
    strata = population.stratum.astype(np.int64).copy()
    hour = ((start_minute_of_day + np.arange(minutes)) % MINUTES_PER_DAY) // 60
    profile = model.hour_profile.astype(np.float64)
    shaped = ~np.all(profile == 1.0, axis=1)
    chunks = []
    for lo in range(0, n, MODEL_CHUNK):
        hi = min(n, lo + MODEL_CHUNK)
        source = population.source[lo:hi].astype(np.int64)
        state, change_at = _initial_state(int(rng.integers(0, 2**31 - 1)), source, model.first_active,
                                          model.busy_table, model.idle_table, population.busy_scale[lo:hi],
                                          population.idle_scale[lo:hi], population.round_offset[lo:hi],
                                          strata[lo:hi], order, profile, shaped, hour)
        chunks.append((lo, source, state, change_at))
    for block_start in range(0, minutes, block_minutes):
        block_end = min(block_start + block_minutes, minutes)
        parts = []
        for lo, source, state, change_at in chunks:
            hi = lo + len(source)
            capacity = len(source) * (block_end - block_start)
            out_model = np.empty(capacity, dtype=np.int32)
            out_minute = np.empty(capacity, dtype=np.int64)
            out_count = np.empty(capacity, dtype=np.int64)
            written = _block(int(rng.integers(0, 2**31 - 1)), block_start, block_end, source,
                             population.idle_scale[lo:hi], population.busy_scale[lo:hi],
                             population.count_scale[lo:hi], population.round_offset[lo:hi],
                             strata[lo:hi], order, model.busy_table, model.idle_table,
                             model.extra_table, minute_multiplier, state, change_at, out_model, out_minute,
                             out_count, lo, profile, shaped, hour)
            parts.append((out_model[:written], out_minute[:written], out_count[:written]))
        if len(parts) == 1:
            yield parts[0]
        else:
            yield tuple(np.concatenate([p[i] for p in parts]) for i in range(3))  # type: ignore[misc]


def expected_rates(model: WorkloadModel, population: Population) -> tuple[np.ndarray, np.ndarray]:
    """Per workload model: expected requests per day and idle fraction, from its source function."""
    src = population.source
    window = model.window_minutes
    active = model.active_minutes[src] / window
    per_active = np.where(model.active_minutes[src] > 0,
                          model.requests[src] / np.maximum(model.active_minutes[src], 1), 0.0)
    busy = model.busy_table[src].mean(axis=1) * population.busy_scale
    idle = model.idle_table[src].mean(axis=1) * population.idle_scale
    duty = np.where(busy + idle > 0, busy / np.maximum(busy + idle, 1e-12), 0.0)
    duty = np.where(population.idle_scale == 1.0, active, duty)
    rate = duty * MINUTES_PER_DAY * (1 + (per_active - 1) * population.count_scale)
    return rate, 1.0 - duty
