import os

import pytest

# tests never need the network, and run dask in-process unless a test asks for a LocalCluster
os.environ.setdefault("MANYMODELS_NO_PROGRESS", "1")
os.environ.setdefault("MANYMODELS_SCHEDULER", "threads")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")


@pytest.fixture(scope="session")
def small_synthetic_trace(tmp_path_factory):
    """A small synthetic trace (300 functions x 3 days) and its ingested database."""
    from pipeline.trace.ingest import ingest
    from pipeline.trace.synthetic import SyntheticTraceConfig, synthesize_trace

    root = tmp_path_factory.mktemp("synthetic")
    trace = root / "trace"
    synthesize_trace(SyntheticTraceConfig(functions=300, days=3, seed=7), trace)
    db = root / "trace.duckdb"
    ingest(trace, db)
    return trace, db


@pytest.fixture(autouse=True)
def _log_records_reach_caplog():
    """A CLI call made in-process configures the project logger with propagate=False (its own rich
    handler); later tests that read log records through caplog need them to reach the root again."""
    import logging

    logger = logging.getLogger("manymodels")
    saved = logger.propagate
    logger.propagate = True
    yield
    logger.propagate = saved
