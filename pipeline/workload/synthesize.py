"""`manymodels synthesize`: a seeded edge workload (models + request stream) from the trace.

Modes (DESIGN.md 4):
- replay: sample functions of the trace and expand their per-minute counts in a window to
  request timestamps; at rate scale 1 the counts are conserved exactly;
- parametric: fit per-function features and empirical tables on the same window of the trace
  (`parametric.fit`), draw N models from their joint distribution and run a semi-Markov on/off
  process per model with its own period and count distributions (`parametric.sample_*`); any N
  and any duration.
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
from . import parametric
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
def _characterized_db(characterization: Path | None) -> Path:
    """Without --db, the trace database the characterization was computed from."""
    fitted_path = Path(characterization) / "fitted_params.json" if characterization else None
    if fitted_path is None or not fitted_path.exists():
        raise ManyModelsError("parametric mode needs --db (the model is fitted from the trace database)")
    recorded = json.loads(fitted_path.read_text()).get("db")
    if not recorded:
        raise ManyModelsError(f"{fitted_path}: names no trace database; pass --db")
    return Path(recorded)


def _parametric(con, config: WorkloadConfig, days: list[int], catalog: pl.DataFrame, rng: np.random.Generator):
    """Fit the workload model on the window the workload asks for (the trace's first `minutes` from
    --start-minute, or the whole trace from there when it is shorter) and draw the population."""
    trace_minutes = len(days) * MINUTES_PER_DAY
    if config.start_minute >= trace_minutes:
        raise ManyModelsError(f"--start-minute {config.start_minute} is past the trace's {trace_minutes} minutes")
    window = min(config.minutes, trace_minutes - config.start_minute)
    model = parametric.fit(con, config.start_minute, window, days[0], config.triggers,
                           rate_scale=config.rate_scale, rng=rng)  # fitted on the trace at the workload's rate
    population = parametric.sample_population(model, config.models, rng)
    rate, idle = parametric.expected_rates(model, population)
    models = pl.DataFrame({
        "model_id": np.arange(config.models, dtype=np.int32),
        "source_trigger": [TRIGGERS[i] for i in model.trigger[population.source]],
        "target_rate_per_day": rate, "target_idle_fraction": idle})
    models = bind_models(models, catalog, config, "target_rate_per_day", rng,
                         rank_stride=model.functions / config.models)
    raw = parametric.sample_blocks(model, population, config.minutes, config.block_minutes,
                                   config.start_minute % MINUTES_PER_DAY, rng)
    blocks = raw  # already at the rate scale (the model is fitted on the scaled trace)
    fit_window = {"start_minute": config.start_minute, "minutes": window, "functions": model.functions}
    log.info("parametric model fitted on %d functions over minutes %d..%d of the trace", model.functions,
             config.start_minute, config.start_minute + window)
    return {"models": models, "fit_window": fit_window}, blocks


# ------------------------------------------------------------------------------ common
def bind_models(models: pl.DataFrame, catalog: pl.DataFrame, config: WorkloadConfig, popularity_col: str,
                rng: np.random.Generator, rank_stride: float = 1.0) -> pl.DataFrame:
    """Give every workload model a catalog profile: random, round-robin, or by rank (the most
    requested models get the smallest catalog models, cycling through the catalog by size). With
    `rank_stride` (functions in the trace's window / models), the rank cycles by the model's
    popularity quantile in the trace: the model of rank r takes the profile the function of rank
    floor(r x stride) takes in the trace's replay, so a workload with fewer (or more) models than the
    trace has functions keeps the replay's mix of sizes at every popularity level."""
    n, k = models.height, catalog.height
    if config.binding == "random":
        index = rng.integers(0, k, n)
    elif config.binding == "round_robin":
        index = np.arange(n) % k
    else:
        by_size = np.argsort(catalog["size_mb"].to_numpy(), kind="stable")
        popularity_rank = np.argsort(np.argsort(-models[popularity_col].to_numpy(), kind="stable"), kind="stable")
        index = by_size[np.floor(popularity_rank * rank_stride).astype(np.int64) % k]
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
        db = db if db is not None else _characterized_db(characterization)
        con = connect_read_only(db)
        info = meta(con)
        days = json.loads(info["days"])
        source = {"kind": info["source"], "db": portable_path(db), "days": days}
        models, blocks = _parametric(con, config, days, catalog, rng)
        source["fit_window"] = models.pop("fit_window")
        models = models["models"]

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
