"""The `manymodels` command line: thin shells around the stage functions."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from .errors import ManyModelsError
from .logs import configure

_state = {"verbose": False}

cli = typer.Typer(
    name="manymodels", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    help="Characterize serverless traces, synthesize edge inference workloads, simulate model caches.",
)

Scheduler = Annotated[str | None, typer.Option(
    help="dask scheduler: 'local' (LocalCluster, default), 'threads' (in-process), or an address tcp://host:port")]
Workers = Annotated[int | None, typer.Option(help="workers for the LocalCluster (default: cores, at most 4)")]


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            print(f"manymodels {version('manymodels')}")
        except PackageNotFoundError:
            print("manymodels (not installed)")
        raise typer.Exit()


@cli.callback()
def main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="debug logging; tracebacks of unexpected errors",
                                          metavar="")] = False,
    show_version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, metavar="",
                                               help="print the version and exit")] = False,
) -> None:
    _state["verbose"] = verbose
    configure(verbose)


@cli.command("synth-trace")
def synth_trace(
    out: Annotated[Path, typer.Option(help="directory to write the trace CSVs into")],
    functions: Annotated[int, typer.Option(help="number of functions")] = 2000,
    days: Annotated[int, typer.Option(help="number of days (1..14)")] = 2,
    seed: Annotated[int, typer.Option(help="random seed")] = 42,
    never_invoked_share: Annotated[float, typer.Option(
        help="ASSUMPTION (not published): share of functions listed in the files but never invoked")] = 0.0,
) -> None:
    """Write a synthetic trace in the exact Azure Functions 2019 schema, calibrated to published statistics.

    SYNTHETIC.json beside the CSVs lists every calibration target with the value achieved, its
    tolerance and pass/fail, measured on the files written."""
    from .trace.synthetic import SyntheticTraceConfig, synthesize_trace

    synthesize_trace(SyntheticTraceConfig(functions=functions, days=days, seed=seed,
                                          never_invoked_share=never_invoked_share), out)


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
    force: Annotated[bool, typer.Option(help="rebuild even if the inputs are unchanged", metavar="")] = False,
    metrics: Annotated[Path | None, typer.Option(help="write an ingest summary JSON (per-day conservation) here")] = None,
    digest: Annotated[Path | None, typer.Option(
        help="write the database's content digest (rows and row hashes per table) here: deterministic, "
             "where the DuckDB file is not, so DVC can track it")] = None,
) -> None:
    """Ingest every day found in TRACE into one DuckDB file (atomic, idempotent, conserving counts)."""
    from .trace.ingest import ingest as run
    from .trace.ingest import ingest_summary, write_digest

    result = run(trace, db, scheduler=scheduler, workers=workers, force=force)
    if digest is not None:
        write_digest(result.db, digest)
    if metrics is not None:
        _write_json(metrics, ingest_summary(result.db))


@cli.command()
def characterize(
    db: Annotated[Path, typer.Option(help="trace database written by `manymodels ingest`")] = Path("datasets/trace.duckdb"),
    out: Annotated[Path, typer.Option(help="directory for the Parquet tables and fitted_params.json")] = Path("datasets/characterization"),
    metrics: Annotated[Path, typer.Option(help="metrics JSON (DVC metrics)")] = Path("reports/metrics/characterization.json"),
    headline_day: Annotated[int, typer.Option(help="the day of the headline figure (the paper's is d01)")] = 1,
    resolutions_min: Annotated[str, typer.Option(help="bin widths (minutes, dividing 1440) of the multi-resolution headline")] = "1,5,10,60",
    keep_alive_min: Annotated[int, typer.Option(help="keep-alive (minutes) of the residency headline")] = 10,
    scheduler: Scheduler = None,
    workers: Workers = None,
) -> None:
    """Idle-time headline, popularity and heavy-tail fits, arrivals, idle periods, resources."""
    from .characterize.stage import characterize as run

    try:
        resolutions = [int(k) for k in _split([resolutions_min])]
    except ValueError as error:
        raise ManyModelsError(f"--resolutions-min takes whole minutes: {error}") from error
    run(db, out, metrics, scheduler=scheduler, workers=workers, headline_day=headline_day,
        resolutions_min=resolutions, keep_alive_min=keep_alive_min)


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
    format: Annotated[str, typer.Option("--format", help="csv | libcachesim | oraclegeneral | cremebrulee | azure2019")],
    out: Annotated[Path, typer.Option(help="output directory (libcachesim, oraclegeneral: a file path or a directory)")],
    time_unit: Annotated[str, typer.Option(help="libcachesim CSV time column: s (libCacheSim's unit) | ms")] = "s",
    worker_memory_mb: Annotated[float | None, typer.Option(
        help="cremebrulee: warn about models larger than this worker memory (its simulator crashes on them)")] = None,
) -> None:
    """Export a workload for other tools (libCacheSim CSV and oracleGeneral, CremeBrulee, Azure-2019 replayers, CSV)."""
    from .workload.export import export as run

    run(workload, format, out, time_unit=time_unit, worker_memory_mb=worker_memory_mb)


def _policy_params(ttl_min: float, alpha: float, beta: float, cost: str) -> dict:
    return {"ttl": {"ttl_min": ttl_min}, "cremebrulee": {"alpha": alpha, "beta": beta, "cost": cost},
            "cremebrulee-oracle": {"alpha": alpha, "beta": beta, "cost": cost},
            "hybrid-histogram": {"ttl_min": ttl_min}, "forecast-prewarm": {"ttl_min": ttl_min}}


TtlMin = Annotated[float, typer.Option(help="keep-alive TTL policy: idle minutes before unload")]
Alpha = Annotated[float, typer.Option(help="CremeBrulee frequency exponent a")]
Beta = Annotated[float, typer.Option(help="CremeBrulee cost exponent b")]
Cost = Annotated[str, typer.Option(help="CremeBrulee reload cost: load | load_over_exec")]
MaxWaitMs = Annotated[float, typer.Option(help="drop a request that waited this long without starting "
                                                "(counted as timed_out); 0: no limit")]
Interference = Annotated[float, typer.Option(help="execution time x (1 + K (busy - 1)), busy = executions running "
                                                   "on the server when it starts, itself included; 0: off")]
LoadInterference = Annotated[float, typer.Option(help="execution time x (1 + K2 loads), loads = loads running on the "
                                                       "server when it starts; 0: off")]

HostOverheadMb = Annotated[float, typer.Option(help="memory of a model server process, MB (see --hosting); 0: not counted")]
Hosting = Annotated[str, typer.Option(help="multi: one process per server shared by its models | per-model: one process per model")]
LearnedCache = Annotated[str, typer.Option(help="GATI learned cache hit=H,speedup=S,memory=F: a fraction H of a model's requests "
                                                "take S x its exec time; F x its size while resident; 'off'")]


def _on_off(values: list[str] | None, flag: str) -> list[bool]:
    """A sweep's on/off flag values ('off,on' sweeps both)."""
    words = {"on": True, "true": True, "yes": True, "1": True, "off": False, "false": False, "no": False, "0": False}
    result = []
    for value in _split(values or ["off"]):
        if value.lower() not in words:
            raise ManyModelsError(f"{flag} takes on/off values (comma-separated to sweep both), got {value!r}")
        result.append(words[value.lower()])
    return list(dict.fromkeys(result))


