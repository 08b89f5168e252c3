"""`dvc repro` reproduces anywhere: the pipeline run on a tiny trace in two directories gives the same
hashes for every stage output in dvc.lock (so a clone at another path leaves `git status` clean),
and editing one workload reruns only that workload's synthesize.

Known exceptions, each compared without its run-dependent part: the DuckDB file (a random id in its
header; the ingest fingerprint holds file mtimes), the fidelity reference key (holds that
fingerprint), and the sweep's wall-clock throughput column while it exists."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
# DuckDB writes a random identifier into each database file's header: the file's bytes differ
# between runs even when every table is identical. Its tables are compared below instead.
DUCKDB_OUT = "datasets/trace.duckdb"
DIGEST_OUT = "datasets/trace.digest.json"
WALL_CLOCK = "simulated_requests_per_second"
REFERENCE_KEY = "fidelity_reference.json"

pytestmark = pytest.mark.slow


def tiny_params() -> dict:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["trace"]["dir"] = "datasets/trace/synthetic"
    params["trace"]["synthetic"].update(functions=120, days=1)
    params["ingest"].update(scheduler="threads")
    params["characterize"].update(scheduler="threads", headline_day=1)
    for workload in params["workloads"].values():
        workload.update(models=12, minutes=120)
    params["simulate"].update(scheduler="threads", policies="lru,fifo,belady", seeds="0")  # two online: a runner-up
    params["simulate"].update({"memory_fractions": "0.2,1.0"} if "memory_fractions" in params["simulate"]
                              else {"memory_mb": "300,1000"})
    if "fidelity" in params:
        params["fidelity"].update(scheduler="threads", policies="lru", memory_fractions="0.25")
    return params


def checkout(root: Path) -> Path:
    """A copy of the repository's pipeline (code, notebooks, dvc.yaml) with tiny params."""
    root.mkdir(parents=True)
    for name in ("pipeline", "notebooks"):
        shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
    shutil.copy(REPO / "dvc.yaml", root / "dvc.yaml")
    (root / "params.yaml").write_text(yaml.safe_dump(tiny_params(), sort_keys=False))
    return root


def start_dvc(root: Path, *args: str) -> tuple[subprocess.Popen, Path]:
    env = {**os.environ, "PYTHONPATH": str(root), "DVC_NO_ANALYTICS": "1", "MANYMODELS_NO_PROGRESS": "1"}
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    log = root / "dvc-command.log"  # a file, not a pipe: two runs at once never wait on a reader
    with log.open("w") as handle:
        process = subprocess.Popen([sys.executable, "-m", "dvc", *args], cwd=root, env=env, stdout=handle,
                                   stderr=subprocess.STDOUT)
    return process, log


def finish(started: tuple[subprocess.Popen, Path]) -> str:
    process, log = started
    process.wait()
    output = log.read_text()
    assert process.returncode == 0, f"{' '.join(map(str, process.args))} in {log.parent}:\n{output[-4000:]}"
    return output


def dvc(root: Path, *args: str) -> str:
    return finish(start_dvc(root, *args))


def lock_hashes(root: Path) -> dict[tuple[str, str], str]:
    lock = yaml.safe_load((root / "dvc.lock").read_text())
    hashes = {}
    for stage, entry in lock["stages"].items():
        for kind in ("deps", "outs"):
            for item in entry.get(kind, []):
                hashes[(stage, kind, item["path"])] = item.get("md5")
    return hashes


def same_files(runs: list[Path], directory: str, skip: set[str]) -> bool:
    """Every file under `directory` (but those named in `skip`) has the same bytes in both runs."""
    listings = [{p.relative_to(root): p for p in (root / directory).rglob("*") if p.is_file() and p.name not in skip}
                for root in runs]
    assert listings[0].keys() == listings[1].keys()
    different = [str(rel) for rel in listings[0] if listings[0][rel].read_bytes() != listings[1][rel].read_bytes()]
    assert not different, different
    return True


def tables(db: Path) -> dict[str, pl.DataFrame]:
    with duckdb.connect(str(db), read_only=True) as con:
        names = [row[0] for row in con.sql("SELECT table_name FROM information_schema.tables").fetchall()]
        result = {}
        for name in names:
            frame = con.sql(f"SELECT * FROM {name}").pl()
            result[name] = frame.sort(frame.columns)
    # the ingest fingerprint holds file modification times (to skip re-ingesting unchanged files)
    result["trace_meta"] = result["trace_meta"].filter(~pl.col("key").is_in(["fingerprint", "trace_dir"]))
    return result


def test_repro_in_two_directories_gives_the_same_lock(tmp_path):
    runs = [checkout(tmp_path / "first"), checkout(tmp_path / "elsewhere" / "second")]
    for root in runs:
        dvc(root, "init", "--no-scm", "-q")
        shutil.copy(REPO / ".dvcignore", root / ".dvcignore")  # bytecode and numba caches are not code
    for process in [start_dvc(root, "repro", "-q") for root in runs]:  # both at once (2 cores)
        finish(process)
    assert_same_outputs(runs, tmp_path)

    # editing one workload reruns that workload's synthesize only
    root = runs[0]
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["workloads"]["replay"]["seed"] += 1
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    status = dvc(root, "status")
    assert "synthesize@replay" in status and "synthesize@parametric" not in status


def assert_same_outputs(runs: list[Path], base: Path) -> None:
    first, second = (lock_hashes(root) for root in runs)
    assert first.keys() == second.keys() and len(first) > 40
    different = {key[2] for key in first if first[key] != second[key]}
    # the database file is not a DVC out (DuckDB writes a random identifier into its header); its
    # content digest is, and every output DVC tracks is byte-identical
    assert DIGEST_OUT in {key[2] for key in first} and DUCKDB_OUT not in {key[2] for key in first}
    assert not different, sorted(different)
    one, two = (tables(root / DUCKDB_OUT) for root in runs)
    assert one.keys() == two.keys() and "invocations" in one
    for name in one:
        assert one[name].equals(two[name]), name
    # no output names the checkout's absolute path
    for root in runs:
        for path in [*(root / "datasets").rglob("*.json"), *(root / "reports").rglob("*.json"),
                     *(root / "reports").rglob("*.ipynb"), *(root / "reports").glob("*.html")]:
            assert str(base) not in path.read_text(errors="replace"), path
