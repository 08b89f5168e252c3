"""CLI shell details: --version, flags shown as flags, defaults that match params.yaml, export options."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import typer
import yaml
from typer.testing import CliRunner

from pipeline import cli as cli_module
from pipeline.cli import cli

from .test_exports import write_workload

REPO = Path(__file__).resolve().parents[1]


def test_version():
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"manymodels {version('manymodels')}"


def test_boolean_flags_have_no_value_placeholder():
    runner = CliRunner()
    commands = sorted(typer.main.get_command(cli).commands)
    assert {"export", "simulate", "ingest"} <= set(commands)
    for command in [[], *([c] for c in commands)]:
        result = runner.invoke(cli, [*command, "--help"], terminal_width=200)
        assert result.exit_code == 0, command
        flagged = [line for line in result.output.splitlines() if "<bool>" in line and "--help" not in line]
        assert not flagged, (command, flagged)
    assert "--no-latency" in runner.invoke(cli, ["simulate", "--help"], terminal_width=200).output


def test_simulate_and_sweep_workers_default_to_params_yaml():
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for command in (cli_module.simulate, cli_module.sweep):
        assert inspect.signature(command).parameters["workers"].default == params["simulate"]["workers"]


def test_export_options_from_the_command_line(tmp_path):
    workload = write_workload(tmp_path / "w", [0, 2500], [0, 1], [1.0, 2.0])
    result = CliRunner().invoke(cli, ["export", "--workload", str(workload), "--format", "libcachesim",
                                      "--time-unit", "ms", "--out", str(tmp_path / "t.csv")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "t.csv").read_text().splitlines() == ["time,obj_id,obj_size", "0,0,1000000", "2500,1,2000000"]
    assert json.loads((tmp_path / "export_manifest_libcachesim.json").read_text())["time_unit"] == "ms"
    run = subprocess.run([sys.executable, "-m", "pipeline.cli", "export", "--workload", str(workload), "--format",
                          "libcachesim", "--time-unit", "h", "--out", str(tmp_path / "x.csv")],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 2 and run.stderr.strip().splitlines()[-1].startswith("manymodels: error: --time-unit 'h'")
