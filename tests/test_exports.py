"""Exports read by their consumers: libCacheSim (oracleGeneral binary, CSV), CremeBrulee (a reader
written from its format description, DESIGN 7), and the azure2019 round trip keeping provenance."""

from __future__ import annotations

import json
import logging
import struct
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.errors import ManyModelsError
from pipeline.files import sha256_file
from pipeline.simulate.core import simulate
from pipeline.simulate.run import load_workload
from pipeline.trace.ingest import ingest
from pipeline.workload.export import export, next_access_positions
from pipeline.workload.synthesize import WorkloadConfig, synthesize

CATALOG_SIZES_MB = [4.9, 14.0, 16.0, 17.0, 23.0, 88.0, 98.0, 102.0, 143.0, 528.0, 549.0]


def write_workload(out: Path, t_ms, model_id, size_mb, kind: str = "synthetic", load_ms=None) -> Path:
    """A workload directory as `manymodels synthesize` lays it out, from explicit arrays."""
    out.mkdir(parents=True, exist_ok=True)
    n_models = len(size_mb)
    t_ms, model_id = np.asarray(t_ms, dtype=np.int64), np.asarray(model_id, dtype=np.int32)
    pl.DataFrame({"t_ms": t_ms, "model_id": model_id}).write_parquet(out / "requests.parquet")
    pl.DataFrame({
        "model_id": np.arange(n_models, dtype=np.int32), "catalog_model": [f"M{i % 7}" for i in range(n_models)],
        "size_mb": np.asarray(size_mb, dtype=float),
        "load_ms": np.asarray(load_ms if load_ms is not None else [1420.0 + i for i in range(n_models)], dtype=float),
        "exec_ms": np.full(n_models, 14.2), "unload_ms": np.full(n_models, 0.1),
        "requests": np.bincount(model_id, minlength=n_models)}).write_parquet(out / "models.parquet")
    manifest = {"name": out.name, "source_trace": {"kind": kind}, "synthetic_source": kind == "synthetic",
                "duration_ms": int(t_ms.max()) + 1 if len(t_ms) else 60_000,
                "rows": {"requests": len(t_ms), "models": n_models},
                "checksums": {name: sha256_file(out / name) for name in ("requests.parquet", "models.parquet")}}
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


def zipf_workload(out: Path, seed: int, sizes_mb: list[float], n: int = 3000) -> Path:
    """Zipf-like popularity, strictly increasing timestamps (no ties: Belady's order by next-use
    time and libCacheSim's by next-use position are then the same)."""
    rng = np.random.default_rng(seed)
    popularity = 1 / np.arange(1, len(sizes_mb) + 1) ** 0.9
    ids = rng.choice(len(sizes_mb), size=n, p=popularity / popularity.sum())
    t_ms = np.cumsum(rng.integers(1, 3000, size=n))
    return write_workload(out, t_ms, ids, sizes_mb)


# --- oracleGeneral ---------------------------------------------------------------------------------

def read_oracle_general(path: Path) -> list[tuple[int, int, int, int]]:
    """Independent reader: struct, little-endian, 24 bytes a record (DESIGN 7)."""
    data = path.read_bytes()
    assert len(data) % 24 == 0
    return [struct.unpack_from("<IQIq", data, offset) for offset in range(0, len(data), 24)]


def test_oracle_general_layout_by_struct(tmp_path):
    wl = write_workload(tmp_path / "w", [0, 999, 1000, 61_500, 61_501], [1, 0, 1, 1, 2], [2.0, 3.5, 549.0])
    export(wl, "oraclegeneral", tmp_path / "og")
    records = read_oracle_general(tmp_path / "og" / "trace.oracleGeneral.bin")
    assert records == [(0, 1, 3_500_000, 2), (0, 0, 2_000_000, -1), (1, 1, 3_500_000, 3), (61, 1, 3_500_000, -1),
                       (61, 2, 549_000_000, -1)]
    manifest = json.loads((tmp_path / "og" / "export_manifest_oraclegeneral.json").read_text())
    assert manifest["source_trace"] == "synthetic" and manifest["written"] == {"trace.oracleGeneral.bin": 5}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 6), max_size=80))
def test_next_access_positions_against_a_loop(ids):
    expected, last = [-1] * len(ids), {}
    for i in range(len(ids) - 1, -1, -1):
        expected[i] = last.get(ids[i], -1)
        last[ids[i]] = i
    assert next_access_positions(np.array(ids, dtype=np.int64)).tolist() == expected


def libcachesim_hits(lcs, trace: Path, trace_type, cache_cls, capacity_bytes: int, params=None) -> np.ndarray:
    reader = lcs.TraceReader(str(trace), trace_type, params) if params else lcs.TraceReader(str(trace), trace_type)
    cache = cache_cls(cache_size=capacity_bytes)
    return np.array([bool(cache.get(request)) for request in reader])


