"""`manymodels fidelity`: how closely a candidate workload behaves like a reference workload.

The reference is the replay of the candidate's source trace (see reference.py) unless another
workload is named. Both sides are reduced to minute-resolution statistics (profile.py), compared as
distributions (compare.py: KS D and quantiles side by side) and as cache outcomes (cache.py).

Which models count (both sides alike): every model of the workload counts in requests per model,
idle fraction and the top shares, models with no request included (0 requests, idle fraction 1) --
the trace's replay holds every function present in the window, fired or not, and a generator has
to reproduce that share too; the IAT CV counts models with at least two gaps, the per-model median
idle period models with at least one idle period, and the pooled idle and busy periods come from
the models that have them.

Outputs in OUT: summary.parquet (metric, sample sizes, ks_d, candidate/reference p10/p50/p90/p99),
scalars.parquet (top shares, cold-start ratio, counts: candidate, reference, difference),
cache.parquet (policy, memory_fraction, memory_mb, reference_memory_mb, candidate/reference hit
ratio), hourly.parquet, models.parquet and periods.parquet (per-model figures and pooled periods,
by side), fidelity.json (this workload's metrics entry); the entry is also merged into --metrics.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import polars as pl

from .. import simulate as simulate_package
from ..cluster import map_on_cluster
from ..errors import ManyModelsError
from ..files import atomic_file, atomic_output_dir
from ..logs import log
from ..simulate.core import Workload
from ..simulate.run import load_workload
from ..workload.layout import require_workload
from .cache import cache_run, requested_memory_mb
from .compare import compare_samples, hourly_table, summary_table
from .profile import MINUTE_MS, TOP_FRACTIONS, Profile, active_minutes, profile
from .reference import replay_reference

ENTRY_FILE = "fidelity.json"
# the summary rows: name, and the sample it compares
DISTRIBUTIONS = ("requests_per_model", "idle_fraction", "idle_period_min", "busy_period_min", "iat_cv",
                 "median_idle_period_min")


@dataclass(frozen=True)
class FidelityConfig:
    memory_fractions: tuple[float, ...] = (0.05, 0.10, 0.25, 0.50)
    policies: tuple[str, ...] = ("lru", "gdsf", "ttl")
    ttl_min: float = 10.0
    latency_policy: str = "lru"
    latency_memory_fraction: float = 0.25
    slots: int = 4
    seed: int = 0
    scheduler: str | None = None  # dask scheduler of the cache runs (see pipeline.cluster), or "serial"
    dask_workers: int | None = None

    def validate(self) -> None:
        if not self.memory_fractions or any(not 0 < f for f in self.memory_fractions):
            raise ManyModelsError("--memory-fractions must be positive numbers")
        if not self.policies:
            raise ManyModelsError("--policies needs at least one policy")
        if self.slots < 1 or self.ttl_min <= 0 or self.latency_memory_fraction <= 0:
            raise ManyModelsError("--slots must be at least 1, --ttl-min and --latency-memory-fraction positive")


@dataclass(frozen=True)
class Side:
    directory: Path
    workload: Workload
    manifest: dict
    profile: Profile


def _load_side(directory: Path, what: str) -> Side:
    try:
        require_workload(directory)
    except ManyModelsError as error:
        raise ManyModelsError(f"{what} {error}") from error
    workload, manifest = load_workload(directory)
    duration_ms = manifest.get("duration_ms")
    if not isinstance(duration_ms, int | float) or duration_ms <= 0:
        raise ManyModelsError(f"{directory / 'manifest.json'}: no positive duration_ms")
    minutes = math.ceil(duration_ms / MINUTE_MS)
    if len(workload.t_ms) and (workload.t_ms.min() < 0 or workload.t_ms.max() >= minutes * MINUTE_MS):
        raise ManyModelsError(f"{directory / 'requests.parquet'}: column t_ms outside the window 0..{duration_ms} ms")
    if len(workload.model_id) and (workload.model_id.min() < 0 or workload.model_id.max() >= len(workload.size_mb)):
        raise ManyModelsError(f"{directory / 'requests.parquet'}: column model_id not in models.parquet")
    active = active_minutes(workload.t_ms, workload.model_id, len(workload.size_mb), minutes)
    log.info("read %s: %d requests, %d models, %d minutes", directory, len(workload.t_ms), len(workload.size_mb),
             minutes)
    return Side(Path(directory), workload, manifest, profile(active))


def _samples(p: Profile) -> dict[str, np.ndarray]:
    per_model = p.per_model
    return {
        "requests_per_model": per_model["requests"].to_numpy(),
        "idle_fraction": per_model["idle_fraction"].to_numpy(),
        "idle_period_min": p.idle_periods_min,
        "busy_period_min": p.busy_periods_min,
        "iat_cv": per_model["iat_cv"].drop_nulls().to_numpy(),
        "median_idle_period_min": per_model["median_idle_period_min"].drop_nulls().to_numpy(),
    }


OUTCOMES_FILE = "fidelity_outcomes.json"


def _simulator_fingerprint() -> str:
    """SHA-256 of the simulator's source: stored outcomes are reused only with the same simulator."""
    digest = hashlib.sha256()
    root = Path(simulate_package.__file__).parent
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _stored_outcomes(side: Side, fingerprint: str) -> dict:
    path = side.directory / OUTCOMES_FILE
    try:
        stored = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    same = stored.get("simulator") == fingerprint and stored.get("checksums") == side.manifest.get("checksums")
    return stored.get("outcomes", {}) if same else {}


