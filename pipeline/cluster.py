"""dask.distributed clients: a LocalCluster by default, any scheduler address when given.

`scheduler` is one of:
- None or "local": a LocalCluster of `workers` single-threaded worker processes (the default);
- "threads": an in-process cluster of threads (cheap to start; what the tests use);
- an address such as "tcp://10.0.0.5:8786": an existing cluster.
The unit of work is a day of the trace or one (policy, memory, seed) simulation, so results
come back as small frames and are combined exactly by the caller.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from .errors import ManyModelsError
from .files import fault_point
from .logs import log, progress_bar

# an address of an existing cluster; anything else but "local" and "threads" is an error
ADDRESS = re.compile(r"^(tcp|tls|ucx|ws|wss|inproc)://\S+$")
CONNECT_TIMEOUT_S = 10.0  # a scheduler address that does not answer as dask fails after this long


def connect_timeout_s() -> float:
    return float(os.environ.get("MANYMODELS_CONNECT_TIMEOUT_S", CONNECT_TIMEOUT_S))


def check_scheduler(scheduler: str) -> None:
    if scheduler not in ("local", "threads") and not ADDRESS.match(scheduler):
        raise ManyModelsError(f"--scheduler {scheduler!r}: expected 'local', 'threads' or an address such as "
                              "tcp://host:8786")


def probe_scheduler(address: str, timeout_s: float) -> None:
    """Fail within `timeout_s` unless a dask scheduler answers at `address` (a port held by any
    other server would otherwise make the dask client wait for ever)."""
    from distributed.comm import connect

    async def identity() -> dict:
        comm = await connect(address, timeout=timeout_s)
        try:
            await comm.write({"op": "identity"})
            return await comm.read()
        finally:
            comm.abort()

    async def bounded() -> dict:
        return await asyncio.wait_for(identity(), timeout_s)

    try:
        reply = asyncio.run(bounded())
    except (OSError, TimeoutError, ValueError) as error:
        raise ManyModelsError(f"--scheduler {address}: no dask scheduler answered within {timeout_s:g} s "
                              f"({type(error).__name__})") from error
    if not isinstance(reply, dict) or reply.get("type") != "Scheduler":
        raise ManyModelsError(f"--scheduler {address}: the server there is not a dask scheduler")


def dask_setup(worker: Any) -> None:
    """Run by dask in each LocalCluster worker process: Ctrl-C in the terminal reaches the whole
    process group, but only this process's client decides how to stop (it closes the cluster);
    a worker left to handle SIGINT itself prints its own KeyboardInterrupt traceback."""
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    _silence_task_errors()


def _silence_task_errors() -> None:
    """A task's failure reaches the user as the one-line error of the CLI; dask's own log of it
    ("Compute Failed ... Traceback") is noise, in this process and in worker processes."""
    for name in ("distributed.worker", "distributed.core", "distributed.comm", "distributed.scheduler",
                 "distributed.client", "distributed.nanny", "distributed.utils_perf", "distributed.process"):
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)


@contextmanager
def dask_client(scheduler: str | None = None, workers: int | None = None) -> Iterator[Any]:
    from distributed import Client, LocalCluster

    scheduler = scheduler or os.environ.get("MANYMODELS_SCHEDULER") or "local"
    check_scheduler(scheduler)
    if workers is not None and workers < 1:
        raise ManyModelsError(f"--workers/--dask-workers must be at least 1, got {workers}")
    _silence_task_errors()
    n_workers = workers or min(os.cpu_count() or 1, 4)
    if scheduler == "local":
        # each worker process gets its share of the cores for polars/DuckDB threads, so that
        # workers do not oversubscribe the machine
        threads = str(max(1, (os.cpu_count() or 1) // n_workers))
        # Ctrl-C during start-up: SIGINT is blocked while the worker processes are spawned (they
        # inherit the mask and never see it); this process gets it once the cluster is up
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            fault_point("cluster:starting")
            cluster = LocalCluster(
                n_workers=n_workers, threads_per_worker=1, processes=True,
                dashboard_address=":0", silence_logs=logging.CRITICAL + 1,
                env={"POLARS_MAX_THREADS": threads, "OMP_NUM_THREADS": threads},
                preload=["pipeline.cluster"],  # dask_setup below, in every worker process
            )
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        client = Client(cluster)
        client.run(_silence_task_errors)
        log.info("dask LocalCluster with %d worker processes", n_workers)
    elif scheduler == "threads":
        cluster = LocalCluster(
            n_workers=1, threads_per_worker=n_workers, processes=False,
            dashboard_address=":0", silence_logs=logging.CRITICAL + 1,
        )
        client = Client(cluster)
        log.info("dask in-process cluster with %d threads", n_workers)
    else:
        cluster = None
        probe_scheduler(scheduler, connect_timeout_s())
        client = Client(scheduler, timeout=connect_timeout_s())
        log.info("dask cluster at %s", scheduler)
    fault_point("cluster:started")
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def map_on_cluster(
    function: Callable[..., Any], items: Sequence[Any], description: str,
    scheduler: str | None = None, workers: int | None = None, **kwargs: Any,
) -> list[Any]:
    """Run `function(item, **kwargs)` for every item on dask with a progress bar; results in item order.

    The first failure is re-raised as is (so a ManyModelsError keeps its message)."""
    from distributed import as_completed

    with dask_client(scheduler, workers) as client:
        futures = [client.submit(function, item, pure=False, **kwargs) for item in items]
        index = {future.key: i for i, future in enumerate(futures)}
        results: list[Any] = [None] * len(futures)
        with progress_bar(description, len(futures)) as advance:
            for future in as_completed(futures):
                results[index[future.key]] = future.result()
                advance()
        return results
