"""The simulation report's inputs: the memory grid relative to requested-model memory, the spread over
seeds and the 'no meaningful winner' rule, cross-checked by hand and against plain numpy."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from pipeline.cli import cli
from pipeline.errors import ManyModelsError
from pipeline.simulate.summary import memory_grid_mb, spread_table, winners
from pipeline.workload.synthesize import WorkloadConfig, synthesize


@pytest.fixture(scope="module")
def workload(small_synthetic_trace, tmp_path_factory):
    _, db = small_synthetic_trace
    out = tmp_path_factory.mktemp("grid") / "w"
    synthesize(WorkloadConfig(mode="replay", models=15, minutes=300, seed=3, rate_scale=0.05), out, db=db)
    return out


def test_memory_grid_is_relative_to_requested_model_memory(workload):
    models = pl.read_parquet(workload / "models.parquet")
    requested_ids = np.unique(pl.read_parquet(workload / "requests.parquet")["model_id"].to_numpy())
    total = models.filter(pl.col("model_id").is_in(requested_ids.tolist()))["size_mb"].sum()
    assert memory_grid_mb(workload, [0.5, 1.0, 0.1]) == sorted(float(round(f * total)) for f in (0.1, 0.5, 1.0))
    with pytest.raises(ManyModelsError, match="memory-fractions"):
        memory_grid_mb(workload, [0.0])


def table(rows: list[tuple[str, float, int, float]]) -> pl.DataFrame:
    return pl.DataFrame([{"policy": p, "memory_mb": m, "seed": s, "hit_ratio": h, "latency_p99_ms": 1.0, "cold_starts": 1,
                          "rejected_ratio": 0.0, "requests": 1_000_000} for p, m, s, h in rows])


def test_winner_only_when_the_margin_beats_the_seed_spread_and_the_noise():
    runs = table([
        ("lru", 100.0, 0, 0.60), ("lru", 100.0, 1, 0.62), ("lfu", 100.0, 0, 0.50), ("lfu", 100.0, 1, 0.51),  # clear
        ("lru", 200.0, 0, 0.70), ("lru", 200.0, 1, 0.74), ("lfu", 200.0, 0, 0.71), ("lfu", 200.0, 1, 0.72),  # overlap
        ("lru", 300.0, 0, 0.9000), ("lru", 300.0, 1, 0.9000), ("lfu", 300.0, 0, 0.8999), ("lfu", 300.0, 1, 0.8999),  # < 2 SE
        ("belady", 100.0, 0, 0.99), ("belady", 100.0, 1, 0.99)])
    spread = spread_table(runs)
    lru = spread.filter((pl.col("policy") == "lru") & (pl.col("memory_mb") == 100.0)).row(0, named=True)
    assert (lru["hit_ratio_mean"], lru["hit_ratio_min"], lru["hit_ratio_max"]) == pytest.approx((0.61, 0.60, 0.62))
    assert lru["overloaded_runs"] is None  # no `overloaded` column yet
    online = {r["memory_mb"]: r for r in winners(spread).iter_rows(named=True)}
    assert online[100.0]["winner"] == "lru" and online[100.0]["margin"] == pytest.approx(0.105)
    assert online[200.0]["winner"] == "no meaningful winner"
    assert online[300.0]["noise_2se"] == pytest.approx(2 * np.sqrt(0.9 * 0.1 / 1_000_000))
    assert online[300.0]["winner"] == "no meaningful winner"
    assert winners(spread, online_only=False).filter(pl.col("memory_mb") == 100.0)["best_policy"][0] == "belady"


def test_overloaded_runs_are_counted_when_the_simulator_reports_them():
    runs = table([("lru", 100.0, 0, 0.5), ("lru", 100.0, 1, 0.5), ("lfu", 100.0, 0, 0.4), ("lfu", 100.0, 1, 0.4)])
    runs = runs.with_columns((pl.col("seed") == 1).alias("overloaded"))
    assert winners(spread_table(runs))["overloaded_runs"].to_list() == [2]


def test_sweep_command_takes_fractions_or_megabytes_not_both(workload, tmp_path):
    runner = CliRunner()
    both = runner.invoke(cli, ["sweep", "--workload", str(workload), "--policies", "lru", "--memory-mb", "100",
                               "--memory-fractions", "0.5", "--out", str(tmp_path / "x")])
    assert isinstance(both.exception, ManyModelsError) and "exactly one" in str(both.exception)
    ok = runner.invoke(cli, ["sweep", "--workload", str(workload), "--policies", "lru,lfu", "--memory-fractions", "0.2,1",
                             "--seeds", "0,1", "--scheduler", "threads", "--out", str(tmp_path / "s"),
                             "--metrics", str(tmp_path / "m.json")])
    assert ok.exit_code == 0, ok.output
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert all(not isinstance(v, dict | list) for v in metrics.values())
    grid = json.loads((tmp_path / "s" / "grid.json").read_text())
    assert grid["memory_mb"] == memory_grid_mb(workload, [0.2, 1.0]) and metrics["runs"] == 2 * 2 * 2
    assert (tmp_path / "s" / "winners.parquet").exists() and (tmp_path / "s" / "spread.parquet").exists()