def _task_key(task: dict) -> str:
    return json.dumps({k: round(v, 6) if isinstance(v, float) else v for k, v in task.items()
                       if k not in ("side", "directory", "memory_fraction")}, sort_keys=True)


def _cache_table(candidate: Side, reference: Side, config: FidelityConfig,
                 store_reference: bool = False) -> tuple[pl.DataFrame, dict]:
    reference_mb, reference_models = requested_memory_mb(reference.workload)
    candidate_mb, candidate_models = requested_memory_mb(candidate.workload)
    scale = candidate_models / reference_models if reference_models else 1.0
    sides = {"candidate": (candidate, scale), "reference": (reference, 1.0)}
    common = {"ttl_min": config.ttl_min, "slots": config.slots, "seed": config.seed}
    tasks = [{"side": side, "directory": str(s.directory.resolve()), "kind": "hit_ratio", "policy": policy,
              "memory_fraction": float(fraction), "memory_mb": fraction * reference_mb * side_scale, **common}
             for policy in config.policies for fraction in config.memory_fractions
             for side, (s, side_scale) in sides.items()]
    tasks += [{"side": side, "directory": str(s.directory.resolve()), "kind": "cold_start_ratio",
               "policy": config.latency_policy, "memory_fraction": config.latency_memory_fraction,
               "memory_mb": config.latency_memory_fraction * reference_mb * side_scale, **common}
              for side, (s, side_scale) in sides.items()]
    # the built reference replay keeps its outcomes (same files, same simulator): a rerun after a
    # change of the candidate only simulates the candidate
    fingerprint = _simulator_fingerprint() if store_reference else ""
    stored = _stored_outcomes(reference, fingerprint) if store_reference else {}
    value = {i: stored[_task_key(t)] for i, t in enumerate(tasks)
             if t["side"] == "reference" and _task_key(t) in stored}
    # the longest runs first (the side with more requests, latency runs), so the workers finish together
    size = {side: len(s.workload.t_ms) for side, (s, _) in sides.items()}
    order = sorted((i for i in range(len(tasks)) if i not in value),
                   key=lambda i: (-size[tasks[i]["side"]], tasks[i]["kind"] == "hit_ratio", i))
    log.info("fidelity: %d cache simulations (%s), %d reference outcomes reused", len(order),
             ", ".join(config.policies), len(value))
    if config.scheduler == "serial" or not order:
        results = [cache_run(tasks[i]) for i in order]
    else:
        results = map_on_cluster(cache_run, [tasks[i] for i in order], "fidelity cache runs",
                                 scheduler=config.scheduler, workers=config.dask_workers)
    value.update(zip(order, results, strict=True))
    if store_reference:
        outcomes = {**stored, **{_task_key(t): value[i] for i, t in enumerate(tasks) if t["side"] == "reference"}}
        (reference.directory / OUTCOMES_FILE).write_text(json.dumps(
            {"simulator": fingerprint, "checksums": reference.manifest.get("checksums"), "outcomes": outcomes},
            indent=1, sort_keys=True) + "\n")
    outcome = {(t["side"], t["kind"], t["policy"], t["memory_fraction"]): value[i] for i, t in enumerate(tasks)}
    rows = [{"policy": policy, "memory_fraction": float(fraction), "memory_mb": fraction * reference_mb * scale,
             "reference_memory_mb": fraction * reference_mb,
             "candidate_hit_ratio": outcome["candidate", "hit_ratio", policy, float(fraction)],
             "reference_hit_ratio": outcome["reference", "hit_ratio", policy, float(fraction)]}
            for policy in config.policies for fraction in config.memory_fractions]
    cold = {side: outcome[side, "cold_start_ratio", config.latency_policy, config.latency_memory_fraction]
            for side in sides}
    table = pl.DataFrame(rows, schema={"policy": pl.String, "memory_fraction": pl.Float64, "memory_mb": pl.Float64,
                                       "reference_memory_mb": pl.Float64, "candidate_hit_ratio": pl.Float64,
                                       "reference_hit_ratio": pl.Float64}).with_columns(
        (pl.col("candidate_hit_ratio") - pl.col("reference_hit_ratio")).alias("difference"))
    memory = config.latency_memory_fraction * reference_mb
    memory_info = {"reference_requested_memory_mb": reference_mb, "candidate_requested_memory_mb": candidate_mb,
                   "requested_models": {"candidate": candidate_models, "reference": reference_models},
                   "candidate_memory_scale": scale, "cold_start_memory_mb": {"candidate": memory * scale,
                                                                             "reference": memory}}
    return table, {"cold_start_ratio": cold, **memory_info}