def _mechanism_settings(shared_weights, adaptive_variants, host_overhead_mb, hosting, learned_cache) -> list[dict]:
    """Every combination of the swept memory-mechanism values (sweep's extra dimensions)."""
    import itertools

    try:
        hosts = [float(v) for v in _split(host_overhead_mb or ["0"])]
    except ValueError as error:
        raise ManyModelsError(f"--host-overhead-mb takes numbers: {error}") from error
    learned = [v.strip() for value in (learned_cache or ["off"]) for v in value.split(";") if v.strip()]
    return [{"shared_weights": sw, "adaptive_variants": av, "host_overhead_mb": h, "hosting": ho, "learned_cache": lc}
            for sw, av, h, ho, lc in itertools.product(
                _on_off(shared_weights, "--shared-weights"), _on_off(adaptive_variants, "--adaptive-variants"),
                hosts, _split(hosting or ["multi"]), learned)]


@cli.command()
def simulate(
    workload: Annotated[Path, typer.Option(help="workload directory written by synthesize")],
    policy: Annotated[str, typer.Option(help="eviction policy (lru, lfu, fifo, random, gdsf, ttl, belady, cremebrulee, "
                                             "cremebrulee-oracle, hybrid-histogram, forecast-prewarm)")],
    memory_mb: Annotated[float, typer.Option(help="memory per server, MB")],
    out: Annotated[Path, typer.Option(help="directory for metrics.json, metrics.parquet, memory.parquet")],
    servers: Annotated[int, typer.Option(help="number of servers")] = 1,
    workers: Annotated[int, typer.Option(help="inference slots per server")] = 4,
    seed: Annotated[int, typer.Option(help="seed for tie-breaks and the random policy")] = 0,
    no_latency: Annotated[bool, typer.Option("--no-latency", help="all load/exec/unload times zero (pure object cache)", metavar="")] = False,
    records: Annotated[bool, typer.Option(help="also write per-request records", metavar="")] = False,
    ttl_min: TtlMin = 10.0, alpha: Alpha = 1.0, beta: Beta = 1.0, cost: Cost = "load",
    max_wait_ms: MaxWaitMs = 0.0,
    shared_weights: Annotated[bool, typer.Option("--shared-weights", metavar="", help=(
        "ShmFaas: models bound to one catalog model share its weights on a server; each instance adds instance_mb"))] = False,
    adaptive_variants: Annotated[bool, typer.Option("--adaptive-variants", metavar="", help=(
        "swap a resident model for a smaller variant of its family instead of evicting it; serve a request by a "
        "smaller resident variant"))] = False,
    host_overhead_mb: HostOverheadMb = 0.0, hosting: Hosting = "multi", learned_cache: LearnedCache = "off",
    interference: Interference = 0.0,
    load_interference: LoadInterference = 0.0,
) -> None:
    """Simulate one model cache on a workload. (hybrid-histogram and forecast-prewarm: --ttl-min is their fixed
    keep-alive; with --no-latency their timers run with zero load and execution times.)"""
    from .simulate.run import run_one

    params = _policy_params(ttl_min, alpha, beta, cost).get(policy, {})
    run_one(workload, policy, memory_mb, out, servers=servers, workers=workers, seed=seed, no_latency=no_latency,
            policy_params=params, records=records, max_wait_ms=max_wait_ms or None,
            shared_weights=shared_weights, adaptive_variants=adaptive_variants, host_overhead_mb=host_overhead_mb,
            hosting=hosting, learned_cache=learned_cache, interference=interference,
            load_interference=load_interference)


