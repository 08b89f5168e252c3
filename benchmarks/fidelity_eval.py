"""Quick fidelity harness for the parametric generator (until `manymodels fidelity` lands).

For each trace directory: ingest, write the reference (replay of every function in the window,
one model per function) and a parametric candidate with as many models, same window, binding,
seed and rate scale; then compare them at minute resolution:

- two-sample KS D (scipy.stats.ks_2samp) of requests per model, idle fraction per model, pooled
  idle-period lengths (runs of zero minutes between active minutes), IAT CV per model (gaps
  between active minutes, models with >= 3 active minutes);
- top-1% and top-10% request shares; hourly profile (requests per hour / mean hour), max diff;
- no-latency LRU, GDSF (cost = load_ms) and keep-alive TTL (10 min, LRU under memory pressure)
  hit ratios at 5/10/25/50% of the reference's requested-model memory. The cache is simulated on
  (model, minute) accesses: the first request of a model in a minute is a hit if it is resident,
  the others in that minute are hits (the model was just loaded or touched); models active in the
  same minute are visited in a seeded random order. An approximation of the request-level
  simulator that treats both workloads alike.

    python benchmarks/fidelity_eval.py --trace DIR [--trace DIR ...] --work /tmp/fid --minutes 1440

Prints one markdown table (one row per trace) and writes it with the JSON to --out.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numba
import numpy as np
import polars as pl
from scipy import stats

os.environ.setdefault("MANYMODELS_NO_PROGRESS", "1")

TTL_MIN = 10
MEMORY_FRACTIONS = (0.05, 0.10, 0.25, 0.50)


def minute_table(workload: Path, minutes: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    requests = pl.scan_parquet(workload / "requests.parquet")
    per_minute = (requests.group_by("model_id", (pl.col("t_ms") // 60_000).alias("minute"))
                  .agg(pl.len().alias("count")).sort("model_id", "minute").collect())
    models = pl.read_parquet(workload / "models.parquet")
    return per_minute, models


def model_stats(per_minute: pl.DataFrame, n_models: int, minutes: int) -> dict[str, np.ndarray]:
    model = per_minute["model_id"].to_numpy().astype(np.int64)
    minute = per_minute["minute"].to_numpy().astype(np.int64)
    count = per_minute["count"].to_numpy().astype(np.int64)
    requests = np.bincount(model, weights=count, minlength=n_models)
    active = np.bincount(model, minlength=n_models)
    idle_fraction = 1.0 - active / minutes
    same = model[1:] == model[:-1]
    gaps = (minute[1:] - minute[:-1])[same]
    gap_model = model[1:][same]
    idle_periods = gaps[gaps > 1] - 1
    n_gaps = np.bincount(gap_model, minlength=n_models)
    s1 = np.bincount(gap_model, weights=gaps, minlength=n_models)
    s2 = np.bincount(gap_model, weights=gaps.astype(float) ** 2, minlength=n_models)
    ok = n_gaps >= 2
    mean = s1[ok] / n_gaps[ok]
    var = np.maximum(s2[ok] / n_gaps[ok] - mean**2, 0)
    iat_cv = np.sqrt(var) / mean
    hourly = np.bincount(minute // 60, weights=count, minlength=(minutes + 59) // 60)
    hour_of_day = np.bincount(np.arange(len(hourly)) % 24, weights=hourly, minlength=24)
    return {"requests": requests, "idle_fraction": idle_fraction, "idle_periods": idle_periods,
            "iat_cv": iat_cv, "hour_profile": hour_of_day / hour_of_day.mean()}


def top_share(requests: np.ndarray, fraction: float) -> float:
    ordered = np.sort(requests)[::-1]
    k = max(1, int(np.ceil(fraction * len(ordered))))
    return float(ordered[:k].sum() / max(ordered.sum(), 1))


@numba.njit(cache=True)
def _cache(model, count, size, cost, memory, policy, ttl_minutes, minute):
    """policy 0 = LRU, 1 = GDSF, 2 = TTL (LRU + expiry). Returns hits."""
    n = len(size)
    resident = np.zeros(n, dtype=np.bool_)
    last = np.full(n, -1, dtype=np.int64)   # LRU stamp (access sequence)
    last_minute = np.zeros(n, dtype=np.int64)
    freq = np.zeros(n, dtype=np.float64)
    prio = np.zeros(n, dtype=np.float64)
    members = np.empty(n, dtype=np.int64)
    n_res = 0
    used = 0.0
    inflation = 0.0
    hits = 0
    previous = -1
    for i in range(len(model)):
        m = model[i]
        now = minute[i]
        if policy == 2 and now != previous:
            previous = now
            j = 0
            while j < n_res:
                r = members[j]
                if now - last_minute[r] > ttl_minutes:
                    resident[r] = False
                    used -= size[r]
                    n_res -= 1
                    members[j] = members[n_res]
                else:
                    j += 1
        if resident[m]:
            hits += count[i]
            freq[m] += count[i]
        else:
            hits += count[i] - 1
            if size[m] > memory:
                continue
            while used + size[m] > memory and n_res > 0:
                best = 0
                for j in range(1, n_res):
                    a = members[j]
                    b = members[best]
                    if policy == 1:
                        if prio[a] < prio[b]:
                            best = j
                    else:
                        if last[a] < last[b]:
                            best = j
                v = members[best]
                if policy == 1:
                    inflation = max(inflation, prio[v])
                resident[v] = False
                used -= size[v]
                n_res -= 1
                members[best] = members[n_res]
            resident[m] = True
            used += size[m]
            members[n_res] = m
            n_res += 1
            freq[m] = count[i]
        last[m] = i
        last_minute[m] = now
        prio[m] = inflation + freq[m] * cost[m] / size[m]
    return hits


def hit_ratios(per_minute: pl.DataFrame, models: pl.DataFrame, memories: list[float], seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    order_key = rng.random(per_minute.height)
    frame = per_minute.with_columns(pl.Series("k", order_key)).sort("minute", "k")
    model = frame["model_id"].to_numpy().astype(np.int64)
    count = frame["count"].to_numpy().astype(np.int64)
    minute = frame["minute"].to_numpy().astype(np.int64)
    size = models.sort("model_id")["size_mb"].to_numpy().astype(float)
    cost = models.sort("model_id")["load_ms"].to_numpy().astype(float)
    total = count.sum()
    out = {}
    for name, policy in (("lru", 0), ("gdsf", 1), ("ttl", 2)):
        out[name] = [float(_cache(model, count, size, cost, float(mem), policy, TTL_MIN, minute) / total)
                     for mem in memories]
    return out


def compare(reference: Path, candidate: Path, minutes: int) -> dict:
    ref_pm, ref_models = minute_table(reference, minutes)
    cand_pm, cand_models = minute_table(candidate, minutes)
    ref = model_stats(ref_pm, ref_models.height, minutes)
    cand = model_stats(cand_pm, cand_models.height, minutes)
    result = {}
    for key in ("requests", "idle_fraction", "idle_periods", "iat_cv"):
        result[f"ks_{key}"] = float(stats.ks_2samp(ref[key], cand[key]).statistic)
    for fraction, name in ((0.01, "top_1pct"), (0.10, "top_10pct")):
        result[f"{name}_ref"] = top_share(ref["requests"], fraction)
        result[f"{name}_cand"] = top_share(cand["requests"], fraction)
    result["hourly_max_abs_diff"] = float(np.abs(ref["hour_profile"] - cand["hour_profile"]).max())
    requested_mb = float(ref_models["size_mb"].to_numpy()[ref["requests"] > 0].sum())
    memories = [f * requested_mb for f in MEMORY_FRACTIONS]
    ref_hits, cand_hits = hit_ratios(ref_pm, ref_models, memories), hit_ratios(cand_pm, cand_models, memories)
    result["hit_ratio_max_abs_diff"] = max(abs(a - b) for k in ref_hits for a, b in zip(ref_hits[k], cand_hits[k]))
    result["hits"] = {"reference": ref_hits, "candidate": cand_hits}
    result["idle_q10"] = [float(np.quantile(ref["idle_fraction"], 0.1)), float(np.quantile(cand["idle_fraction"], 0.1))]
    result["models"] = [ref_models.height, cand_models.height]
    result["requests_total"] = [float(ref["requests"].sum()), float(cand["requests"].sum())]
    return result


def passes(r: dict) -> bool:
    return (max(r[k] for k in ("ks_requests", "ks_idle_fraction", "ks_idle_periods", "ks_iat_cv")) <= 0.05
            and abs(r["top_1pct_ref"] - r["top_1pct_cand"]) <= 0.03 and abs(r["top_10pct_ref"] - r["top_10pct_cand"]) <= 0.03
            and r["hourly_max_abs_diff"] <= 0.10 and r["hit_ratio_max_abs_diff"] <= 0.02)


def row(name: str, r: dict) -> str:
    return (f"| {name} | {r['models'][0]} | {r['ks_requests']:.3f} | {r['ks_idle_fraction']:.3f} | {r['ks_idle_periods']:.3f} | "
            f"{r['ks_iat_cv']:.3f} | {r['top_1pct_cand']:.3f} vs {r['top_1pct_ref']:.3f} | "
            f"{r['top_10pct_cand']:.3f} vs {r['top_10pct_ref']:.3f} | {r['hourly_max_abs_diff']:.3f} | "
            f"{r['hit_ratio_max_abs_diff']:.3f} | {r['idle_q10'][1]:.2f} vs {r['idle_q10'][0]:.2f} | "
            f"{'pass' if passes(r) else 'FAIL'} |")


HEADER = ("| trace | models | KS requests | KS idle frac | KS idle period | KS IAT CV | top-1% cand vs ref | "
          "top-10% cand vs ref | hourly max diff | hit ratio max diff | idle q10 cand vs ref | all targets |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|---|")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trace", action="append", required=True, help="trace directory (Azure 2019 schema)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/fidelity_eval"))
    parser.add_argument("--minutes", type=int, default=1440)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--binding", default="random")
    parser.add_argument("--rate-scale", type=float, default=1.0)
    parser.add_argument("--models-factor", type=float, default=1.0, help="candidate models = factor x reference")
    parser.add_argument("--label", default="")
    parser.add_argument("--noise-floor", action="store_true",
                        help="candidate = the replay of the NEXT window of the same trace (day 2 vs day 1): how far "
                             "two windows of one trace are apart, the floor any generator is measured against")
    parser.add_argument("--out", type=Path, default=None, help="append the table and JSON here")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from pipeline.trace.ingest import ingest
    from pipeline.workload.synthesize import WorkloadConfig, synthesize

    lines, results = [HEADER], {}
    for trace in args.trace:
        trace = Path(trace)
        name = trace.name if trace.name != "trace" else trace.parent.name
        work = args.work / name
        work.mkdir(parents=True, exist_ok=True)
        db = work / "trace.duckdb"
        ingest(trace, db, scheduler="threads")
        common = {"minutes": args.minutes, "seed": args.seed, "binding": args.binding, "rate_scale": args.rate_scale}
        ref = work / "reference"
        if not (ref / "manifest.json").exists() or json.loads((ref / "manifest.json").read_text())["parameters"][
                "minutes"] != args.minutes:
            synthesize(WorkloadConfig(mode="replay", selection="all", **common), ref, db=db)
        n = pl.read_parquet(ref / "models.parquet").height
        char = work / "characterization"
        if not (char / "fitted_params.json").exists():
            from pipeline.characterize.stage import characterize
            characterize(db, char, work / "char.json", scheduler="threads")
        if args.noise_floor:
            cand = work / "next_window"
            synthesize(WorkloadConfig(mode="replay", selection="all", start_minute=args.minutes, **common), cand, db=db)
        else:
            cand = work / "parametric"
            synthesize(WorkloadConfig(mode="parametric", models=round(n * args.models_factor), **common), cand,
                       db=db, characterization=char)
        result = compare(ref, cand, args.minutes)
        results[name] = result
        lines.append(row(name + args.label, result))
        print(lines[-1], flush=True)
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "a") as handle:
            handle.write(text + "\n\n")
        args.out.with_suffix(".json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