def _per_model(side: str, s: Side) -> pl.DataFrame:
    return s.profile.per_model.with_columns(pl.lit(side).alias("side"),
                                            pl.Series("size_mb", s.workload.size_mb.astype(float))).select(
        "side", pl.exclude("side"))


def _periods(side: str, p: Profile) -> pl.DataFrame:
    schema = {"side": pl.String, "kind": pl.String, "length_min": pl.Int64}
    return pl.concat([
        pl.DataFrame({"side": [side] * len(lengths), "kind": [kind] * len(lengths), "length_min": lengths.astype(np.int64)},
                     schema=schema)
        for kind, lengths in (("idle", p.idle_periods_min), ("busy", p.busy_periods_min))])


def _number(value: float | None) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else round(float(value), 6)


def merge_metrics(entries: dict[str, dict], path: Path) -> None:
    """Merge {workload name: entry} into the JSON object in `path`, atomically, under the output lock."""
    path = Path(path)
    with atomic_file(path) as tmp:
        current = {}
        if path.exists():
            try:
                current = json.loads(path.read_text())
            except json.JSONDecodeError as error:
                raise ManyModelsError(f"{path}: not a JSON object ({error.msg}, line {error.lineno})") from error
            if not isinstance(current, dict):
                raise ManyModelsError(f"{path}: not a JSON object")
        current.update(entries)
        tmp.write_text(json.dumps(dict(sorted(current.items())), indent=2) + "\n")
    log.info("wrote %s (%s)", path, ", ".join(sorted(entries)))


def collect_metrics(fidelity_dir: Path, path: Path) -> dict:
    """`reports/metrics/fidelity.json` from every OUT/NAME/fidelity.json under `fidelity_dir`."""
    fidelity_dir = Path(fidelity_dir)
    entries = {}
    for entry_path in sorted(fidelity_dir.glob(f"*/{ENTRY_FILE}")):
        entries.update(json.loads(entry_path.read_text()))
    if not entries:
        raise ManyModelsError(f"{fidelity_dir}: no */{ENTRY_FILE} (run `manymodels fidelity` first)")
    path = Path(path)
    path.unlink(missing_ok=True)
    merge_metrics(entries, path)
    return entries


def _check_replaceable(out: Path) -> None:
    """Never replace a directory holding what this command does not write (`--out .`)."""
    if not out.is_dir():
        return
    for item in sorted(out.iterdir()):
        if not (item.name == "reference" and item.is_dir()) and (item.is_dir() or item.suffix not in (".parquet", ".json")):
            raise ManyModelsError(f"{out}: holds {item.name!r}, which this command does not write; refusing to "
                                  "replace the directory (use a new or empty directory, or remove it first)")


