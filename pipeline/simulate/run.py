"""`manymodels simulate` and `manymodels sweep`: read a workload, run the core, write metrics."""

from __future__ import annotations

import itertools
import json
import math
import time
from pathlib import Path

import numpy as np
import polars as pl

from ..cluster import map_on_cluster
from ..errors import ManyModelsError
from ..files import atomic_output_dir
from ..logs import log
from ..workload.catalog import EMBEDDED_CATALOG_PATH, default_catalog_path, load_catalog_mechanisms
from ..workload.layout import check_requests, read_workload_tables
from .core import RunResult, Workload, simulate
from .mechanisms import check_mechanisms, parse_learned_cache
from .policies import REGISTRY, make_policy
from .summary import SWEEP_DIMENSIONS


def load_workload(directory: Path, verify: bool = True) -> tuple[Workload, dict]:
    """The workload, checked: files against the manifest (checksums, row counts; skipped with
    verify=False, e.g. in sweep tasks after the sweep checked once), then the rows themselves."""
    directory = Path(directory)
    requests, models, manifest = read_workload_tables(directory, verify=verify)
    models = models.sort("model_id")
    if not np.array_equal(models["model_id"].to_numpy(), np.arange(models.height)):
        raise ManyModelsError(f"{directory / 'models.parquet'}: model_id must be 0..N-1")
    check_requests(directory / "requests.parquet", requests, models.height)
    workload = Workload(
        requests["t_ms"].to_numpy(), requests["model_id"].to_numpy(), models["size_mb"].to_numpy(),
        models["load_ms"].to_numpy(), models["exec_ms"].to_numpy(), models["unload_ms"].to_numpy(), directory.name)
    workload.catalog, workload.catalog_index = workload_catalog(directory, models, manifest)
    return workload, manifest


def workload_catalog(directory: Path, models: pl.DataFrame, manifest: dict) -> tuple:
    """The catalog the workload was bound to (the manifest's `catalog.path`: the embedded one, or a
    user's file relative to the working directory) with the memory mechanisms' columns, and each
    model's row in it (-1: not in it). (None, None) when the workload names no catalog model or
    the file is gone: every model is then its own catalog entry (logged)."""
    path = (manifest.get("catalog") or {}).get("path")
    if "catalog_model" not in models.columns:
        return None, None
    if path in (None, EMBEDDED_CATALOG_PATH):
        file = default_catalog_path()
    else:
        file = Path(path) if Path(path).is_absolute() or Path(path).exists() else directory / path
    if not file.exists():
        log.warning("%s: catalog %s not found; memory mechanisms treat every model as its own catalog entry",
                    directory, path)
        return None, None
    catalog = load_catalog_mechanisms(file)
    row = {name: j for j, name in enumerate(catalog["model"].to_list())}
    index = np.array([row.get(name, -1) for name in models["catalog_model"].to_list()], dtype=np.int64)
    return catalog, index


def check_policy(name: str) -> None:
    if name not in REGISTRY and ":" not in name:
        make_policy(name, None)  # raises the error listing the valid names


OVERLOAD_DRAIN_FRACTION = 0.1  # of the run's span
OVERLOAD_DRAIN_MIN_MS = 60_000.0
OVERLOAD_TIMED_OUT_RATIO = 0.01


def overloaded(result: RunResult, workload: Workload) -> bool:
    """True when the backlog did not stay bounded over the run: the work queued at the last arrival
    takes more than a tenth of the run's span (and more than a minute) to drain, or more than 1%
    of the requests timed out (`max_wait_ms`). A server that keeps up drains in about one load
    plus one inference; one whose queue grows through the run drains in hours."""
    n = len(workload.t_ms)
    if n == 0:
        return False
    first, last = float(workload.t_ms[0]), float(workload.t_ms[-1])
    drain_ms = result.end_ms - last
    timed_out = int(result.timed_out.sum()) if len(result.timed_out) else 0
    return bool(drain_ms > max(OVERLOAD_DRAIN_FRACTION * (last - first), OVERLOAD_DRAIN_MIN_MS)
                or timed_out > OVERLOAD_TIMED_OUT_RATIO * n)


