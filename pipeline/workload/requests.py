"""Per-minute counts to request timestamps, and a streaming Parquet writer for them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import ManyModelsError

MS_PER_MINUTE = 60_000
ARRIVALS = ("poisson", "even")
REQUEST_SCHEMA = pa.schema([("t_ms", pa.int64()), ("model_id", pa.int32())])


def expand(model_id: np.ndarray, minute: np.ndarray, count: np.ndarray, arrival: str,
           rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Requests of (model, minute, count) triples as (t_ms, model_id), sorted by time then model.

    poisson: given its count, a Poisson process puts arrivals uniformly at random in the minute;
    even: arrivals evenly spaced in the minute, as the CremeBrulee generator does."""
    if arrival not in ARRIVALS:
        raise ManyModelsError(f"unknown arrival process {arrival!r} (expected one of {', '.join(ARRIVALS)})")
    count = count.astype(np.int64)
    total = int(count.sum())
    models = np.repeat(model_id.astype(np.int32), count)
    base = np.repeat(minute.astype(np.int64) * MS_PER_MINUTE, count)
    if arrival == "poisson":
        offset = np.floor(rng.random(total) * MS_PER_MINUTE).astype(np.int64)
    else:
        starts = np.repeat(np.cumsum(count) - count, count)
        index = np.arange(total, dtype=np.int64) - starts
        per = np.repeat(count, count)
        offset = ((2 * index + 1) * MS_PER_MINUTE) // (2 * per)
    t_ms = base + offset
    order = np.lexsort((models, t_ms))
    return t_ms[order], models[order]


def scaled_counts(count: np.ndarray, scale: float, rng: np.random.Generator) -> np.ndarray:
    """Counts times `scale`, stochastically rounded (expectation kept; exact when scale is 1)."""
    if scale == 1.0:
        return count.astype(np.int64)
    if scale <= 0:
        raise ManyModelsError(f"rate scale must be positive, got {scale}")
    scaled = count * scale
    whole = np.floor(scaled)
    return (whole + (rng.random(len(count)) < scaled - whole)).astype(np.int64)


class RequestWriter:
    """Append time-ordered blocks of requests to `requests.parquet`; counts per model as it goes."""

    def __init__(self, path: Path, n_models: int) -> None:
        self.path = Path(path)
        self.writer = pq.ParquetWriter(self.path, REQUEST_SCHEMA, compression="zstd")
        self.rows = 0
        self.last_t_ms = -1
        self.per_model = np.zeros(n_models, dtype=np.int64)
        self.first_t_ms: int | None = None

    def write(self, t_ms: np.ndarray, model_id: np.ndarray) -> None:
        if len(t_ms) == 0:
            return
        if t_ms[0] < self.last_t_ms:
            raise AssertionError("request blocks must be written in time order")
        self.writer.write_table(pa.table({"t_ms": t_ms, "model_id": model_id}, schema=REQUEST_SCHEMA),
                                row_group_size=1 << 20)
        self.rows += len(t_ms)
        self.last_t_ms = int(t_ms[-1])
        if self.first_t_ms is None:
            self.first_t_ms = int(t_ms[0])
        self.per_model += np.bincount(model_id, minlength=len(self.per_model))

    def close(self) -> None:
        self.writer.close()