def _split(values: list[str]) -> list[str]:
    return [v for value in values for v in value.replace(",", " ").split()]


@cli.command()
def sweep(
    workload: Annotated[Path, typer.Option(help="workload directory written by synthesize")],
    policies: Annotated[list[str], typer.Option(help="policies (repeat or comma-separate)")],
    out: Annotated[Path, typer.Option(help="directory for sweep.parquet")],
    memory_mb: Annotated[list[str] | None, typer.Option(help="memory sizes in MB (repeat or comma-separate)")] = None,
    memory_fractions: Annotated[list[str] | None, typer.Option(
        help="memory sizes as fractions of the workload's requested-model memory (instead of --memory-mb)")] = None,
    seeds: Annotated[list[str] | None, typer.Option(help="seeds (repeat or comma-separate; default 0)")] = None,
    servers: Annotated[int, typer.Option(help="number of servers")] = 1,
    workers: Annotated[int, typer.Option(help="inference slots per server")] = 4,
    no_latency: Annotated[bool, typer.Option("--no-latency", help="all load/exec/unload times zero", metavar="")] = False,
    metrics: Annotated[Path | None, typer.Option(help="write the sweep headline JSON (DVC metrics) here")] = None,
    ttl_min: TtlMin = 10.0, alpha: Alpha = 1.0, beta: Beta = 1.0, cost: Cost = "load",
    max_wait_ms: MaxWaitMs = 0.0,
    scheduler: Scheduler = None,
    dask_workers: Workers = None,
    shared_weights: Annotated[list[str] | None, typer.Option(help="on, off, or off,on (a sweep dimension)")] = None,
    adaptive_variants: Annotated[list[str] | None, typer.Option(help="on, off, or off,on (a sweep dimension)")] = None,
    host_overhead_mb: Annotated[list[str] | None, typer.Option(
        help="host process memory, MB (repeat or comma-separate: a sweep dimension)")] = None,
    hosting: Annotated[list[str] | None, typer.Option(help="multi and/or per-model (a sweep dimension)")] = None,
    learned_cache: Annotated[list[str] | None, typer.Option(
        help="hit=H,speedup=S,memory=F or off (repeat, or separate with ';': a sweep dimension)")] = None,
    interference: Annotated[list[str] | None, typer.Option(
        help="interference K values (comma list: an extra sweep dimension, column `interference`; default 0)")] = None,
    load_interference: Annotated[list[str] | None, typer.Option(
        help="load interference K2 values (comma list: an extra sweep dimension; default 0)")] = None,
) -> None:
    """Sweep policies x memory sizes x seeds on dask.distributed; one tidy table sweep.parquet."""
    from .simulate.run import sweep as run
    from .simulate.summary import memory_grid_mb, write_summary

    if bool(memory_mb) == bool(memory_fractions):
        raise ManyModelsError("sweep: give exactly one of --memory-mb and --memory-fractions")
    try:
        fractions = [float(f) for f in _split(memory_fractions)] if memory_fractions else None
        memory = memory_grid_mb(workload, fractions) if fractions else [float(m) for m in _split(memory_mb)]
        seed_list = [int(s) for s in _split(seeds or ["0"])]
        k_list = [float(k) for k in _split(interference or ["0"])]
        k2_list = [float(k) for k in _split(load_interference or ["0"])]
    except ValueError as error:
        raise ManyModelsError(f"--memory-mb, --memory-fractions, --seeds, --interference and --load-interference "
                              f"take numbers: {error}") from error
    table = run(workload, _split(policies), memory, seed_list, out, servers=servers, workers=workers,
                no_latency=no_latency, policy_params=_policy_params(ttl_min, alpha, beta, cost),
                scheduler=scheduler, dask_workers=dask_workers, max_wait_ms=max_wait_ms or None,
                mechanisms=_mechanism_settings(shared_weights, adaptive_variants, host_overhead_mb, hosting, learned_cache),
                interference=k_list, load_interference=k2_list)
    flat = write_summary(_configurations(table), workload, out, fractions)
    if metrics is not None:
        _write_json(metrics, flat)