def memory_time_mb_min(result: RunResult, workload: Workload) -> float:
    """Memory in use integrated over the run (MB x minutes), until the last completion."""
    mem_t, mem_used = result.memory_events
    if len(mem_t) == 0:
        return 0.0
    end = max(float(result.end_ms), float(workload.t_ms[-1]) if len(workload.t_ms) else 0.0, float(mem_t[-1]))
    spans = np.diff(np.append(mem_t.astype(float), end))
    return float((mem_used * spans).sum() / 60_000.0)


def percentiles(values: np.ndarray, q: list[float]) -> list[float]:
    """np.percentile(values, q) as floats; a constant array (e.g. every latency zero without
    latency) is its own percentile, so the partition is skipped."""
    low, high = values.min(), values.max()
    if low == high and np.isfinite(low):
        return [float(low)] * len(q)
    return np.percentile(values, q).tolist()


def summarize(result: RunResult, workload: Workload) -> dict:
    n = len(result.hits)
    timed_out = result.timed_out if len(result.timed_out) == n else np.zeros(n, dtype=bool)
    hits = int(np.count_nonzero(result.hits))
    rejected = int(np.count_nonzero(result.rejected))
    if rejected or timed_out.any():
        served = ~result.rejected & ~timed_out
        latency, exec_ms = result.latency_ms[served], result.exec_ms[served]
    else:  # every request served: no copies
        served = None
        latency, exec_ms = result.latency_ms, result.exec_ms
    excess = latency - exec_ms if exec_ms.any() else latency  # x - 0.0 == x
    quantiles = percentiles(latency, [50, 95, 99]) if len(latency) else [None] * 3
    mem_used = result.memory_events[1]
    return {
        "requests": int(n),
        "hits": hits,
        "misses": int(n - hits),
        "hit_ratio": float(result.hits.mean()) if n else None,
        "cold_starts": int(np.count_nonzero(result.cold)),
        "waits_on_load": int(n - np.count_nonzero(result.hits | result.cold | result.rejected)),
        "rejected": rejected,
        "rejected_ratio": float(result.rejected.mean()) if n else None,  # models larger than the memory
        "evictions": int(result.evictions),
        "bytes_loaded": int(result.bytes_loaded),
        "latency_mean_ms": float(latency.mean()) if len(latency) else None,
        "latency_p50_ms": quantiles[0],
        "latency_p95_ms": quantiles[1],
        "latency_p99_ms": quantiles[2],
        "excess_latency_mean_ms": float(excess.mean()) if len(excess) else None,
        "excess_latency_p99_ms": percentiles(excess, [99])[0] if len(excess) else None,
        "memory_peak_mb": float(mem_used.max()) if len(mem_used) else 0.0,
        "models_requested": int((np.bincount(workload.model_id, minlength=len(workload.size_mb)) > 0).sum()),
        "timed_out": int(timed_out.sum()),
        "overloaded": overloaded(result, workload),
        "memory_time_mb_min": memory_time_mb_min(result, workload),
        "load_time_ms_total": float(result.load_time_ms_total),
        "loads": int(result.loads),
        "prewarm_loads": int(result.prewarm_loads),
        "wasted_prewarms": int(result.wasted_prewarms),
        "prewarms_skipped": int(result.prewarms_skipped),
        **mechanism_metrics(result, workload, served),
    }