def fidelity(workload: Path, out: Path, metrics: Path | None = None, reference: Path | None = None,
             db: Path | None = None, config: FidelityConfig = FidelityConfig()) -> dict:
    """Compare `workload` with `reference` (default: the replay of its source trace); write the
    tables into `out` and return this workload's metrics entry (also merged into `metrics`)."""
    config.validate()
    started = time.perf_counter()
    workload, out = Path(workload), Path(out)
    candidate_dir = require_workload(workload)
    _check_replaceable(out)
    manifest = json.loads((candidate_dir / "manifest.json").read_text())
    if reference is None:
        if db is None:
            raise ManyModelsError("--db is needed to build the reference replay (or pass --reference DIR)")
        reference_dir = replay_reference(manifest, Path(db), out / "reference")
        reference_kind = "replay of the source trace"
    else:
        reference_dir, reference_kind = Path(reference), "given workload"
    candidate = _load_side(candidate_dir, "--workload")
    ref = _load_side(reference_dir, "--reference")

    candidate_samples, reference_samples = _samples(candidate.profile), _samples(ref.profile)
    summary = summary_table([compare_samples(m, candidate_samples[m], reference_samples[m]) for m in DISTRIBUTIONS])
    hourly = hourly_table(candidate.profile.hourly, ref.profile.hourly)
    cache, cache_info = _cache_table(candidate, ref, config, store_reference=reference is None)
    scalars = pl.DataFrame([
        {"metric": name, "candidate": candidate.profile.top_shares[name], "reference": ref.profile.top_shares[name]}
        for name in TOP_FRACTIONS] + [
        {"metric": "cold_start_ratio", **cache_info["cold_start_ratio"]},
        {"metric": "models", "candidate": float(len(candidate.workload.size_mb)),
         "reference": float(len(ref.workload.size_mb))},
        {"metric": "requested_models", **{k: float(v) for k, v in cache_info["requested_models"].items()}},
        {"metric": "models_without_requests_share",
         "candidate": float((candidate.profile.per_model["requests"] == 0).mean()),
         "reference": float((ref.profile.per_model["requests"] == 0).mean())},
        {"metric": "requests", "candidate": float(len(candidate.workload.t_ms)), "reference": float(len(ref.workload.t_ms))},
    ], schema={"metric": pl.String, "candidate": pl.Float64, "reference": pl.Float64}).with_columns(
        (pl.col("candidate") - pl.col("reference")).alias("difference"))

    models = pl.concat([_per_model("candidate", candidate), _per_model("reference", ref)])
    periods = pl.concat([_periods("candidate", candidate.profile), _periods("reference", ref.profile)])
    ks = dict(zip(summary["metric"], summary["ks_d"], strict=True))
    shares = {row["metric"]: {"candidate": _number(row["candidate"]), "reference": _number(row["reference"])}
              for row in scalars.iter_rows(named=True)}
    gap = cache["difference"].abs()
    name = candidate_dir.resolve().name
    entry = {
        "source": (manifest.get("source_trace") or {}).get("kind"),
        "candidate": str(candidate_dir), "reference": str(reference_dir), "reference_kind": reference_kind,
        "ks_requests_per_model": _number(ks["requests_per_model"]),
        "ks_idle_fraction": _number(ks["idle_fraction"]),
        "ks_idle_period": _number(ks["idle_period_min"]),
        "ks_busy_period": _number(ks["busy_period_min"]),
        "ks_iat_cv": _number(ks["iat_cv"]),
        "ks_median_idle_period": _number(ks["median_idle_period_min"]),
        "hourly_max_abs_diff": _number(hourly["difference"].abs().max()),
        "top_0_1pct_share": shares["top_0_1pct_share"],
        "top_1pct_share": shares["top_1pct_share"],
        "top_10pct_share": shares["top_10pct_share"],
        "hit_ratio_max_abs_diff": _number(gap.max()),
        "hit_ratio_max_abs_diff_by_policy": {
            p: _number(cache.filter(pl.col("policy") == p)["difference"].abs().max()) for p in config.policies},
        "cold_start_ratio": shares["cold_start_ratio"],
        "models": shares["models"], "requested_models": shares["requested_models"],
        "models_without_requests_share": shares["models_without_requests_share"],
        "requests": shares["requests"],
        "reference_requested_memory_mb": _number(cache_info["reference_requested_memory_mb"]),
        "candidate_memory_scale": _number(cache_info["candidate_memory_scale"]),
        "config": {**{k: v for k, v in asdict(config).items() if k not in ("scheduler", "dask_workers")},
                   "memory_fractions": list(config.memory_fractions), "policies": list(config.policies)},
    }
    built_reference = out / "reference"
    with atomic_output_dir(out) as tmp:  # the previous tables stay until every new one is written
        for table, file in ((summary, "summary"), (scalars, "scalars"), (cache, "cache"), (hourly, "hourly"),
                            (models, "models"), (periods, "periods")):
            table.write_parquet(tmp / f"{file}.parquet")
        (tmp / ENTRY_FILE).write_text(json.dumps({name: entry}, indent=2) + "\n")
        if reference is None:  # keep the reference replay (reused while unchanged) inside OUT
            os.rename(built_reference, tmp / "reference")
    if metrics is not None and Path(metrics).resolve() != (out / ENTRY_FILE).resolve():
        merge_metrics({name: entry}, Path(metrics))
    log.info("wrote %s (summary, scalars, cache, hourly, models, periods, %s) in %.1f s: KS requests %.3f, idle "
             "fraction %.3f, IAT CV %s, hit-ratio gap %s (%s source)", out, ENTRY_FILE, time.perf_counter() - started,
             entry["ks_requests_per_model"] or 0.0, entry["ks_idle_fraction"] or 0.0, entry["ks_iat_cv"],
             entry["hit_ratio_max_abs_diff"], entry["source"])
    return entry
