"""dask.distributed clients: a LocalCluster by default, any scheduler address when given.

`scheduler` is one of:
- None or "local": a LocalCluster of `workers` single-threaded worker processes (the default);
- "threads": an in-process cluster of threads (cheap to start; what the tests use);
- an address such as "tcp://10.0.0.5:8786": an existing cluster.
The unit of work is a day of the trace or one (policy, memory, seed) simulation, so results
come back as small frames and are combined exactly by the caller.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from .logs import log, progress_bar


@contextmanager
def dask_client(scheduler: str | None = None, workers: int | None = None) -> Iterator[Any]:
    from distributed import Client, LocalCluster

    scheduler = scheduler or os.environ.get("MANYMODELS_SCHEDULER") or "local"
    n_workers = workers or min(os.cpu_count() or 1, 4)
    if scheduler == "local":
        # each worker process gets its share of the cores for polars/DuckDB threads, so that
        # workers do not oversubscribe the machine
        threads = str(max(1, (os.cpu_count() or 1) // n_workers))
        cluster = LocalCluster(
            n_workers=n_workers, threads_per_worker=1, processes=True,
            dashboard_address=":0", silence_logs=40,
            env={"POLARS_MAX_THREADS": threads, "OMP_NUM_THREADS": threads},
        )
        client = Client(cluster)
        log.info("dask LocalCluster with %d worker processes", n_workers)
    elif scheduler == "threads":
        cluster = LocalCluster(
            n_workers=1, threads_per_worker=n_workers, processes=False,
            dashboard_address=":0", silence_logs=40,
        )
        client = Client(cluster)
        log.info("dask in-process cluster with %d threads", n_workers)
    else:
        cluster = None
        client = Client(scheduler)
        log.info("dask cluster at %s", scheduler)
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
