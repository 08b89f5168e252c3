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


CHARACTERIZATION_FIGURES = {
    "idle_half_share_by_resolution", "idle_fraction_cdf", "popularity_rank_frequency", "functions_per_app_and_triggers",
    "daily_invocations_cdf", "app_iat_cv_cdf", "idle_periods_and_iat_cv", "hourly_relative_and_diurnal",
    "durations_and_memory"}


def table_rows(html: str, first_cell: str) -> list[list[str]]:
    """The other cells of every HTML table row whose first cell is `first_cell`."""
    rows = re.findall(rf"<tr>\s*<td>{re.escape(first_cell)}</td>(.*?)</tr>", html, re.DOTALL)
    assert rows, first_cell
    return [re.findall(r"<td>([^<]*)</td>", row) for row in rows]


def table_row(html: str, first_cell: str) -> list[str]:
    return table_rows(html, first_cell)[0]


def test_characterization_report(stage_outputs, tmp_path):
    root = stage_outputs
    html = render(NOTEBOOKS / "characterization.ipynb", tmp_path / "c.html", {
        "characterization_dir": str(root / "characterization"),
        "metrics_path": str(root / "metrics" / "characterization.json"),
        "figures_dir": str(tmp_path / "figures"), "plots_dir": str(tmp_path / "plots")}, tmp_path / "executed").read_text()
    metrics = json.loads((root / "metrics" / "characterization.json").read_text())
    summary = json.loads((root / "characterization" / "summary.json").read_text())
    for key in ("idle_half_share_d01", "idle_half_share_d01_active", "idle_half_share_pooled", "idle_half_share_pooled_active",
                "resident_under_half_share_d01", "resident_under_half_share_d01_active"):
        assert f"<code>{key}</code> = {metrics[key]:.4f}" in html, key
    # the resolution table: one row per bin width, then the keep-alive row; columns d01 all/active, window all/active
    by_res = summary["idle_half_share_by_resolution"]
    for k in summary["resolutions_min"]:
        expected = [f"{by_res[f'd01_{p}'][f'{k}min']:.4f}" for p in ("all", "active")] + [
            f"{by_res[f'pooled_{p}'][f'{k}min']:.4f}" for p in ("all", "active")]
        assert table_row(html, f"idle &gt; half, {k}-minute bins") == expected, k
        if k != 1:
            assert expected[0] == f"{metrics[f'idle_half_share_d01_{k}min']:.4f}"
    resident = summary["resident_under_half_share"]
    assert table_row(html, f"resident &lt; half, {metrics['keep_alive_min']}-minute keep-alive") == [
        f"{resident[k]:.4f}" for k in ("d01_all", "d01_active", "pooled_all", "pooled_active")]
    assert table_row(html, "idle &gt; half, 1-minute bins")[0] == f"{metrics['idle_half_share_d01']:.4f}"
    # the figures compared with the published ones, with their numbers
    at, ar = summary["apps_and_triggers"], summary["arrivals"]
    assert f"apps with one function: <strong>{100 * at['apps_one_function_share']:.1f}%</strong>" in html
    assert f"apps with CV above 1: <strong>{100 * ar['app_iat_cv_above_1_share']:.1f}%</strong>" in html
    for trigger in summary["trigger_mix"]:
        assert [f"{trigger['functions']:,}", f"{100 * trigger['function_share']:.1f}%",
                f"{100 * trigger['invocation_share']:.1f}%"] in [cells[:3] for cells in table_rows(html, trigger["trigger"])]
    assert "SYNTHETIC" in html and "over 97%" in html
    assert "PosixPath" not in html and "WARNING" not in html
    assert not re.search(r"\d\.\d{7,}", re.sub(r"<(style|script)[^>]*>.*?</\1>|base64,[^\"]*", "", html, flags=re.DOTALL))
    assert images(html) >= len(CHARACTERIZATION_FIGURES)
    assert {p.stem for p in (tmp_path / "figures").glob("*.png")} >= CHARACTERIZATION_FIGURES
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
