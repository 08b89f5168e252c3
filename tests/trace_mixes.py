"""Test traces of different make-up, in the Azure 2019 schema (invocation files only), written
independently of `pipeline.trace.synthetic`: periodic timers (various periods, with and without
jitter), bursty on/off functions, Poisson functions at various rates (some diurnal), always-busy
functions and rare ones, in named mixes.

    python tests/trace_mixes.py --mix timers --functions 1500 --days 2 --seed 1 --out DIR

The parametric generator was tuned on MIXES_TUNED only; MIXES_HELD_OUT are for the final check
("office" was added by the gen2 helper and first evaluated with its final code; "nightbatch" by the gen3
helper, likewise).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import polars as pl

MINUTES = 1440

# share of functions per behaviour class, and the depth of the diurnal swing of Poisson/busy rates
MIXES = {
    "timers": {"timer": 0.45, "timer_jitter": 0.15, "poisson": 0.15, "bursty": 0.10, "busy": 0.05, "rare": 0.10,
               "diurnal": 0.3},
    "bursty": {"timer": 0.05, "timer_jitter": 0.05, "poisson": 0.15, "bursty": 0.55, "busy": 0.05, "rare": 0.15,
               "diurnal": 0.2},
    "rare": {"timer": 0.05, "timer_jitter": 0.05, "poisson": 0.15, "bursty": 0.10, "busy": 0.02, "rare": 0.63,
             "diurnal": 0.5},
    "busy_poisson": {"timer": 0.05, "timer_jitter": 0.05, "poisson": 0.50, "bursty": 0.05, "busy": 0.30,
                     "rare": 0.05, "diurnal": 0.4},
    "balanced": {"timer": 0.15, "timer_jitter": 0.10, "poisson": 0.25, "bursty": 0.20, "busy": 0.10, "rare": 0.20,
                 "diurnal": 0.0},
    # written by the gen2 helper and evaluated once, with its final code, never while tuning: a fifth of
    # the functions are office-hours ones (Poisson only inside a daily window of hours), a class no
    # other mix has
    "office": {"timer": 0.10, "timer_jitter": 0.10, "poisson": 0.25, "bursty": 0.15, "busy": 0.05, "rare": 0.15,
               "daytime": 0.20, "diurnal": 0.5},
    # written by the gen3 helper before any code change and evaluated once, with its final code: night-batch
    # functions (Poisson only inside a window of hours that wraps past midnight) next to office-hours ones,
    # timers and Poisson functions
    "nightbatch": {"timer": 0.20, "timer_jitter": 0.05, "poisson": 0.20, "bursty": 0.10, "busy": 0.05, "rare": 0.10,
                   "daytime": 0.10, "night": 0.20, "diurnal": 0.3},
}
MIXES_TUNED = ("timers", "bursty")
MIXES_HELD_OUT = ("rare", "busy_poisson", "balanced", "office", "nightbatch")
TRIGGER = {"timer": "timer", "timer_jitter": "timer", "poisson": "http", "bursty": "queue", "busy": "event",
           "rare": "http", "daytime": "http", "night": "timer"}  # a class a mix does not name has share 0
PERIODS_MIN = np.array([1, 2, 3, 5, 10, 15, 30, 60, 120, 240, 720, 1440])


def _diurnal(total_minutes: int, depth: float) -> np.ndarray:
    t = np.arange(total_minutes)
    return 1.0 + depth * np.sin(2 * np.pi * (t % MINUTES) / MINUTES - np.pi / 2)


def counts_matrix(mix: str, functions: int, days: int, seed: int) -> tuple[np.ndarray, list[str]]:
    """(functions, days * 1440) invocation counts and each function's behaviour class."""
    spec = MIXES[mix]
    rng = np.random.default_rng(seed)
    classes = [c for c in TRIGGER]
    shares = np.array([spec.get(c, 0.0) for c in classes])
    kind = rng.choice(len(classes), size=functions, p=shares / shares.sum())
    total = days * MINUTES
    wave = _diurnal(total, spec["diurnal"])
    counts = np.zeros((functions, total), dtype=np.int64)
    for f in range(functions):
        name = classes[kind[f]]
        if name in ("timer", "timer_jitter"):
            period = int(rng.choice(PERIODS_MIN))
            phase = int(rng.integers(0, period))
            fires = np.arange(phase, total, period)
            if name == "timer_jitter" and period > 2:
                fires = np.clip(fires + rng.integers(-(period // 4), period // 4 + 1, len(fires)), 0, total - 1)
            np.add.at(counts[f], fires, 1 + (rng.random() < 0.2) * rng.integers(0, 5))
        elif name == "poisson":
            rate = np.exp(rng.uniform(np.log(0.002), np.log(30)))  # per minute
            counts[f] = rng.poisson(rate * (wave if rng.random() < 0.6 else 1.0))
        elif name == "bursty":
            on_mean, off_mean = rng.uniform(1, 30), np.exp(rng.uniform(np.log(5), np.log(600)))
            rate = np.exp(rng.uniform(np.log(0.5), np.log(50)))
            t, on = int(rng.integers(0, int(off_mean) + 1)), True
            while t < total:
                length = 1 + rng.geometric(1 / on_mean) if on else int(rng.lognormal(np.log(off_mean), 1.0)) + 1
                if on:
                    counts[f, t:t + length] = 1 + rng.poisson(rate, min(length, total - t))
                t += length
                on = not on
        elif name == "daytime":  # office hours: Poisson inside [start, start + hours) of every day, silent outside
            start, hours = int(rng.integers(6, 11)), int(rng.integers(6, 11))
            rate = np.exp(rng.uniform(np.log(0.05), np.log(20)))
            open_hours = ((np.arange(total) % MINUTES) // 60 >= start) & ((np.arange(total) % MINUTES) // 60 < start + hours)
            counts[f] = rng.poisson(rate * open_hours)
        elif name == "night":  # night batch: Poisson inside [start, start + hours) wrapping past midnight
            start, hours = int(rng.integers(20, 24)), int(rng.integers(3, 9))
            rate = np.exp(rng.uniform(np.log(0.1), np.log(30)))
            hour_of_day = (np.arange(total) % MINUTES) // 60
            counts[f] = rng.poisson(rate * (((hour_of_day - start) % 24) < hours))
        elif name == "busy":
            rate = np.exp(rng.uniform(np.log(5), np.log(300)))
            counts[f] = rng.poisson(rate * wave)
        else:  # rare: a handful of invocations a day at random times
            n = rng.poisson(rng.uniform(0.2, 8) * days)
            np.add.at(counts[f], rng.integers(0, total, n), 1)
    return counts, [classes[k] for k in kind]


def write_trace(mix: str, functions: int, days: int, seed: int, out: Path) -> Path:
    """Write invocations_per_function_md.anon.dNN.csv for each day; return `out`."""
    counts, kinds = counts_matrix(mix, functions, days, seed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ids = {"HashOwner": [f"o{f // 3}" for f in range(functions)], "HashApp": [f"a{f // 3}" for f in range(functions)],
           "HashFunction": [f"f{f}" for f in range(functions)], "Trigger": [TRIGGER[k] for k in kinds]}
    for day in range(days):
        block = counts[:, day * MINUTES:(day + 1) * MINUTES]
        frame = pl.DataFrame({**ids, **{str(m + 1): block[:, m] for m in range(MINUTES)}})
        frame.write_csv(out / f"invocations_per_function_md.anon.d{day + 1:02d}.csv")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mix", choices=sorted(MIXES), required=True)
    parser.add_argument("--functions", type=int, default=1500)
    parser.add_argument("--days", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    write_trace(args.mix, args.functions, args.days, args.seed, args.out)


if __name__ == "__main__":
    main()
