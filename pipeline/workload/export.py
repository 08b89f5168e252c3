"""`manymodels export`: a workload in formats other tools read.

- csv: `requests.csv` (t_ms,model_id) and `models.csv`;
- libcachesim: one CSV `time,obj_id,obj_size` (ms, integer model_id, bytes = size_mb x 10^6),
  read by libCacheSim's CSV reader with fields time=1, obj_id=2, obj_size=3 and a header;
- cremebrulee: `workload.txt` lines `request_id time_s model_name` and `models.json`
  ({model_name: {load_s, exec_s, unload_s, size_mb, catalog_model}});
- azure2019: the three-file trace schema (per-minute counts, durations, memory) for trace-replay
  load generators; each workload model is one function of its own app.
Every export writes `export_manifest.json` (format, source workload manifest, row counts).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import polars as pl

from ..errors import ManyModelsError
from ..files import atomic_file, atomic_output_dir, write_text_atomic
from ..logs import log
from ..trace.schema import (
    DURATION_COLUMNS,
    DURATIONS,
    INVOCATION_COLUMNS,
    INVOCATIONS,
    MEMORY,
    MEMORY_COLUMNS,
    MINUTE_COLUMNS,
    MINUTES_PER_DAY,
    TRACE_DAYS,
    TRIGGERS,
    file_name,
)
from .layout import require_workload

FORMATS = ("csv", "libcachesim", "cremebrulee", "azure2019")
BYTES_PER_MB = 1_000_000


def _load(workload: Path) -> tuple[pl.LazyFrame, pl.DataFrame, dict]:
    workload = require_workload(workload)
    return (pl.scan_parquet(workload / "requests.parquet"), pl.read_parquet(workload / "models.parquet"),
            json.loads((workload / "manifest.json").read_text()))


# a workload model's name in the CremeBrulee format: its catalog model and its id
MODEL_NAME = pl.format("{}-{}", pl.col("catalog_model"), pl.col("model_id")).alias("model_name")


def export(workload: Path, fmt: str, out: Path) -> dict:
    if fmt not in FORMATS:
        raise ManyModelsError(f"unknown export format {fmt!r} (expected one of {', '.join(FORMATS)})")
    requests, models, manifest = _load(workload)
    out = Path(out)
    if fmt == "libcachesim":  # one file (a .csv path, or trace.csv in a directory), its manifest beside it
        out = out if out.suffix else out / "trace.csv"
        with atomic_file(out) as tmp:
            written = _export_libcachesim(requests, models, manifest, tmp, out.name)
        export_manifest = {"format": fmt, "workload": str(workload), "workload_manifest": manifest, "written": written}
        write_text_atomic(out.parent / f"export_manifest_{fmt}.json", json.dumps(export_manifest, indent=2) + "\n")
    else:  # a directory, replaced as a whole: nothing of an older export (e.g. stale day files) stays
        with atomic_output_dir(out) as tmp:
            written = EXPORTERS[fmt](requests, models, manifest, tmp)
            export_manifest = {"format": fmt, "workload": str(workload), "workload_manifest": manifest,
                               "written": written}
            (tmp / f"export_manifest_{fmt}.json").write_text(json.dumps(export_manifest, indent=2) + "\n")
    log.info("exported %s as %s to %s (%s)", workload, fmt, out, ", ".join(f"{k}: {v} rows" for k, v in written.items()))
    return export_manifest


def _export_csv(requests: pl.LazyFrame, models: pl.DataFrame, manifest: dict, out: Path) -> dict:
    requests.sink_csv(out / "requests.csv")
    models.write_csv(out / "models.csv")
    return {"requests.csv": manifest["rows"]["requests"], "models.csv": models.height}


def _export_libcachesim(requests: pl.LazyFrame, models: pl.DataFrame, manifest: dict, target: Path,
                        name: str) -> dict:
    sizes = models.select(pl.col("model_id"), (pl.col("size_mb") * BYTES_PER_MB).round().cast(pl.Int64).alias("obj_size"))
    requests.join(sizes.lazy(), on="model_id", how="left", maintain_order="left").select(
        pl.col("t_ms").alias("time"), pl.col("model_id").alias("obj_id"), "obj_size").sink_csv(target)
    return {name: manifest["rows"]["requests"]}


def _export_cremebrulee(requests: pl.LazyFrame, models: pl.DataFrame, manifest: dict, out: Path) -> dict:
    names = models.select("model_id", MODEL_NAME)
    requests.join(names.lazy(), on="model_id", how="left", maintain_order="left").select(
        pl.int_range(pl.len()).alias("request_id"),
        (pl.col("t_ms") / 1000.0).round(3).alias("time_s"), "model_name",
    ).sink_csv(out / "workload.txt", separator=" ", include_header=False)
    catalog = models.with_columns(MODEL_NAME)
    (out / "models.json").write_text(json.dumps({
        row["model_name"]: {"load_s": row["load_ms"] / 1000.0, "exec_s": row["exec_ms"] / 1000.0,
                            "unload_s": row["unload_ms"] / 1000.0, "size_mb": row["size_mb"],
                            "catalog_model": row["catalog_model"]}
        for row in catalog.iter_rows(named=True)}, indent=2))
    return {"workload.txt": manifest["rows"]["requests"], "models.json": models.height}


def _hash(prefix: str, value: int) -> str:
    return hashlib.sha256(f"{prefix}-{value}".encode()).hexdigest()


def _export_azure(requests: pl.LazyFrame, models: pl.DataFrame, manifest: dict, out: Path) -> dict:
    duration_ms = manifest["duration_ms"]
    days = max(1, -(-duration_ms // (MINUTES_PER_DAY * 60_000)))
    if days > TRACE_DAYS:
        raise ManyModelsError(f"the azure2019 schema holds at most {TRACE_DAYS} days; this workload spans {days}")
    ids = models["model_id"].to_numpy()
    keys = pl.DataFrame({
        "model_id": ids.astype(np.int32),
        "HashOwner": [_hash("owner", i) for i in ids], "HashApp": [_hash("app", i) for i in ids],
        "HashFunction": [_hash("function", i) for i in ids],
        "Trigger": models["source_trigger"].fill_null("http") if "source_trigger" in models.columns else ["http"] * len(ids),
    }).with_columns(pl.when(pl.col("Trigger").is_in(list(TRIGGERS))).then(pl.col("Trigger")).otherwise(pl.lit("others")))
    per_minute = requests.select(
        "model_id", (pl.col("t_ms") // 60_000).alias("t_min")).group_by("model_id", "t_min").agg(
        pl.len().alias("count")).collect()
    written = {}
    for day in range(1, days + 1):
        part = per_minute.filter((pl.col("t_min") >= (day - 1) * MINUTES_PER_DAY) & (pl.col("t_min") < day * MINUTES_PER_DAY))
        matrix = np.zeros((len(ids), MINUTES_PER_DAY), dtype=np.int64)
        matrix[part["model_id"].to_numpy(), part["t_min"].to_numpy() - (day - 1) * MINUTES_PER_DAY] = part["count"].to_numpy()
        wide = pl.concat([keys.drop("model_id"), pl.from_numpy(matrix, schema=MINUTE_COLUMNS)], how="horizontal")
        wide.select(INVOCATION_COLUMNS).write_csv(out / file_name(INVOCATIONS, day))
        counts = matrix.sum(axis=1)
        exec_ms = models["exec_ms"].to_numpy()
        durations = keys.drop("model_id", "Trigger").with_columns(
            pl.Series("Average", exec_ms), pl.Series("Count", counts), pl.Series("Minimum", exec_ms),
            pl.Series("Maximum", exec_ms), *[pl.Series(c, exec_ms) for c in DURATION_COLUMNS[7:]],
        ).filter(pl.col("Count") > 0)
        durations.select(DURATION_COLUMNS).write_csv(out / file_name(DURATIONS, day))
        size = models["size_mb"].to_numpy()
        memory = keys.select("HashOwner", "HashApp").with_columns(
            pl.lit(MINUTES_PER_DAY).alias("SampleCount"), pl.Series("AverageAllocatedMb", size),
            *[pl.Series(c, size) for c in MEMORY_COLUMNS[4:]])
        memory.select(MEMORY_COLUMNS).write_csv(out / file_name(MEMORY, day))
        written[file_name(INVOCATIONS, day)] = int(counts.sum())
    return written


EXPORTERS = {"csv": _export_csv, "cremebrulee": _export_cremebrulee, "azure2019": _export_azure}
