"""Every notebook renders on a tiny trace; the HTML has its figures and the metrics' own numbers."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import polars as pl
import pytest

from pipeline.characterize.stage import characterize
from pipeline.report import render
from pipeline.simulate.run import sweep
from pipeline.simulate.summary import write_summary
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
    table = sweep(root / "workloads" / "r", ["lru", "belady", "cremebrulee"], [200.0, 1000.0], [0, 1], root / "simulation",
                  workers=2)
    (root / "metrics" / "simulation.json").write_text(json.dumps(write_summary(table, root / "workloads" / "r", root / "simulation")))
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


def simulation_html(simulation_dir: Path, metrics_path: Path, tmp_path: Path, cdf_memory_mb: str) -> str:
    return render(NOTEBOOKS / "simulation.ipynb", tmp_path / "s.html", {
        "simulation_dir": str(simulation_dir), "metrics_path": str(metrics_path),
        "cdf_memory_mb": cdf_memory_mb, "figures_dir": str(tmp_path / "figures"), "plots_dir": str(tmp_path / "plots")},
        tmp_path / "executed").read_text()


def test_simulation_report(stage_outputs, tmp_path):
    html = simulation_html(stage_outputs / "simulation", stage_outputs / "metrics" / "simulation.json", tmp_path, "700")
    winners = pl.read_parquet(stage_outputs / "simulation" / "winners.parquet").filter(pl.col("online_only"))
    requested = json.loads((stage_outputs / "simulation" / "grid.json").read_text())["requested_model_mb"]
    for row in winners.iter_rows(named=True):
        verdict = f"<strong>{row['winner']}</strong>" if row["meaningful"] else "no meaningful winner"
        cells = table_row(html, f"{row['memory_mb']:,.0f} MB ({100 * row['memory_mb'] / requested:.0f}%)")
        assert cells[:5] == [verdict, row["best_policy"], f"{row['best_hit_ratio']:.4f}", row["runner_up_policy"],
                             f"{row['margin']:.2g}"], row
        assert cells[7] == f"{row['overloaded_runs']} of {row['runs']}"  # the sweep reports `overloaded`
    assert f"No meaningful winner at {winners.filter(~pl.col('meaningful')).height} of {winners.height} memory sizes" in html
    assert "does not report which runs are overloaded" not in html
    assert "was not swept" in html  # 700 MB is not a swept size: said, not silently replaced
    assert "SYNTHETIC" in html and "PosixPath" not in html
    assert images(html) >= 4
    assert {p.stem for p in (tmp_path / "figures").glob("*.png")} >= {
        "hit_ratio_vs_memory", "p99_latency_vs_memory", "latency_cdf", "cold_starts_vs_memory"}
    assert (tmp_path / "plots" / "hit_ratio_vs_memory.csv").exists()


def test_simulation_report_marks_overloaded_runs(stage_outputs, tmp_path):
    sim = tmp_path / "simulation"
    shutil.copytree(stage_outputs / "simulation", sim)
    table = pl.read_parquet(sim / "sweep.parquet")
    table = table.with_columns((pl.col("memory_mb") == table["memory_mb"].min()).alias("overloaded"))
    table.write_parquet(sim / "sweep.parquet")
    metrics = write_summary(table, stage_outputs / "workloads" / "r", sim)
    (tmp_path / "simulation.json").write_text(json.dumps(metrics))
    html = simulation_html(sim, tmp_path / "simulation.json", tmp_path, "auto")
    assert metrics["overloaded_runs"] == table["overloaded"].sum()
    winners = pl.read_parquet(sim / "winners.parquet").filter(pl.col("online_only")).sort("memory_mb")
    overloaded = [f"{r['overloaded_runs']} of {r['runs']}" for r in winners.iter_rows(named=True)]
    assert not overloaded[0].startswith("0 of") and overloaded[-1].startswith("0 of")
    for text in overloaded:
        assert f"<td>{text}</td>" in html
    assert "does not report which runs are overloaded" not in html and "was not swept" not in html


def test_notebook_finds_the_repo_root_when_the_kernel_starts_in_notebooks(stage_outputs, tmp_path):
    """`jupyter lab notebooks/`: the kernel's cwd is notebooks/, the default paths are relative to the root."""
    import papermill

    root = tmp_path / "repo"
    (root / "notebooks").mkdir(parents=True)
    (root / "pipeline").mkdir()
    (root / "dvc.yaml").write_text("stages: {}\n")
    shutil.copytree(stage_outputs / "characterization", root / "datasets" / "characterization")
    shutil.copytree(stage_outputs / "metrics", root / "reports" / "metrics")
    papermill.execute_notebook(str(NOTEBOOKS / "characterization.ipynb"), str(tmp_path / "out.ipynb"),
                               kernel_name="python3", progress_bar=False, cwd=str(root / "notebooks"))
    assert (root / "reports" / "figures" / "characterization" / "idle_half_share_by_resolution.png").exists()
    assert not (root / "notebooks" / "reports").exists()