@pytest.mark.parametrize("sizes", ["unit", "catalog"])
@pytest.mark.parametrize("policy", ["lru", "belady"])
def test_oracle_general_libcachesim_equals_simulate_request_by_request(tmp_path, sizes, policy):
    lcs = pytest.importorskip("libcachesim")
    sizes_mb = [1.0, 2.0, 3.0] * 10 if sizes == "unit" else CATALOG_SIZES_MB * 3
    wl = zipf_workload(tmp_path / "w", seed=11, sizes_mb=sizes_mb)
    export(wl, "oraclegeneral", tmp_path / "trace.oracleGeneral.bin")
    workload, _ = load_workload(wl)
    cls = {"lru": lcs.LRU, "belady": lcs.Belady}[policy]
    for memory_mb in ([6.0, 20.0] if sizes == "unit" else [300.0, 1200.0]):
        ours = simulate(workload, policy, memory_mb, no_latency=True).hits
        theirs = libcachesim_hits(lcs, tmp_path / "trace.oracleGeneral.bin", lcs.TraceType.ORACLE_GENERAL_TRACE,
                                  cls, int(memory_mb * 1_000_000))
        assert len(theirs) == len(ours) == 3000
        assert 0 < ours.sum() < len(ours)  # the size is neither trivial nor hopeless
        np.testing.assert_array_equal(ours, theirs)


def test_oracle_general_on_a_synthesized_workload(small_synthetic_trace, tmp_path):
    """A workload written by `synthesize` (replay, catalog sizes, ~40,000 requests): LRU and Belady
    equal request by request. It has a few requests at the same ms (Belady by next-use time and by
    next-use position could then differ in principle; they do not here)."""
    lcs = pytest.importorskip("libcachesim")
    _, db = small_synthetic_trace
    wl = tmp_path / "w"
    synthesize(WorkloadConfig(mode="replay", models=30, minutes=720, seed=1, selection="quantile", rate_scale=0.3),
               wl, db=db)
    export(wl, "oraclegeneral", tmp_path / "og")
    workload, _ = load_workload(wl)
    for policy, cls in (("lru", lcs.LRU), ("belady", lcs.Belady)):
        ours = simulate(workload, policy, 400.0, no_latency=True).hits
        theirs = libcachesim_hits(lcs, tmp_path / "og" / "trace.oracleGeneral.bin",
                                  lcs.TraceType.ORACLE_GENERAL_TRACE, cls, 400_000_000)
        np.testing.assert_array_equal(ours, theirs)


# --- libCacheSim CSV -------------------------------------------------------------------------------

def csv_params(lcs):
    params = lcs.ReaderInitParam()
    params.has_header, params.delimiter = True, ","
    params.time_field, params.obj_id_field, params.obj_size_field = 1, 2, 3
    return params


