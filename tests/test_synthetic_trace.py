"""The embedded synthetic trace: exact schema, seeded, and calibrated to the published marginals.

Marginals are recomputed here from the CSV files (not from the generator's own report)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import polars as pl
import pytest

from pipeline.errors import ManyModelsError
from pipeline.trace.schema import (
    DURATION_COLUMNS,
    DURATIONS,
    INVOCATION_COLUMNS,
    INVOCATIONS,
    MEMORY,
    MEMORY_COLUMNS,
    TRIGGERS,
    discover,
    file_name,
)
from pipeline.trace.synthetic import SyntheticTraceConfig, synthesize_trace


@pytest.fixture(scope="module")
def one_day(tmp_path_factory):
    out = tmp_path_factory.mktemp("calibration")
    synthesize_trace(SyntheticTraceConfig(functions=6000, days=1, seed=3), out)
    return out


def test_exact_schema_and_layout(tmp_path):
    synthesize_trace(SyntheticTraceConfig(functions=50, days=14, seed=1), tmp_path)
    layout = discover(tmp_path)
    assert layout.days == list(range(1, 15))
    for day in layout.days:
        assert pl.read_csv(layout.path(day, INVOCATIONS), n_rows=1).columns == INVOCATION_COLUMNS
        assert pl.read_csv(layout.path(day, DURATIONS), n_rows=1).columns == DURATION_COLUMNS
        # like the real trace: no memory files for d13 and d14
        assert (layout.path(day, MEMORY) is not None) == (day <= 12)
    assert pl.read_csv(layout.path(1, MEMORY), n_rows=1).columns == MEMORY_COLUMNS
    manifest = json.loads((tmp_path / "SYNTHETIC.json").read_text())
    assert manifest["source"] == "synthetic"


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    def digest(seed, name):
        out = tmp_path / name
        synthesize_trace(SyntheticTraceConfig(functions=40, days=2, seed=seed), out)
        return hashlib.sha256((out / file_name(INVOCATIONS, 2)).read_bytes()).hexdigest()

    assert digest(5, "a") == digest(5, "b")
    assert digest(5, "a") != digest(6, "c")


def test_rejects_bad_config(tmp_path):
    with pytest.raises(ManyModelsError, match="--days"):
        synthesize_trace(SyntheticTraceConfig(functions=10, days=15), tmp_path)


def test_calibrated_to_published_statistics(one_day):
    frame = pl.read_csv(one_day / file_name(INVOCATIONS, 1), schema_overrides={c: pl.Int64 for c in INVOCATION_COLUMNS[4:]})
    counts = frame.select(INVOCATION_COLUMNS[4:]).to_numpy()
    per_function = counts.sum(axis=1)
    apps = frame.with_columns(pl.Series("total", per_function)).group_by("HashOwner", "HashApp").agg(
        pl.len().alias("functions"), pl.col("total").sum())
    functions_per_app = apps["functions"].to_numpy()
    app_total = np.sort(apps["total"].to_numpy())[::-1]
    # ATC'20: 54% of apps have one function, 95% at most 10
    assert abs(np.mean(functions_per_app == 1) - 0.54) < 0.05
    assert abs(np.mean(functions_per_app <= 10) - 0.95) < 0.03
    # 45% of apps invoked at most once per hour, 81% at most once per minute (a day = 1440 minutes)
    assert abs(np.mean(app_total <= 24) - 0.45) < 0.08
    assert abs(np.mean(app_total <= 1440) - 0.81) < 0.06
    # the 18.6% most popular apps take 99.6% of invocations
    top = round(0.186 * len(app_total))
    assert app_total[:top].sum() / app_total.sum() > 0.98
    # trigger mix of functions
    shares = frame["Trigger"].value_counts(normalize=True)
    share = dict(zip(shares["Trigger"], shares["proportion"]))
    assert set(share) <= set(TRIGGERS)
    assert abs(share["http"] - 0.55) < 0.03 and abs(share["timer"] - 0.156) < 0.02
    # invocations span many orders of magnitude
    positive = per_function[per_function > 0]
    assert np.log10(positive.max() / positive.min()) > 6
    # execution time: 50% of functions average under 1 s (lognormal, sigma 2.36)
    durations = pl.read_csv(one_day / file_name(DURATIONS, 1))
    assert abs((durations["Average"] < 1000).mean() - 0.5) < 0.1
    # memory: Burr XII fit, median about 140 MB; 90% of apps never exceed 400 MB
    memory = pl.read_csv(one_day / file_name(MEMORY, 1))
    assert 110 < memory["AverageAllocatedMb"].median() < 170
    assert abs((memory["AverageAllocatedMb_pct100"] <= 400).mean() - 0.90) < 0.05