def _configurations(table):
    """For the sweep summary: when memory-mechanism settings were swept, each (policy, setting) is
    compared as its own configuration ('lru+shared-weights'), so the spread and winners never mix
    settings."""
    import polars as pl

    from .simulate.run import MECHANISM_COLUMNS, mechanism_label

    swept = [c for c in MECHANISM_COLUMNS if c in table.columns and table[c].n_unique() > 1]
    if not swept:
        return table
    labels = [mechanism_label(row) for row in table.select(list(MECHANISM_COLUMNS)).iter_rows(named=True)]
    return table.with_columns(pl.Series("policy", [p + ("+" + lab if lab else "") for p, lab in
                                                   zip(table["policy"].to_list(), labels)]))


@cli.command()
def beyond(
    out: Annotated[Path, typer.Option(help="directory for beyond.parquet")],
    workloads_dir: Annotated[Path, typer.Option(help="directory holding the workload directories")] = Path("datasets/workloads"),
    workloads: Annotated[list[str] | None, typer.Option(help="workload names (repeat or comma-separate)")] = None,
    memory_fractions: Annotated[list[str] | None, typer.Option(
        help="memory sizes as fractions of each workload's requested-model memory")] = None,
    mechanisms: Annotated[list[str] | None, typer.Option(
        help="mechanisms: plain, keep-alive, hybrid-histogram, forecast-prewarm, interference, load-interference, "
             "shared-weights, adaptive-variants, learned-cache, host-overhead")] = None,
    seed: Annotated[int, typer.Option(help="simulator seed")] = 0,
    servers: Annotated[int, typer.Option(help="number of servers")] = 1,
    workers: Annotated[list[str] | None, typer.Option(
        help="inference slots per server: one value, or one per workload (comma list; default 4); 'auto': "
             "twice the workload's mean executions in flight, rounded up (average utilization at most 50%)")] = None,
    ttl_min: Annotated[float, typer.Option(help="keep-alive minutes (keep-alive; fallback of the pre-warm policies)")] = 10.0,
    interference: Annotated[float, typer.Option(help="K of the interference mechanism")] = 0.5,
    load_interference: Annotated[float, typer.Option(help="K2 of the load-interference mechanism")] = 0.5,
    learned_cache: Annotated[str, typer.Option(help="the learned-cache mechanism's hit=H,speedup=S,memory=F")] = (
        "hit=0.3,speedup=0.4,memory=0.1"),
    host_overhead_mb: Annotated[float, typer.Option(help="the host-overhead mechanism's process memory, MB")] = 200.0,
    metrics: Annotated[Path | None, typer.Option(help="write the headline JSON (DVC metrics) here")] = None,
    scheduler: Scheduler = None,
    dask_workers: Workers = None,
) -> None:
    """Plain eviction vs each mechanism beyond eviction (keep-alive and pre-warming, interference) across memory sizes."""
    from .simulate.beyond import beyond_headline, mechanism_runs, run_beyond

    try:
        fractions = [float(f) for f in _split(memory_fractions or ["0.1,0.25,0.5,1.0"])]
        slots = [None if w.strip().lower() == "auto" else int(w) for w in _split(workers or ["4"])]
    except ValueError as error:
        raise ManyModelsError(f"--memory-fractions and --workers take numbers (--workers also 'auto'): {error}") from error
    names = _split(mechanisms) if mechanisms else list(mechanism_runs(ttl_min, interference, load_interference))

    table = run_beyond(workloads_dir, _split(workloads or ["replay"]), fractions, names, out, seed=seed,
                       servers=servers, workers=slots, ttl_min=ttl_min, interference=interference,
                       load_interference=load_interference, scheduler=scheduler, dask_workers=dask_workers,
                       learned_cache=learned_cache, host_overhead_mb=host_overhead_mb)
    if metrics is not None:
        _write_json(metrics, beyond_headline(table))


