"""`manymodels synthesize`: a seeded edge workload (models + request stream) from the trace.

Modes (DESIGN.md 4):
- replay: sample functions of the trace and expand their per-minute counts in a window to
  request timestamps; at rate scale 1 the counts are conserved exactly;
- parametric: draw N models' daily rate from the fitted lognormal, their idle fraction from the
  trace's empirical idle fraction at that rate (rate-binned), and on/off behaviour with busy and
  idle periods drawn from the trace's busy- and idle-period distributions; any N and any duration.
Both bind every workload model to a catalog profile and write, block by block in time order,
`requests.parquet` (t_ms int64 sorted, model_id int32), `models.parquet` and `manifest.json`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from ..db import connect_read_only, frame, meta
from ..errors import ManyModelsError
from ..files import atomic_output_dir, fault_point, portable_path, sha256_file
from ..logs import log, progress_bar
from ..trace.schema import MINUTES_PER_DAY, TRIGGERS
from .catalog import default_catalog_path, load_catalog
from .requests import ARRIVALS, RequestWriter, expand, scaled_counts

# the embedded catalog as the manifest names it (package-relative, so manifests do not depend on the install path)
EMBEDDED_CATALOG = "pipeline/data/model_catalog.csv"

MODES = ("replay", "parametric")
SELECTIONS = ("all", "uniform", "quantile", "topk")
BINDINGS = ("random", "round_robin", "rank")
MAX_MODELS = 10_000_000  # the generator keeps per-model state in memory; far more would not fit
MAX_MINUTES = 366 * MINUTES_PER_DAY


@dataclass(frozen=True)
class WorkloadConfig:
    mode: str = "replay"
    models: int = 100
    minutes: int = MINUTES_PER_DAY
    seed: int = 0
    start_minute: int = 0
    selection: str = "quantile"
    triggers: tuple[str, ...] = ()
    binding: str = "random"
    arrival: str = "poisson"
    rate_scale: float = 1.0
    block_minutes: int = 60
    catalog: str | None = None
    extra: dict = field(default_factory=dict)

    def validate(self) -> None:
        for name, value, allowed in (("mode", self.mode, MODES), ("selection", self.selection, SELECTIONS),
                                     ("binding", self.binding, BINDINGS), ("arrival", self.arrival, ARRIVALS)):
            if value not in allowed:
                raise ManyModelsError(f"unknown {name} {value!r} (expected one of {', '.join(allowed)})")
        unknown = [t for t in self.triggers if t not in TRIGGERS]
        if unknown:
            raise ManyModelsError(f"unknown trigger(s) {', '.join(unknown)} (expected {', '.join(TRIGGERS)})")
        if self.models < 1 and self.selection != "all":
            raise ManyModelsError(f"--models must be at least 1, got {self.models}")
        if self.minutes < 1 or self.start_minute < 0 or self.block_minutes < 1:
            raise ManyModelsError("--minutes and --block-minutes must be positive and --start-minute >= 0")
        if not math.isfinite(self.rate_scale) or self.rate_scale <= 0:
            raise ManyModelsError(f"--rate-scale must be a positive finite number, got {self.rate_scale}")
        if self.seed < 0:
            raise ManyModelsError(f"--seed must be >= 0, got {self.seed}")
        if self.models > MAX_MODELS:
            raise ManyModelsError(f"--models must be at most {MAX_MODELS:,}, got {self.models:,}")
        if self.minutes > MAX_MINUTES:
            raise ManyModelsError(f"--minutes must be at most {MAX_MINUTES:,} (a year), got {self.minutes:,}")


# ----------------------------------------------------------------------------- replay
def _replay_candidates(con, config: WorkloadConfig, first_day: int) -> pl.DataFrame:
    start, end = config.start_minute, config.start_minute + config.minutes
    trigger_filter = ""
    if config.triggers:
        trigger_filter = "AND f.trigger IN (" + ", ".join(f"'{t}'" for t in config.triggers) + ")"
    return frame(con, f"""
        WITH present AS (
            SELECT DISTINCT function_id FROM function_days
            WHERE (day - {first_day}) * {MINUTES_PER_DAY} < {end} AND (day - {first_day} + 1) * {MINUTES_PER_DAY} > {start}
        ), window_counts AS (
            SELECT function_id, sum(count)::BIGINT AS window_invocations FROM invocations
            WHERE (day - {first_day}) * {MINUTES_PER_DAY} + minute - 1 >= {start}
              AND (day - {first_day}) * {MINUTES_PER_DAY} + minute - 1 < {end}
            GROUP BY function_id
        )
        SELECT f.function_id, f.trigger, coalesce(w.window_invocations, 0) AS window_invocations
        FROM functions f JOIN present p USING (function_id) LEFT JOIN window_counts w USING (function_id)
        WHERE true {trigger_filter}
        ORDER BY window_invocations DESC, f.function_id""")


def select_functions(candidates: pl.DataFrame, config: WorkloadConfig, rng: np.random.Generator) -> pl.DataFrame:
    """Candidates are sorted by popularity (descending); return the chosen ones in that order."""
    n = candidates.height
    if n == 0:
        raise ManyModelsError("no trace function matches the window and trigger filter")
    if config.selection == "all":
        return candidates
    k = min(config.models, n)
    if k < config.models:
        log.warning("only %d functions match; the workload has %d models, not %d", n, k, config.models)
    if config.selection == "topk":
        index = np.arange(k)
    elif config.selection == "uniform":
        index = np.sort(rng.choice(n, size=k, replace=False))
    else:  # one per popularity quantile, as FaasCache samples the Azure trace
        index = np.unique(np.minimum(((np.arange(k) + 0.5) / k * n).astype(np.int64), n - 1))
    return candidates[index]


def _replay_blocks(con, chosen: pl.DataFrame, config: WorkloadConfig, first_day: int,
                   rng: np.random.Generator) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    mapping = chosen.select(pl.col("function_id"), pl.int_range(pl.len(), dtype=pl.Int32).alias("model_id"))
    con.register("chosen_models", mapping.to_arrow())
    t = f"((day - {first_day}) * {MINUTES_PER_DAY} + minute - 1)"
    for block_start in range(config.start_minute, config.start_minute + config.minutes, config.block_minutes):
        block_end = min(block_start + config.block_minutes, config.start_minute + config.minutes)
        part = frame(con, f"""
            SELECT c.model_id, ({t} - {config.start_minute})::BIGINT AS minute, i.count::BIGINT AS count
            FROM invocations i JOIN chosen_models c USING (function_id)
            WHERE {t} >= {block_start} AND {t} < {block_end}
            ORDER BY minute, c.model_id""")
        count = scaled_counts(part["count"].to_numpy(), config.rate_scale, rng)
        yield part["model_id"].to_numpy(), part["minute"].to_numpy(), count


# -------------------------------------------------------------------------- parametric
def parametric_population(fitted: dict, popularity: pl.DataFrame, config: WorkloadConfig,
                          rng: np.random.Generator) -> pl.DataFrame:
    """Per model: target daily rate and target idle fraction."""
    n = config.models
    mu = fitted["rate_per_day_lognormal"]["mu"]
    sigma = fitted["rate_per_day_lognormal"]["sigma"]
    if mu is None:
        raise ManyModelsError("the characterization has no active function to fit popularity from")
    never = fitted.get("never_active_share") or 0.0
    rate = np.exp(rng.normal(mu, sigma, n)) * (rng.random(n) >= never)
    # idle fraction conditional on rate: resample a real active function from the same rate bin
    real = popularity.filter(pl.col("invocations") > 0).select("invocations_per_day", "idle_fraction_pooled")
    real_log = np.log(real["invocations_per_day"].to_numpy())
    real_idle = real["idle_fraction_pooled"].to_numpy()
    edges = np.unique(np.quantile(real_log, np.linspace(0, 1, 21)))
    real_bin = np.clip(np.searchsorted(edges, real_log, side="right") - 1, 0, max(len(edges) - 2, 0))
    model_log = np.log(np.where(rate > 0, rate, np.exp(real_log.min())))
    model_bin = np.clip(np.searchsorted(edges, model_log, side="right") - 1, 0, max(len(edges) - 2, 0))
    order = np.argsort(real_bin, kind="stable")
    starts = np.searchsorted(real_bin[order], model_bin, side="left")
    ends = np.searchsorted(real_bin[order], model_bin, side="right")
    pick = starts + np.floor(rng.random(n) * np.maximum(ends - starts, 1)).astype(np.int64)
    idle = real_idle[order][np.minimum(pick, len(order) - 1)]
    duty = np.clip(1.0 - idle, 1.0 / MINUTES_PER_DAY, 1.0)
    duty = np.where(rate > 0, np.minimum(duty, np.maximum(rate / MINUTES_PER_DAY, 1.0 / MINUTES_PER_DAY)), 0.0)
    return pl.DataFrame({
        "model_id": np.arange(n, dtype=np.int32), "target_rate_per_day": rate, "target_idle_fraction": 1.0 - duty,
    })


class _Lengths:
    """Draws period lengths (minutes) from a histogram of the trace (length_min, periods)."""

    def __init__(self, histogram: dict, default: float) -> None:
        lengths = np.array(histogram.get("length_min") or [default], dtype=float)
        weights = np.array(histogram.get("periods") or [1], dtype=float)
        self.lengths = lengths
        self.cdf = np.cumsum(weights) / weights.sum()
        self.mean = float((lengths * weights).sum() / weights.sum())

    def draw(self, rng: np.random.Generator, scale: np.ndarray) -> np.ndarray:
        """Lengths times `scale`, stochastically rounded, at least one minute."""
        base = self.lengths[np.minimum(np.searchsorted(self.cdf, rng.random(len(scale))), len(self.lengths) - 1)]
        scaled = base * scale
        whole = np.floor(scaled)
        return np.maximum(1, whole + (rng.random(len(scale)) < scaled - whole)).astype(np.int64)


def _parametric_blocks(models: pl.DataFrame, fitted: dict, config: WorkloadConfig,
                       rng: np.random.Generator) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """An alternating on/off process per model: busy periods drawn from the trace's busy-period
    lengths, idle periods from its idle-period lengths scaled so that the model's share of idle
    minutes is its target; within a busy minute, 1 + Poisson requests (diurnal-modulated) so the
    daily total is the model's rate."""
    rate = models["target_rate_per_day"].to_numpy() * config.rate_scale
    duty = 1.0 - models["target_idle_fraction"].to_numpy()
    n = len(rate)
    busy, idle = _Lengths(fitted["busy_period_histogram"], 1.0), _Lengths(fitted["idle_period_histogram"], 60.0)
    partial = (duty > 0) & (duty < 1)
    safe_duty = np.clip(duty, 1e-12, 1 - 1e-12)
    # busy periods stretch when even one-minute idle periods would leave too much idle time
    busy_scale = np.where(partial, np.maximum(1.0, safe_duty / ((1.0 - safe_duty) * busy.mean)), 1.0)
    idle_scale = np.where(partial, busy.mean * busy_scale * (1.0 - safe_duty) / (safe_duty * idle.mean), 1.0)
    extra = np.where(duty > 0, np.maximum(rate / (MINUTES_PER_DAY * np.maximum(duty, 1e-12)) - 1.0, 0.0), 0.0)
    diurnal = np.array(fitted.get("diurnal_multiplier") or [1.0] * MINUTES_PER_DAY)
    # a model with a positive rate was active in the trace's window: it gets at least one request,
    # at a random minute if its process has not fired by then (the fit is over active functions)
    forced_minute = np.where(rate > 0, rng.integers(0, config.minutes, n), -1)
    fired = np.zeros(n, dtype=bool)
    state = np.where(partial, rng.random(n) < duty, duty >= 1.0)
    first = np.where(state, busy.draw(rng, busy_scale), idle.draw(rng, idle_scale))
    never_flips = np.int64(1) << 62
    remaining = np.where(partial, np.ceil(rng.random(n) * first).astype(np.int64), never_flips)
    ids = np.arange(n, dtype=np.int32)
    for block_start in range(0, config.minutes, config.block_minutes):
        block = []
        for minute in range(block_start, min(block_start + config.block_minutes, config.minutes)):
            on = state | ((forced_minute == minute) & ~fired)
            fired |= on
            active = np.flatnonzero(on)
            multiplier = diurnal[(config.start_minute + minute) % MINUTES_PER_DAY]
            count = 1 + rng.poisson(extra[active] * multiplier)
            block.append((ids[active], np.full(len(active), minute, dtype=np.int64), count))
            remaining -= 1
            flip = np.flatnonzero(remaining <= 0)
            if len(flip):
                state[flip] = ~state[flip]
                now_on = state[flip]
                lengths = np.empty(len(flip), dtype=np.int64)
                lengths[now_on] = busy.draw(rng, busy_scale[flip][now_on])
                lengths[~now_on] = idle.draw(rng, idle_scale[flip][~now_on])
                remaining[flip] = lengths
        yield tuple(np.concatenate([b[i] for b in block]) for i in range(3))  # type: ignore[misc]