def mechanism_metrics(result: RunResult, workload: Workload, served: np.ndarray | None) -> dict:
    """The memory mechanisms' metrics (issue 13): accuracy of what served the requests, downgrades,
    requests served by a smaller variant, early exits, and the memory as if no weights were shared
    (`memory_events` count shared weights once) with the fraction sharing saved (peak, memory-time)."""
    n = len(result.hits)
    if len(result.served_accuracy) != n:
        accuracy = np.zeros(0)
    else:  # served: None when every request was served
        accuracy = result.served_accuracy if served is None else result.served_accuracy[served]
    accuracy = accuracy[~np.isnan(accuracy)]
    mem_t, mem_used = result.memory_events
    unshared = result.memory_unshared_mb if result.memory_unshared_mb is not None else mem_used
    peak = float(mem_used.max()) if len(mem_used) else 0.0
    peak_unshared = float(unshared.max()) if len(unshared) else 0.0
    time_shared = memory_time_mb_min(result, workload)
    time_unshared = time_shared if result.memory_unshared_mb is None else memory_time_mb_min(
        RunResult(result.hits, result.cold, result.rejected, result.latency_ms, result.exec_ms, 0, 0,
                  (mem_t, unshared), end_ms=result.end_ms), workload)
    return {
        "accuracy_mean": float(accuracy.mean()) if len(accuracy) else None,
        "downgrades": int(result.downgrades),
        "variant_served": int(result.variant_served),
        "early_exits": int(result.early_exits),
        "memory_peak_unshared_mb": peak_unshared,
        "memory_time_unshared_mb_min": time_unshared,
        "shared_weights_saved_peak": 1.0 - peak / peak_unshared if peak_unshared > 0 else 0.0,
        "shared_weights_saved_time": 1.0 - time_shared / time_unshared if time_unshared > 0 else 0.0,
    }