@cli.command()
def fidelity(
    workload: Annotated[Path, typer.Option(help="candidate workload directory written by synthesize")],
    out: Annotated[Path, typer.Option(help="directory for the fidelity tables (and the reference replay)")],
    metrics: Annotated[Path, typer.Option(help="metrics JSON to merge this workload's entry into (keyed by name)")],
    reference: Annotated[Path | None, typer.Option(help="reference workload (default: the replay of the source trace)")] = None,
    db: Annotated[Path | None, typer.Option(help="trace database (to build the reference replay)")] = Path("datasets/trace.duckdb"),
    memory_fractions: Annotated[str, typer.Option(help="memory points: fractions of the reference's requested-model memory")] = "0.05,0.10,0.25,0.50",
    policies: Annotated[str, typer.Option(help="policies of the no-latency hit ratios (comma-separated)")] = "lru,gdsf,ttl",
    ttl_min: TtlMin = 10.0,
    latency_policy: Annotated[str, typer.Option(help="policy of the cold-start ratio with latency")] = "lru",
    latency_memory_fraction: Annotated[float, typer.Option(help="memory point of the cold-start ratio")] = 0.25,
    slots: Annotated[int, typer.Option(help="inference slots of the cold-start run")] = 4,
    seed: Annotated[int, typer.Option(help="simulator seed (tie-breaks)")] = 0,
    scheduler: Annotated[str | None, typer.Option(
        help="dask scheduler of the cache runs: 'local' (default), 'threads', tcp://host:port, or 'serial' (no dask)")] = None,
    dask_workers: Workers = None,
) -> None:
    """Compare a workload with the trace's replay (or --reference): KS distances, quantiles, cache outcomes."""
    from .fidelity.stage import FidelityConfig
    from .fidelity.stage import fidelity as run
    from .simulate.run import check_policy

    try:
        fractions = tuple(float(f) for f in _split([memory_fractions]))
    except ValueError as error:
        raise ManyModelsError(f"--memory-fractions takes numbers: {error}") from error
    policy_list = tuple(_split([policies]))
    for policy in (*policy_list, latency_policy):
        check_policy(policy)
    config = FidelityConfig(memory_fractions=fractions, policies=policy_list, ttl_min=ttl_min,
                            latency_policy=latency_policy, latency_memory_fraction=latency_memory_fraction,
                            slots=slots, seed=seed, scheduler=scheduler, dask_workers=dask_workers)
    run(workload, out, metrics, reference=reference, db=db, config=config)


