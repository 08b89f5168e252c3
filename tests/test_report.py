"""Every notebook renders on a tiny trace; the HTML has its figures and the metrics' own numbers."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pipeline.characterize.stage import characterize
from pipeline.report import render
from pipeline.simulate.run import sweep, sweep_headline
from pipeline.workload.synthesize import WorkloadConfig, synthesize

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def images(html: str) -> int:
    return len(re.findall(r'<img [^>]*src="data:image/png;base64', html))


@pytest.fixture(scope="module")
def stage_outputs(small_synthetic_trace, tmp_path_factory):
    _, db = small_synthetic_trace
    root = tmp_path_factory.mktemp("report")
    characterize(db, root / "characterization", root / "metrics" / "characterization.json")
    synthesize(WorkloadConfig(mode="replay", models=20, minutes=600, seed=1, rate_scale=0.1), root / "workloads" / "r", db=db)
    synthesize(WorkloadConfig(mode="parametric", models=50, minutes=600, seed=2, rate_scale=0.1), root / "workloads" / "p",
               characterization=root / "characterization")
    table = sweep(root / "workloads" / "r", ["lru", "belady", "cremebrulee"], [200.0, 1000.0], [0], root / "simulation",
                  workers=2)
    (root / "metrics" / "simulation.json").write_text(json.dumps({
        "workload": "r", "runs": table.height, "source_trace": "synthetic",
        "best_online_by_memory_mb": sweep_headline(table), "best_including_offline_by_memory_mb": sweep_headline(table, False)}))
    return root


def test_characterization_report(stage_outputs, tmp_path):
    root = stage_outputs
    html = render(NOTEBOOKS / "characterization.ipynb", tmp_path / "c.html", {
        "characterization_dir": str(root / "characterization"),
        "metrics_path": str(root / "metrics" / "characterization.json"),
        "figures_dir": str(tmp_path / "figures"), "plots_dir": str(tmp_path / "plots")}, tmp_path / "executed").read_text()
    metrics = json.loads((root / "metrics" / "characterization.json").read_text())
    assert f"idle_half_share_d01 = {metrics['idle_half_share_d01']:.6f}" in html
    assert f"idle_half_share_pooled = {metrics['idle_half_share_pooled']:.6f}" in html
    assert "SYNTHETIC" in html
    assert images(html) >= 5
    assert {p.name for p in (tmp_path / "figures").glob("*.png")} >= {
        "idle_fraction_cdf.png", "popularity_rank_frequency.png", "idle_periods_and_iat_cv.png", "diurnal_heatmap.png",
        "durations_and_memory.png"}
    assert "def " not in html and "import polars" not in html  # code hidden


def test_workload_report(stage_outputs, tmp_path):
    html = render(NOTEBOOKS / "workload.ipynb", tmp_path / "w.html", {
        "workloads_dir": str(stage_outputs / "workloads"), "workloads": "r,p",
        "figures_dir": str(tmp_path / "figures"), "plots_dir": str(tmp_path / "plots")}, tmp_path / "executed").read_text()
    for name in ("r", "p"):
        manifest = json.loads((stage_outputs / "workloads" / name / "manifest.json").read_text())
        assert f"{manifest['rows']['requests']:,} requests" in html
    assert images(html) >= 2 and (tmp_path / "figures" / "workload_request_rate.png").exists()


def test_simulation_report(stage_outputs, tmp_path):
    html = render(NOTEBOOKS / "simulation.ipynb", tmp_path / "s.html", {
        "simulation_dir": str(stage_outputs / "simulation"), "metrics_path": str(stage_outputs / "metrics" / "simulation.json"),
        "cdf_memory_mb": 1000.0, "figures_dir": str(tmp_path / "figures"), "plots_dir": str(tmp_path / "plots")},
        tmp_path / "executed").read_text()
    metrics = json.loads((stage_outputs / "metrics" / "simulation.json").read_text())
    for memory, best in metrics["best_online_by_memory_mb"].items():
        row = re.search(rf"<td>{memory} MB</td>\s*<td>([^<]+)</td>\s*<td>([^<]+)</td>", html)
        assert row is not None, memory
        assert row.groups() == (best["best_hit_ratio_policy"], f"{best['hit_ratio']:.4f}")
    assert images(html) >= 3
    assert (tmp_path / "plots" / "hit_ratio_vs_memory.csv").exists()