def memory_series(result: RunResult, duration_ms: int) -> pl.DataFrame:
    """Memory in use at the end of every simulated minute (MB), and the peak within it."""
    mem_t, mem_used = result.memory_events
    minutes = max(1, int(np.ceil(duration_ms / 60_000)))
    frame = pl.DataFrame({"minute": (mem_t // 60_000).astype(np.int64), "memory_mb": mem_used})
    per_minute = frame.group_by("minute").agg(pl.col("memory_mb").last().alias("end_mb"),
                                              pl.col("memory_mb").max().alias("peak_mb"))
    grid = pl.DataFrame({"minute": np.arange(minutes, dtype=np.int64)})
    return grid.join(per_minute, on="minute", how="left").sort("minute").with_columns(
        pl.col("end_mb").forward_fill().fill_null(0.0)).with_columns(
        pl.max_horizontal(pl.col("peak_mb").fill_null(0.0), pl.col("end_mb").shift(1).fill_null(0.0)).alias("peak_mb"))


def run_one(workload_dir: Path, policy: str, memory_mb: float, out: Path | None = None, servers: int = 1,
            workers: int = 1, seed: int = 0, no_latency: bool = False, policy_params: dict | None = None,
            records: bool = False, verify: bool = True, max_wait_ms: float | None = None,
            shared_weights: bool = False, adaptive_variants: bool = False, host_overhead_mb: float = 0.0,
            hosting: str = "multi", learned_cache: str | dict | None = None,
            interference: float = 0.0, load_interference: float = 0.0) -> dict:
    check_policy(policy)
    check_run_parameters(memory_mb, servers, workers, seed, policy_params)
    check_interference(interference, load_interference)
    if max_wait_ms is not None and not (math.isfinite(max_wait_ms) and max_wait_ms >= 0):
        raise ManyModelsError(f"--max-wait-ms must be a finite number >= 0, got {max_wait_ms}")
    learned = parse_learned_cache(learned_cache)
    check_mechanisms(host_overhead_mb, hosting)
    workload, manifest = load_workload(workload_dir, verify=verify)
    started = time.perf_counter()
    result = simulate(workload, policy, memory_mb, servers=servers, workers=workers, seed=seed,
                      no_latency=no_latency, policy_params=policy_params, max_wait_ms=max_wait_ms,
                      shared_weights=shared_weights, adaptive_variants=adaptive_variants,
                      host_overhead_mb=host_overhead_mb, hosting=hosting, learned_cache=learned,
                      interference=interference, load_interference=load_interference)
    seconds = time.perf_counter() - started
    metrics = {
        "workload": str(workload_dir), "policy": policy, "memory_mb": float(memory_mb), "servers": servers,
        "workers": workers, "seed": seed, "no_latency": no_latency, "policy_params": policy_params or {},
        "max_wait_ms": max_wait_ms,
        "shared_weights": bool(shared_weights), "adaptive_variants": bool(adaptive_variants),
        "host_overhead_mb": float(host_overhead_mb), "hosting": hosting, "learned_cache": learned_cache_label(learned),
        "interference": float(interference), "load_interference": float(load_interference),
        "source_trace": manifest.get("source_trace", {}).get("kind"),
        **summarize(result, workload),
        "simulated_requests_per_second": len(workload.t_ms) / seconds if seconds > 0 else None,
    }
    log.info("simulated %s at %.0f MB: %d requests in %.2f s", policy, memory_mb, len(workload.t_ms), seconds)
    served_latency = result.latency_ms[~result.rejected & ~result.timed_out]
    latency_percentiles = (np.percentile(served_latency, np.arange(101)).tolist() if len(served_latency) else [])
    if out is not None:
        final = Path(out)
        with atomic_output_dir(final, owned=("*.parquet", "*.json")) as tmp:
            (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")  # percentiles stay out of the JSON
            memory_series(result, manifest.get("duration_ms", int(workload.t_ms.max(initial=0)) + 1)).write_parquet(
                tmp / "memory.parquet")
            pl.DataFrame([{k: v for k, v in metrics.items() if not isinstance(v, dict)}]).write_parquet(tmp / "metrics.parquet")
            if records:
                pl.DataFrame({"t_ms": workload.t_ms, "model_id": workload.model_id, "hit": result.hits,
                              "cold_start": result.cold, "rejected": result.rejected,
                              "latency_ms": result.latency_ms, "timed_out": result.timed_out}).write_parquet(
                    tmp / "requests.parquet")
        log.info("wrote %s: %s at %.0f MB: hit ratio %.4f, %d cold starts, p99 %.0f ms", final, policy, memory_mb,
                 metrics["hit_ratio"] or 0.0, metrics["cold_starts"], metrics["latency_p99_ms"] or 0.0)
    return metrics | {"latency_percentiles": latency_percentiles}


COSTS = ("load", "load_over_exec")


def check_run_parameters(memory_mb: float, servers: int, workers: int, seed: int, policy_params: dict | None) -> None:
    """Numeric flags finite and in range, enum values known: one line naming the flag, else nothing."""
    if not math.isfinite(memory_mb) or memory_mb <= 0:
        raise ManyModelsError(f"--memory-mb must be a positive finite number, got {memory_mb}")
    if servers < 1 or workers < 1:
        raise ManyModelsError(f"--servers and --workers must be at least 1, got {servers} and {workers}")
    if seed < 0:
        raise ManyModelsError(f"--seed must be >= 0, got {seed}")
    params = dict(policy_params or {})
    for nested in [v for v in params.values() if isinstance(v, dict)]:
        params.update(nested)
    for name, value in params.items():
        if name in ("ttl_min", "alpha", "beta") and not (isinstance(value, int | float) and math.isfinite(value)
                                                          and value >= 0):
            raise ManyModelsError(f"--{name.replace('_', '-')} must be a finite number >= 0, got {value}")
        if name == "cost" and value not in COSTS:
            raise ManyModelsError(f"--cost must be one of {', '.join(COSTS)}, got {value!r}")


def check_interference(interference: float, load_interference: float) -> None:
    for flag, value in (("--interference", interference), ("--load-interference", load_interference)):
        if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
            raise ManyModelsError(f"{flag} must be a finite number >= 0, got {value}")


MECHANISM_COLUMNS = {"shared_weights": pl.Boolean, "adaptive_variants": pl.Boolean, "host_overhead_mb": pl.Float64,
                     "hosting": pl.String, "learned_cache": pl.String,
                     "interference": pl.Float64, "load_interference": pl.Float64}  # sweep dimensions beyond policy x memory x seed


def learned_cache_label(learned: dict | None) -> str:
    """The learned-cache setting as recorded in metrics and sweep tables ('off' when off)."""
    return "off" if not learned else f"hit={learned['hit']:g},speedup={learned['speedup']:g},memory={learned['memory']:g}"


def mechanism_label(row: dict) -> str:
    """A run's memory-mechanism setting in a few words ('' when every mechanism is off)."""
    parts = (["shared-weights"] if row.get("shared_weights") else []) + (
        ["adaptive-variants"] if row.get("adaptive_variants") else [])
    if row.get("host_overhead_mb"):
        parts.append(f"host={row['host_overhead_mb']:g}MB/{row.get('hosting', 'multi')}")
    if row.get("learned_cache") not in (None, "off"):
        parts.append(f"learned({row['learned_cache']})")
    if row.get("interference"):
        parts.append(f"interference={row['interference']:g}")
    if row.get("load_interference"):
        parts.append(f"load-interference={row['load_interference']:g}")
    return "+".join(parts)


WALL_CLOCK_KEYS = ("simulated_requests_per_second",)  # logged and in metrics.json, never in the sweep table


def _sweep_task(task: dict) -> dict:
    metrics = run_one(**task)
    return {k: v for k, v in metrics.items() if not isinstance(v, dict | list) and k not in WALL_CLOCK_KEYS} | {
        "policy_params": json.dumps(metrics["policy_params"], sort_keys=True),
        "latency_percentiles": metrics["latency_percentiles"]}


def sweep(workload_dir: Path, policies: list[str], memory_mb: list[float], seeds: list[int], out: Path,
          servers: int = 1, workers: int = 1, no_latency: bool = False, policy_params: dict | None = None,
          scheduler: str | None = None, dask_workers: int | None = None, latency_cdf: bool = True,
          max_wait_ms: float | None = None, mechanisms: list[dict] | None = None,
          interference: list[float] | None = None, load_interference: list[float] | None = None) -> pl.DataFrame:
    """Every (policy, memory, seed[, memory-mechanism setting]) on dask; one tidy table
    `sweep.parquet` (+ latency CDFs). `mechanisms`: the settings to sweep (dicts of run_one's
    shared_weights, adaptive_variants, host_overhead_mb, hosting, learned_cache; default: all off),
    recorded as columns. `interference` and `load_interference` (lists, default [0]) are extra sweep
    dimensions too, recorded as columns of the same names."""
    interference = list(interference or [0.0])
    load_interference = list(load_interference or [0.0])
    for policy in policies:
        check_policy(policy)
    for memory, seed in itertools.product(memory_mb, seeds):
        check_run_parameters(memory, servers, workers, seed, policy_params)
    for k, k2 in itertools.product(interference, load_interference):
        check_interference(k, k2)
    settings = [dict(setting, interference=float(k), load_interference=float(k2))
                for setting in (mechanisms or [{}]) for k in interference for k2 in load_interference]
    for setting in settings:
        parse_learned_cache(setting.get("learned_cache"))
        check_mechanisms(setting.get("host_overhead_mb", 0.0), setting.get("hosting", "multi"))
    load_workload(workload_dir)  # fail early, before starting a cluster; the tasks skip the checksums
    tasks = [
        {"workload_dir": str(workload_dir), "policy": p, "memory_mb": float(m), "seed": int(s), "servers": servers,
         "workers": workers, "no_latency": no_latency, "policy_params": (policy_params or {}).get(p, {}),
         "verify": False, "max_wait_ms": max_wait_ms, **setting}
        for p, m, s, setting in itertools.product(policies, memory_mb, seeds, settings)]
    log.info("sweep %s: %d policies x %d memory sizes x %d seeds = %d runs", workload_dir, len(policies),
             len(memory_mb), len(seeds), len(tasks))
    rows = map_on_cluster(_sweep_task, tasks, "sweep runs", scheduler=scheduler, workers=dask_workers)
    swept = [k for k in MECHANISM_COLUMNS if len({json.dumps(t.get(k)) for t in tasks}) > 1]  # extra dimensions
    cdf = pl.DataFrame([
        {"policy": r["policy"], "memory_mb": r["memory_mb"], "seed": r["seed"], "percentile": q, "latency_ms": v,
         **{k: r[k] for k in swept}}
        for r in rows for q, v in enumerate(r["latency_percentiles"])],
        schema={"policy": pl.String, "memory_mb": pl.Float64, "seed": pl.Int64, "percentile": pl.Int64, "latency_ms": pl.Float64,
                **{k: MECHANISM_COLUMNS[k] for k in swept}})
    table = pl.DataFrame([{k: v for k, v in r.items() if k != "latency_percentiles"} for r in rows]).sort(
        "policy", "memory_mb", "seed", *swept)
    out = Path(out)
    summary = table.group_by("policy", "memory_mb", *swept).agg(
        pl.col("hit_ratio").mean(), pl.col("latency_p99_ms").mean(), pl.col("cold_starts").mean(),
        pl.col("excess_latency_mean_ms").mean(), pl.col("rejected_ratio").mean(), pl.col("timed_out").mean(),
        pl.col("overloaded").any()).sort("memory_mb", "policy", *swept)
    # the previous sweep stays until the new one is complete
    with atomic_output_dir(out, owned=("*.parquet", "*.csv", "*.json")) as tmp:
        table.write_parquet(tmp / "sweep.parquet")
        cdf.sort("policy", "memory_mb", "seed", *swept, "percentile").write_parquet(tmp / "latency_percentiles.parquet")
        summary.write_csv(tmp / "sweep_summary.csv")
    log.info("wrote %s (%d rows) and sweep_summary.csv", out / "sweep.parquet", table.height)
    return table


def sweep_headline(table: pl.DataFrame, online_only: bool = True) -> dict:
    """Which policy wins (highest mean hit ratio; lowest p99 latency) at each memory size. Runs
    that were overloaded (`overloaded`: the backlog grew without bound) name no winner: a memory
    size where every policy is overloaded is marked `{"overloaded": true}` and winners come only
    from the policies that kept up."""
    offline = {"belady", "cremebrulee-oracle"}
    data = table.filter(~pl.col("policy").is_in(list(offline))) if online_only else table
    for dim, off in SWEEP_DIMENSIONS.items():  # swept mechanisms: the headline is the runs with them off
        if dim in data.columns and (data[dim] == off).any():
            data = data.filter(pl.col(dim) == off)
    if "overloaded" not in data.columns:
        data = data.with_columns(pl.lit(False).alias("overloaded"))
    mean = data.group_by("policy", "memory_mb").agg(pl.col("hit_ratio").mean(), pl.col("latency_p99_ms").mean(),
                                                   pl.col("overloaded").any())
    best = {}
    for memory in sorted(mean["memory_mb"].unique().to_list()):
        key = str(int(memory)) if float(memory).is_integer() else str(memory)
        everyone = mean.filter(pl.col("memory_mb") == memory)
        part = everyone.filter(~pl.col("overloaded"))
        if part.height == 0:
            best[key] = {"overloaded": True, "best_hit_ratio_policy": None, "hit_ratio": None,
                         "best_p99_policy": None, "latency_p99_ms": None}
            continue
        by_hit = part.sort(["hit_ratio", "policy"], descending=[True, False]).row(0, named=True)
        by_p99 = part.drop_nulls("latency_p99_ms").sort(["latency_p99_ms", "policy"]).row(0, named=True) if part["latency_p99_ms"].is_not_null().any() else None
        best[key] = {
            "overloaded": False,
            "overloaded_policies": sorted(everyone.filter(pl.col("overloaded"))["policy"].to_list()),
            "best_hit_ratio_policy": by_hit["policy"], "hit_ratio": by_hit["hit_ratio"],
            "best_p99_policy": by_p99["policy"] if by_p99 else None,
            "latency_p99_ms": by_p99["latency_p99_ms"] if by_p99 else None}
    return best