@cli.command("fidelity-metrics")
def fidelity_metrics(
    fidelity_dir: Annotated[Path, typer.Option(help="directory holding one `manymodels fidelity` output per workload")],
    metrics: Annotated[Path, typer.Option(help="metrics JSON to write (every workload's entry, keyed by name)")],
) -> None:
    """Collect every workload's fidelity.json under FIDELITY_DIR into one metrics JSON (DVC metrics)."""
    from .fidelity.stage import collect_metrics

    collect_metrics(fidelity_dir, metrics)


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
    """Console entry point: bad input becomes one line on stderr and exit status 2; Ctrl-C exit 130.

    No input prints a Python traceback: an error nobody anticipated is still one line (with its
    type), and `--verbose` adds the traceback for a bug report."""
    import duckdb
    import polars.exceptions

    try:
        cli()
    except ManyModelsError as error:
        _fail(str(error))
    except KeyboardInterrupt:  # typer turns Ctrl-C inside a command into exit 130 itself
        _interrupted()
    except SystemExit as exit_:
        if exit_.code == 130:
            _interrupted()
        raise
    except duckdb.InterruptException:  # Ctrl-C while DuckDB runs a query
        _interrupted()
    except (OSError, duckdb.Error, polars.exceptions.PolarsError) as error:
        # input the checks above did not anticipate (unreadable file, foreign database): still one line
        _fail(f"{type(error).__name__}: {error}", error)
    except MemoryError as error:
        _fail("out of memory (try smaller inputs or fewer workers)", error)
    except Exception as error:  # noqa: BLE001 - the promise is one line, never a traceback
        _fail(f"unexpected {type(error).__name__}: {error} (run with --verbose for the traceback)", error)


def _fail(message: str, error: BaseException | None = None) -> None:
    if error is not None and _state["verbose"]:
        import traceback

        traceback.print_exception(error, file=sys.stderr)
    _quiet_dask()
    print(f"manymodels: error: {' '.join(message.split())}", file=sys.stderr)
    sys.exit(2)


def _interrupted() -> None:
    _quiet_dask()
    print("manymodels: interrupted (outputs left as they were)", file=sys.stderr)
    sys.exit(130)


def _quiet_dask() -> None:
    """dask logs its own shutdown complaints (closed comms, cancelled tasks) after an error: drop them."""
    import logging

    for name in ("distributed", "tornado", "asyncio"):
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)


def _write_json(path: Path, data: object) -> None:
    from .files import write_text_atomic
    from .logs import log

    write_text_atomic(path, json.dumps(data, indent=2, default=str) + "\n")
    log.info("wrote %s", path)


if __name__ == "__main__":
    app()