# ------------------------------------------------------------------------------ common
def bind_models(models: pl.DataFrame, catalog: pl.DataFrame, config: WorkloadConfig, popularity_col: str,
                rng: np.random.Generator) -> pl.DataFrame:
    """Give every workload model a catalog profile: random, round-robin, or by rank (the most
    requested models get the smallest catalog models, cycling through the catalog by size)."""
    n, k = models.height, catalog.height
    if config.binding == "random":
        index = rng.integers(0, k, n)
    elif config.binding == "round_robin":
        index = np.arange(n) % k
    else:
        by_size = np.argsort(catalog["size_mb"].to_numpy(), kind="stable")
        popularity_rank = np.argsort(np.argsort(-models[popularity_col].to_numpy(), kind="stable"), kind="stable")
        index = by_size[popularity_rank % k]
    profile = catalog[index].rename({"model": "catalog_model"})
    return pl.concat([models, profile], how="horizontal")


def synthesize(config: WorkloadConfig, out: Path, db: Path | None = None,
               characterization: Path | None = None) -> dict:
    """Write requests.parquet, models.parquet and manifest.json into `out`; return the manifest."""
    config.validate()
    final = Path(out)
    rng = np.random.default_rng(config.seed)
    catalog_path = Path(config.catalog) if config.catalog else default_catalog_path()
    catalog = load_catalog(catalog_path)
    minutes_total = config.minutes
    if config.mode == "replay":
        if db is None:
            raise ManyModelsError("replay mode needs --db")
        con = connect_read_only(db)
        info = meta(con)
        days = json.loads(info["days"])
        source = {"kind": info["source"], "db": portable_path(db), "days": days}
        # minutes on the trace's calendar from its first day: with a gap (d01, d03) d03 starts at minute 2,880
        window_end = (days[-1] - days[0] + 1) * MINUTES_PER_DAY
        if config.start_minute >= window_end:
            raise ManyModelsError(f"--start-minute {config.start_minute} is past the trace's {window_end} minutes")
        if config.start_minute + config.minutes > window_end:
            log.warning("window truncated to the trace's %d minutes", window_end)
            config = WorkloadConfig(**{**asdict(config), "minutes": window_end - config.start_minute})
        candidates = _replay_candidates(con, config, days[0])
        chosen = select_functions(candidates, config, rng)
        models = chosen.select(
            pl.int_range(pl.len(), dtype=pl.Int32).alias("model_id"),
            pl.col("function_id").alias("source_function_id"), pl.col("trigger").alias("source_trigger"),
            pl.col("window_invocations").alias("source_window_invocations"))
        models = bind_models(models, catalog, config, "source_window_invocations", rng)
        blocks = _replay_blocks(con, chosen, config, days[0], rng)
    else:
        if characterization is None:
            raise ManyModelsError("parametric mode needs --characterization (the characterize stage's output)")
        characterization = Path(characterization)
        fitted_path = characterization / "fitted_params.json"
        if not fitted_path.exists():
            raise ManyModelsError(f"{fitted_path}: not found (run `manymodels characterize` first)")
        fitted = json.loads(fitted_path.read_text())
        popularity = pl.read_parquet(characterization / "popularity.parquet")
        source = {"kind": fitted["source"], "characterization": portable_path(characterization), "days": fitted["days"]}
        con = None
        models = parametric_population(fitted, popularity, config, rng)
        models = bind_models(models, catalog, config, "target_rate_per_day", rng)
        blocks = _parametric_blocks(models, fitted, config, rng)

    # written into a temporary sibling (`out` from here on) that replaces `final` only when complete
    with atomic_output_dir(final, owned=("*.parquet", "*.json")) as out:  # noqa: PLR1704
        requests_path = out / "requests.parquet"
        writer = RequestWriter(requests_path, models.height)
        try:
            with progress_bar(f"synthesize {config.mode}", minutes_total) as advance:
                for model_id, minute, count in blocks:
                    t_ms, ids = expand(model_id, minute, count, config.arrival, rng)
                    writer.write(t_ms, ids)
                    fault_point("synthesize:block")
                    advance(config.block_minutes)
        finally:
            writer.close()
            if con is not None:
                con.close()
        models = models.with_columns(pl.Series("requests", writer.per_model))
        models.write_parquet(out / "models.parquet")
        manifest = {
            "generator": "manymodels synthesize",
            "name": final.name,
            "mode": config.mode,
            "seed": config.seed,
            "parameters": {**asdict(config), "triggers": list(config.triggers),
                           "catalog": portable_path(config.catalog) if config.catalog else None},  # None: embedded
            "catalog": {"path": portable_path(catalog_path) if config.catalog else EMBEDDED_CATALOG,
                        "sha256": sha256_file(catalog_path)},
            "source_trace": source,
            "synthetic_source": source["kind"] == "synthetic",
            "time_unit": "ms",
            "duration_ms": config.minutes * 60_000,
            "rows": {"requests": writer.rows, "models": models.height,
                     "models_with_requests": int((writer.per_model > 0).sum())},
            "checksums": {name: sha256_file(out / name) for name in ("requests.parquet", "models.parquet")},
        }
        (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        fault_point("synthesize:written")
    log.info("wrote %s: %d requests for %d models (%s mode, %s source trace)", final, writer.rows, models.height,
             config.mode, source["kind"])
    return manifest
