"""`manymodels export`: a workload in formats other tools read (DESIGN section 7).

- csv: `requests.csv` (t_ms,model_id) and `models.csv`;
- libcachesim: one CSV `time,obj_id,obj_size` (time in seconds by default, `time_unit="ms"` for
  milliseconds; integer model_id; bytes = size_mb x 10^6), read by libCacheSim's CSV reader with
  fields time=1, obj_id=2, obj_size=3 and a header. libCacheSim treats `time` as seconds; its C
  reader keeps sizes in 32 bits, so a model of 2^32 bytes or more is refused;
- oraclegeneral: libCacheSim's binary oracleGeneral trace (little-endian, 24 bytes a request, no
  header: uint32 time in s, uint64 obj_id, uint32 obj_size in bytes, int64 index of the next request
  for the same object or -1), the format on which its Belady is right (`write_oracle_general`);
- cremebrulee: `workload.txt` lines `request_id time_s model_name` (as CremeBrulee's generator writes
  them, `f"{i} {t:0.5f} {name}"`) and `models.json`, a JSON list of `{"name", "avg_load_latency",
  "avg_exec_latency", "avg_unload_latency", "loaded_size"}` (seconds, MB);
- azure2019: the three-file trace schema (per-minute counts, durations, memory) for trace-replay
  load generators; each workload model is one function of its own app. A workload built from a
  synthetic trace carries `SYNTHETIC.json`, so re-ingesting the export still says `synthetic`.
Every export writes `export_manifest_<format>.json` (format, source trace kind, source workload
manifest, row counts).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import polars as pl

from ..errors import ManyModelsError
from ..files import atomic_file, atomic_output_dir, portable_path, write_text_atomic
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
    SYNTHETIC_MANIFEST,
    TRACE_DAYS,
    TRIGGERS,
    file_name,
)
from .layout import require_workload

FORMATS = ("csv", "libcachesim", "oraclegeneral", "cremebrulee", "azure2019")
SINGLE_FILE = {"libcachesim": "trace.csv", "oraclegeneral": "trace.oracleGeneral.bin"}  # format: default file name
TIME_UNITS = ("s", "ms")
BYTES_PER_MB = 1_000_000
UINT32_LIMIT = 2**32
# one request of libCacheSim's oracleGeneral trace
ORACLE_GENERAL_DTYPE = np.dtype([("time_s", "<u4"), ("obj_id", "<u8"), ("obj_size", "<u4"), ("next_access", "<i8")])
# digits kept in the CremeBrulee models.json (microseconds for latencies given in seconds)
JSON_DECIMALS = 6


def _load(workload: Path) -> tuple[pl.LazyFrame, pl.DataFrame, dict]:
    workload = require_workload(workload)
    return (pl.scan_parquet(workload / "requests.parquet"), pl.read_parquet(workload / "models.parquet"),
            json.loads((workload / "manifest.json").read_text()))


# a workload model's name in the CremeBrulee format: its catalog model and its id
MODEL_NAME = pl.format("{}-{}", pl.col("catalog_model"), pl.col("model_id")).alias("model_name")


def source_kind(manifest: dict) -> str:
    """The kind of trace a workload was built from (`synthetic`, `azure2019`, ...)."""
    return manifest.get("source_trace", {}).get("kind", "unknown")


def next_access_positions(obj_id: np.ndarray) -> np.ndarray:
    """For each request, the index of the next request for the same object, -1 if none (vectorized:
    a stable sort by object keeps each object's requests in order; consecutive equal ids link)."""
    obj_id = np.asarray(obj_id)
    order = np.argsort(obj_id, kind="stable")
    positions = np.full(obj_id.shape[0], -1, dtype=np.int64)
    same = obj_id[order[1:]] == obj_id[order[:-1]]
    positions[order[:-1][same]] = order[1:][same]
    return positions


def oracle_general_records(time_s: np.ndarray, obj_id: np.ndarray, obj_size: np.ndarray) -> np.ndarray:
    """The requests as oracleGeneral records (`ORACLE_GENERAL_DTYPE`), next access included."""
    time_s, obj_id, obj_size = np.asarray(time_s), np.asarray(obj_id), np.asarray(obj_size)
    if not time_s.shape == obj_id.shape == obj_size.shape:
        raise ManyModelsError("oracleGeneral: time, obj_id and obj_size must have the same length")
    for name, values in (("time (s)", time_s), ("obj_size (bytes)", obj_size)):
        if values.size and (values.min() < 0 or values.max() >= UINT32_LIMIT):
            raise ManyModelsError(f"oracleGeneral: {name} must be in 0..2^32-1 (uint32); got {values.min()}..{values.max()}")
    if obj_id.size and obj_id.min() < 0:
        raise ManyModelsError("oracleGeneral: obj_id must be non-negative (uint64)")
    records = np.empty(time_s.shape[0], dtype=ORACLE_GENERAL_DTYPE)
    records["time_s"], records["obj_id"], records["obj_size"] = time_s, obj_id, obj_size
    records["next_access"] = next_access_positions(obj_id)
    return records


def write_oracle_general(path: Path, time_s: np.ndarray, obj_id: np.ndarray, obj_size: np.ndarray) -> int:
    """Write libCacheSim's binary oracleGeneral trace to `path`; return the number of requests.
    Memory: about 40 bytes a request (the records and the sort order)."""
    records = oracle_general_records(time_s, obj_id, obj_size)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    records.tofile(path)
    return int(records.shape[0])


def _sizes_bytes(models: pl.DataFrame, fmt: str) -> pl.DataFrame:
    sizes = models.select(pl.col("model_id"), (pl.col("size_mb") * BYTES_PER_MB).round().cast(pl.Int64).alias("obj_size"))
    too_big = sizes.filter(pl.col("obj_size") >= UINT32_LIMIT)
    if too_big.height:
        row = too_big.row(0, named=True)
        raise ManyModelsError(
            f"{fmt} export: model {row['model_id']} is {row['obj_size']} bytes; libCacheSim keeps object sizes in "
            f"32 bits (< {UINT32_LIMIT} bytes), so {too_big.height} model(s) would wrap")
    return sizes


def export(workload: Path, fmt: str, out: Path, time_unit: str = "s", worker_memory_mb: float | None = None) -> dict:
    """Export `workload` as `fmt` into `out`; return the export manifest (also written beside it).

    `time_unit` is the libcachesim CSV's time unit (s or ms); `worker_memory_mb` (cremebrulee) warns
    about models larger than that memory, on which CremeBrulee's simulator crashes."""
    if fmt not in FORMATS:
        raise ManyModelsError(f"unknown export format {fmt!r} (expected one of {', '.join(FORMATS)})")
    if time_unit not in TIME_UNITS:
        raise ManyModelsError(f"--time-unit {time_unit!r}: expected one of {', '.join(TIME_UNITS)}")
    requests, models, manifest = _load(workload)
    out = Path(out)
    source = source_kind(manifest)

    def describe(written: dict, extra: dict) -> dict:
        return {"format": fmt, "source_trace": source, "synthetic_source": source == "synthetic", **extra,
                "workload": portable_path(workload), "workload_manifest": manifest, "written": written}

    if fmt in SINGLE_FILE:  # one file (a path with a suffix, or the default name in a directory), manifest beside it
        out = out if out.suffix else out / SINGLE_FILE[fmt]
        with atomic_file(out) as tmp:
            if fmt == "libcachesim":
                written, extra = _export_libcachesim(requests, models, manifest, tmp, out.name, time_unit)
            else:
                written, extra = _export_oracle_general(requests, models, tmp, out.name)
        export_manifest = describe(written, extra)
        write_text_atomic(out.parent / f"export_manifest_{fmt}.json", json.dumps(export_manifest, indent=2) + "\n")
    else:  # a directory, replaced as a whole: nothing of an older export (e.g. stale day files) stays
        with atomic_output_dir(out, owned=("*.csv", "*.txt", "*.json")) as tmp:
            if fmt == "cremebrulee":
                written, extra = _export_cremebrulee(requests, models, manifest, tmp, worker_memory_mb)
            else:
                written, extra = EXPORTERS[fmt](requests, models, manifest, tmp), {}
            export_manifest = describe(written, extra)
            (tmp / f"export_manifest_{fmt}.json").write_text(json.dumps(export_manifest, indent=2) + "\n")
    log.info("exported %s as %s to %s (%s; %s source trace)", workload, fmt, out,
             ", ".join(f"{k}: {v} rows" for k, v in written.items()), source)
    return export_manifest


def _export_csv(requests: pl.LazyFrame, models: pl.DataFrame, manifest: dict, out: Path) -> dict:
    requests.sink_csv(out / "requests.csv")
    models.write_csv(out / "models.csv")
    return {"requests.csv": manifest["rows"]["requests"], "models.csv": models.height}


def _export_libcachesim(requests: pl.LazyFrame, models: pl.DataFrame, manifest: dict, target: Path, name: str,
                        time_unit: str) -> tuple[dict, dict]:
    time = pl.col("t_ms") // 1000 if time_unit == "s" else pl.col("t_ms")
    requests.join(_sizes_bytes(models, "libcachesim").lazy(), on="model_id", how="left", maintain_order="left").select(
        time.alias("time"), pl.col("model_id").alias("obj_id"), "obj_size").sink_csv(target)
    return ({name: manifest["rows"]["requests"]},
            {"time_unit": time_unit, "fields": {"time": 1, "obj_id": 2, "obj_size": 3}, "has_header": True})


def _export_oracle_general(requests: pl.LazyFrame, models: pl.DataFrame, target: Path, name: str) -> tuple[dict, dict]:
    frame = requests.collect()
    sizes = _sizes_bytes(models, "oraclegeneral")
    size_of = np.zeros(int(models["model_id"].max()) + 1 if models.height else 0, dtype=np.int64)
    size_of[sizes["model_id"].to_numpy()] = sizes["obj_size"].to_numpy()
    ids = frame["model_id"].to_numpy()
    rows = write_oracle_general(target, frame["t_ms"].to_numpy() // 1000, ids, size_of[ids])
    return {name: rows}, {"record": "<u4 time_s, <u8 obj_id, <u4 obj_size, <i8 next_access (-1: none)", "record_bytes": 24}


def _export_cremebrulee(requests: pl.LazyFrame, models: pl.DataFrame, manifest: dict, out: Path,
                        worker_memory_mb: float | None) -> tuple[dict, dict]:
    names = models.select("model_id", MODEL_NAME)
    # f"{i} {t:0.5f} {name}" with t = t_ms / 1000, written exactly from the integer milliseconds
    requests.join(names.lazy(), on="model_id", how="left", maintain_order="left").select(
        pl.int_range(pl.len()).alias("request_id"),
        pl.format("{}.{}00", pl.col("t_ms") // 1000, (pl.col("t_ms") % 1000).cast(pl.String).str.zfill(3)).alias("time_s"),
        "model_name",
    ).sink_csv(out / "workload.txt", separator=" ", include_header=False, quote_style="never")

    def seconds(ms: float) -> float:
        return round(ms / 1000.0, JSON_DECIMALS)

    catalog = models.with_columns(MODEL_NAME).sort("model_id")
    entries = [{"name": row["model_name"], "avg_load_latency": seconds(row["load_ms"]),
                "avg_exec_latency": seconds(row["exec_ms"]), "avg_unload_latency": seconds(row["unload_ms"]),
                "loaded_size": round(float(row["size_mb"]), JSON_DECIMALS)}
               for row in catalog.iter_rows(named=True)]
    (out / "models.json").write_text(json.dumps(entries, indent=2) + "\n")
    largest_mb = float(models["size_mb"].max()) if models.height else 0.0
    if worker_memory_mb is not None:
        larger = models.filter(pl.col("size_mb") > worker_memory_mb)
        if larger.height:
            log.warning("cremebrulee export: %d of %d models are larger than --worker-memory-mb %g (largest %g MB); "
                        "CremeBrulee's simulator crashes on a model larger than its --worker_memory",
                        larger.height, models.height, worker_memory_mb, largest_mb)
    else:
        log.info("cremebrulee export: run CremeBrulee's simulator with --worker_memory >= %g MB (the largest "
                 "model); it crashes on a model larger than the worker memory", largest_mb)
    return ({"workload.txt": manifest["rows"]["requests"], "models.json": models.height},
            {"largest_model_mb": largest_mb, "min_worker_memory_mb": largest_mb})


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
    if source_kind(manifest) == "synthetic":
        # `manymodels ingest` labels a trace directory holding this file `synthetic` (trace_source)
        marker = {"generator": "manymodels export --format azure2019", "synthetic": True,
                  "note": "Azure 2019 schema export of a workload synthesized from a SYNTHETIC trace; not real data",
                  "workload": manifest.get("name"), "workload_source_trace": manifest.get("source_trace")}
        (out / SYNTHETIC_MANIFEST).write_text(json.dumps(marker, indent=2) + "\n")
        written[SYNTHETIC_MANIFEST] = 1
    return written


EXPORTERS = {"csv": _export_csv, "azure2019": _export_azure}
