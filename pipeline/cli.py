"""The `manymodels` command line: thin shells around the stage functions."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from .errors import ManyModelsError
from .logs import configure

cli = typer.Typer(
    name="manymodels", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    help="Characterize serverless traces, synthesize edge inference workloads, simulate model caches.",
)

Scheduler = Annotated[str | None, typer.Option(
    help="dask scheduler: 'local' (LocalCluster, default), 'threads' (in-process), or an address tcp://host:port")]
Workers = Annotated[int | None, typer.Option(help="workers for the LocalCluster (default: cores, at most 4)")]


@cli.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="debug logging")] = False) -> None:
    configure(verbose)


@cli.command("synth-trace")
def synth_trace(
    out: Annotated[Path, typer.Option(help="directory to write the trace CSVs into")],
    functions: Annotated[int, typer.Option(help="number of functions")] = 2000,
    days: Annotated[int, typer.Option(help="number of days (1..14)")] = 2,
    seed: Annotated[int, typer.Option(help="random seed")] = 42,
) -> None:
    """Write a synthetic trace in the exact Azure Functions 2019 schema, calibrated to published statistics."""
    from .trace.synthetic import SyntheticTraceConfig, synthesize_trace

    synthesize_trace(SyntheticTraceConfig(functions=functions, days=days, seed=seed), out)


@cli.command()
def download(
    out: Annotated[Path, typer.Option(help="directory to unpack the CSVs into")] = Path("datasets/azure2019"),
    url: Annotated[list[str] | None, typer.Option(help="archive URL(s) to try in order (default: official, then GitHub release)")] = None,
    timeout: Annotated[float, typer.Option(help="network timeout in seconds")] = 30.0,
) -> None:
    """Fetch the official Azure Functions 2019 archive, verify size and SHA-256, unpack it."""
    from .trace.download import download as fetch

    fetch(out, url, timeout)


@cli.command()
def ingest(
    trace: Annotated[Path, typer.Option(help="directory with the trace CSVs")],
    db: Annotated[Path, typer.Option(help="DuckDB file to write")] = Path("datasets/trace.duckdb"),
    scheduler: Scheduler = None,
    workers: Workers = None,
    force: Annotated[bool, typer.Option(help="rebuild even if the inputs are unchanged")] = False,
    metrics: Annotated[Path | None, typer.Option(help="write an ingest summary JSON (per-day conservation) here")] = None,
) -> None:
    """Ingest every day found in TRACE into one DuckDB file (atomic, idempotent, conserving counts)."""
    from .trace.ingest import ingest as run
    from .trace.ingest import ingest_summary

    result = run(trace, db, scheduler=scheduler, workers=workers, force=force)
    if metrics is not None:
        _write_json(metrics, ingest_summary(result.db))


@cli.command()
def characterize(
    db: Annotated[Path, typer.Option(help="trace database written by `manymodels ingest`")] = Path("datasets/trace.duckdb"),
    out: Annotated[Path, typer.Option(help="directory for the Parquet tables and fitted_params.json")] = Path("datasets/characterization"),
    metrics: Annotated[Path, typer.Option(help="metrics JSON (DVC metrics)")] = Path("reports/metrics/characterization.json"),
    headline_day: Annotated[int, typer.Option(help="the day of the headline figure (the paper's is d01)")] = 1,
    scheduler: Scheduler = None,
    workers: Workers = None,
) -> None:
    """Idle-time headline, popularity and heavy-tail fits, arrivals, idle periods, resources."""
    from .characterize.stage import characterize as run

    run(db, out, metrics, scheduler=scheduler, workers=workers, headline_day=headline_day)


@cli.command()
def synthesize(
    out: Annotated[Path, typer.Option(help="workload directory to write")],
    mode: Annotated[str, typer.Option(help="replay | parametric")] = "replay",
    models: Annotated[int, typer.Option(help="number of workload models")] = 100,
    minutes: Annotated[int, typer.Option(help="duration in minutes")] = 1440,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    db: Annotated[Path | None, typer.Option(help="trace database (replay; parametric fits its model from it)")] = Path("datasets/trace.duckdb"),
    characterization: Annotated[Path | None, typer.Option(help="characterize output dir (no longer read: parametric fits from --db)")] = Path("datasets/characterization"),
    start_minute: Annotated[int, typer.Option(help="window start, minutes from the trace's first day (replay; parametric: the fit window)")] = 0,
    selection: Annotated[str, typer.Option(help="replay: all | uniform | quantile | topk")] = "quantile",
    trigger: Annotated[list[str] | None, typer.Option(help="keep only functions with this trigger (repeatable)")] = None,
    binding: Annotated[str, typer.Option(help="catalog binding: random | round_robin | rank")] = "random",
    arrival: Annotated[str, typer.Option(help="within-minute arrivals: poisson | even")] = "poisson",
    rate_scale: Annotated[float, typer.Option(help="multiply every rate by this (stochastic rounding)")] = 1.0,
    block_minutes: Annotated[int, typer.Option(help="minutes generated and written per block")] = 60,
    catalog: Annotated[Path | None, typer.Option(help="model catalog CSV (default: the embedded one)")] = None,
) -> None:
    """Synthesize a seeded edge workload: models bound to catalog profiles and a request stream."""
    from .workload.synthesize import WorkloadConfig
    from .workload.synthesize import synthesize as run

    config = WorkloadConfig(
        mode=mode, models=models, minutes=minutes, seed=seed, start_minute=start_minute, selection=selection,
        triggers=tuple(trigger or ()), binding=binding, arrival=arrival, rate_scale=rate_scale,
        block_minutes=block_minutes, catalog=str(catalog) if catalog else None)
    run(config, out, db=db, characterization=characterization)


@cli.command()
def export(
    workload: Annotated[Path, typer.Option(help="workload directory written by synthesize")],
    format: Annotated[str, typer.Option("--format", help="csv | libcachesim | cremebrulee | azure2019")],
    out: Annotated[Path, typer.Option(help="output directory (libcachesim: a .csv path or a directory)")],
) -> None:
    """Export a workload for other tools (libCacheSim, CremeBrulee, Azure-2019 replayers, CSV)."""
    from .workload.export import export as run

    run(workload, format, out)


def _policy_params(ttl_min: float, alpha: float, beta: float, cost: str) -> dict:
    return {"ttl": {"ttl_min": ttl_min}, "cremebrulee": {"alpha": alpha, "beta": beta, "cost": cost},
            "cremebrulee-oracle": {"alpha": alpha, "beta": beta, "cost": cost}}


TtlMin = Annotated[float, typer.Option(help="keep-alive TTL policy: idle minutes before unload")]
Alpha = Annotated[float, typer.Option(help="CremeBrulee frequency exponent a")]
Beta = Annotated[float, typer.Option(help="CremeBrulee cost exponent b")]
Cost = Annotated[str, typer.Option(help="CremeBrulee reload cost: load | load_over_exec")]


@cli.command()
def simulate(
    workload: Annotated[Path, typer.Option(help="workload directory written by synthesize")],
    policy: Annotated[str, typer.Option(help="eviction policy (lru, lfu, fifo, random, gdsf, ttl, belady, cremebrulee, cremebrulee-oracle)")],
    memory_mb: Annotated[float, typer.Option(help="memory per server, MB")],
    out: Annotated[Path, typer.Option(help="directory for metrics.json, metrics.parquet, memory.parquet")],
    servers: Annotated[int, typer.Option(help="number of servers")] = 1,
    workers: Annotated[int, typer.Option(help="inference slots per server")] = 1,
    seed: Annotated[int, typer.Option(help="seed for tie-breaks and the random policy")] = 0,
    no_latency: Annotated[bool, typer.Option("--no-latency", help="all load/exec/unload times zero (pure object cache)")] = False,
    records: Annotated[bool, typer.Option(help="also write per-request records")] = False,
    ttl_min: TtlMin = 10.0, alpha: Alpha = 1.0, beta: Beta = 1.0, cost: Cost = "load",
) -> None:
    """Simulate one model cache on a workload."""
    from .simulate.run import run_one

    params = _policy_params(ttl_min, alpha, beta, cost).get(policy, {})
    run_one(workload, policy, memory_mb, out, servers=servers, workers=workers, seed=seed, no_latency=no_latency,
            policy_params=params, records=records)


def _split(values: list[str]) -> list[str]:
    return [v for value in values for v in value.replace(",", " ").split()]


@cli.command()
def sweep(
    workload: Annotated[Path, typer.Option(help="workload directory written by synthesize")],
    policies: Annotated[list[str], typer.Option(help="policies (repeat or comma-separate)")],
    memory_mb: Annotated[list[str], typer.Option(help="memory sizes in MB (repeat or comma-separate)")],
    out: Annotated[Path, typer.Option(help="directory for sweep.parquet")],
    seeds: Annotated[list[str] | None, typer.Option(help="seeds (repeat or comma-separate; default 0)")] = None,
    servers: Annotated[int, typer.Option(help="number of servers")] = 1,
    workers: Annotated[int, typer.Option(help="inference slots per server")] = 1,
    no_latency: Annotated[bool, typer.Option("--no-latency", help="all load/exec/unload times zero")] = False,
    metrics: Annotated[Path | None, typer.Option(help="write the sweep headline JSON (DVC metrics) here")] = None,
    ttl_min: TtlMin = 10.0, alpha: Alpha = 1.0, beta: Beta = 1.0, cost: Cost = "load",
    scheduler: Scheduler = None,
    dask_workers: Workers = None,
) -> None:
    """Sweep policies x memory sizes x seeds on dask.distributed; one tidy table sweep.parquet."""
    from .simulate.run import sweep as run
    from .simulate.run import sweep_headline

    try:
        memory = [float(m) for m in _split(memory_mb)]
        seed_list = [int(s) for s in _split(seeds or ["0"])]
    except ValueError as error:
        raise ManyModelsError(f"--memory-mb and --seeds take numbers: {error}") from error
    table = run(workload, _split(policies), memory, seed_list, out, servers=servers, workers=workers,
                no_latency=no_latency, policy_params=_policy_params(ttl_min, alpha, beta, cost),
                scheduler=scheduler, dask_workers=dask_workers)
    if metrics is not None:
        _write_json(metrics, {"workload": str(workload), "runs": table.height,
                              "source_trace": table["source_trace"][0],
                              "best_online_by_memory_mb": sweep_headline(table),
                              "best_including_offline_by_memory_mb": sweep_headline(table, online_only=False)})


@cli.command()
def report(
    notebook: Annotated[Path, typer.Option(help="parameterized notebook under notebooks/")],
    html: Annotated[Path, typer.Option(help="HTML report to write (code hidden, figures embedded)")],
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="notebook parameter KEY=VALUE (repeatable)")] = None,
    executed_dir: Annotated[Path, typer.Option(help="where the executed notebook copy goes")] = Path("reports/notebooks"),
) -> None:
    """Run a notebook with papermill and render it to HTML with nbconvert."""
    from .report import render

    parameters = {}
    for item in param or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise ManyModelsError(f"--param takes KEY=VALUE, got {item!r}")
        parameters[key] = value
    render(notebook, html, parameters, executed_dir)


def app() -> None:
    """Console entry point: bad input becomes one line on stderr and exit status 2."""
    import duckdb
    import polars.exceptions

    try:
        cli()
    except ManyModelsError as error:
        print(f"manymodels: error: {error}", file=sys.stderr)
        sys.exit(2)
    except (OSError, duckdb.Error, polars.exceptions.PolarsError) as error:
        # input the checks above did not anticipate (unreadable file, foreign database): still one line
        message = " ".join(str(error).split())
        print(f"manymodels: error: {type(error).__name__}: {message}", file=sys.stderr)
        sys.exit(2)


def _write_json(path: Path, data: object) -> None:
    from .logs import log

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    log.info("wrote %s", path)


if __name__ == "__main__":
    app()