@pytest.mark.parametrize("unit,divisor", [("s", 1000), ("ms", 1)])
def test_libcachesim_csv_time_unit(tmp_path, unit, divisor):
    lcs = pytest.importorskip("libcachesim")
    wl = write_workload(tmp_path / "w", [0, 999, 86_399_000, 86_400_500], [0, 1, 0, 1], [2.0, 549.0])
    export(wl, "libcachesim", tmp_path / "trace.csv", time_unit=unit)
    reader = lcs.TraceReader(str(tmp_path / "trace.csv"), lcs.TraceType.CSV_TRACE, csv_params(lcs))
    seen = [(r.clock_time, r.obj_id, r.obj_size) for r in reader]
    assert seen == [(0, 0, 2_000_000), (999 // divisor, 1, 549_000_000), (86_399_000 // divisor, 0, 2_000_000),
                    (86_400_500 // divisor, 1, 549_000_000)]
    manifest = json.loads((tmp_path / "export_manifest_libcachesim.json").read_text())
    assert manifest["time_unit"] == unit


def test_libcachesim_sizes_that_wrap_in_32_bits_are_refused(tmp_path):
    wl = write_workload(tmp_path / "w", [0, 1], [0, 1], [10.0, 4295.0])  # 4.295e9 bytes >= 2^32
    for fmt in ("libcachesim", "oraclegeneral"):
        with pytest.raises(ManyModelsError, match=r"model 1 is 4295000000 bytes; libCacheSim keeps object sizes in 32 bits"):
            export(wl, fmt, tmp_path / fmt)
    with pytest.raises(ManyModelsError, match="--time-unit 'h'"):
        export(wl, "libcachesim", tmp_path / "x.csv", time_unit="h")


# --- CremeBrulee -----------------------------------------------------------------------------------

def cremebrulee_read(workload_txt: Path, models_json: Path) -> tuple[list[tuple[int, float, str]], dict]:
    """What CremeBrulee's simulator does with the two files (DESIGN 7): whitespace-separated
    `request_id arrival_time_s model_name` lines, and a JSON list of model objects whose fields it
    reads by key (latencies in s, loaded_size in MB)."""
    requests = []
    for line in workload_txt.read_text().splitlines():
        assert len(line.split(" ")) == 3  # it takes the model set as line.split(' ')[2]
        request_id, time_s, name = line.split()
        requests.append((int(request_id), float(time_s), name))
    info = {}
    for model in json.loads(models_json.read_text()):
        info[model["name"]] = (float(model["avg_load_latency"]), float(model["avg_exec_latency"]),
                               float(model["avg_unload_latency"]), float(model["loaded_size"]))
    return requests, info


def test_cremebrulee_export_reads_as_its_simulator_reads(tmp_path, caplog):
    t_ms = [0, 14, 1_500, 61_001, 86_399_999]
    wl = write_workload(tmp_path / "w", t_ms, [0, 1, 0, 2, 1], [17.0, 549.0, 0.3], load_ms=[1420.0, 4232.0, 3.3])
    with caplog.at_level(logging.WARNING, logger="manymodels"):
        manifest = export(wl, "cremebrulee", tmp_path / "cb", worker_memory_mb=500)
    assert "CremeBrulee's simulator crashes" in caplog.text and "1 of 3 models" in caplog.text
    assert manifest["min_worker_memory_mb"] == 549.0
    requests, info = cremebrulee_read(tmp_path / "cb" / "workload.txt", tmp_path / "cb" / "models.json")
    assert [r[0] for r in requests] == list(range(5))
    assert [r[1] for r in requests] == [t / 1000 for t in t_ms]
    assert [r[2] for r in requests] == ["M0-0", "M1-1", "M0-0", "M2-2", "M1-1"]
    assert info == {"M0-0": (1.42, 0.0142, 0.0001, 17.0), "M1-1": (4.232, 0.0142, 0.0001, 549.0),
                    "M2-2": (0.0033, 0.0142, 0.0001, 0.3)}
    # exactly as its generator writes times (f"{i} {t:0.5f} {name}"), and floats without noise
    lines = (tmp_path / "cb" / "workload.txt").read_text().splitlines()
    assert lines == [f"{i} {t / 1000:0.5f} {name}" for i, t, name in zip(range(5), t_ms, [r[2] for r in requests])]
    text = (tmp_path / "cb" / "models.json").read_text()
    assert '"avg_exec_latency": 0.0142,' in text and "0.014199999" not in text


# --- azure2019 provenance --------------------------------------------------------------------------

def test_azure2019_round_trip_keeps_the_synthetic_label(small_synthetic_trace, tmp_path):
    from pipeline.characterize.stage import characterize

    _, db = small_synthetic_trace
    wl = tmp_path / "w"
    synthesize(WorkloadConfig(mode="replay", models=12, minutes=180, seed=1, selection="uniform"), wl, db=db)
    export(wl, "azure2019", tmp_path / "az")
    ingest(tmp_path / "az", tmp_path / "back.duckdb")
    with duckdb.connect(str(tmp_path / "back.duckdb"), read_only=True) as con:
        assert con.sql("SELECT value FROM trace_meta WHERE key = 'source'").fetchall() == [("synthetic",)]
    characterize(tmp_path / "back.duckdb", tmp_path / "char", tmp_path / "char.json")
    assert json.loads((tmp_path / "char.json").read_text())["source"] == "synthetic"
    wl2 = tmp_path / "w2"
    manifest = synthesize(WorkloadConfig(mode="replay", models=5, minutes=60, seed=1, selection="uniform"), wl2,
                          db=tmp_path / "back.duckdb")
    assert manifest["synthetic_source"] is True
    for fmt in ("cremebrulee", "oraclegeneral", "libcachesim", "csv"):
        assert export(wl2, fmt, tmp_path / "x" / fmt)["source_trace"] == "synthetic"


def test_azure2019_export_of_a_real_trace_workload_has_no_synthetic_marker(tmp_path):
    wl = write_workload(tmp_path / "w", [0, 70_000], [0, 1], [5.0, 6.0], kind="azure2019")
    (tmp_path / "az").mkdir()
    (tmp_path / "az" / "SYNTHETIC.json").write_text("{}")  # stale, from an earlier export
    export(wl, "azure2019", tmp_path / "az")
    assert not (tmp_path / "az" / "SYNTHETIC.json").exists()
    ingest(tmp_path / "az", tmp_path / "back.duckdb")
    with duckdb.connect(str(tmp_path / "back.duckdb"), read_only=True) as con:
        assert con.sql("SELECT value FROM trace_meta WHERE key = 'source'").fetchall() == [("azure2019",)]
