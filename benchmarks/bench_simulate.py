"""Simulator benchmark, all in the same run:
(1) requests/second of the in-process core for LRU on one core (object-cache mode and with latency),
    side by side with the libcachesim Python package's LRU on the same request sequence and sizes;
(2) a policy x memory sweep on dask with 1 worker vs 2 workers.

    python benchmarks/bench_simulate.py --workload datasets/workloads/parametric

Writes benchmarks/results/simulate.md."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from measure import markdown_table

os.environ.setdefault("MANYMODELS_NO_PROGRESS", "1")


def best_of(function, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workload", type=Path, default=Path("datasets/workloads/parametric"))
    parser.add_argument("--memory-mb", type=float, default=2000.0)
    parser.add_argument("--latency-memory-mb", type=float, default=8000.0,
                        help="memory for the run with latency (small memories collapse under load-time backlog)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    import libcachesim as lcs

    from pipeline.simulate.core import simulate
    from pipeline.simulate.run import load_workload, sweep
    from pipeline.workload.export import export

    workload, _ = load_workload(args.workload)
    n = len(workload.t_ms)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        trace = Path(tmp) / "trace.csv"
        export(args.workload, "libcachesim", trace)
        params = lcs.ReaderInitParam()
        params.has_header, params.delimiter = True, ","
        params.time_field, params.obj_id_field, params.obj_size_field = 1, 2, 3
        capacity = int(args.memory_mb * 1_000_000)

        def run_lcs():
            reader = lcs.TraceReader(str(trace), lcs.TraceType.CSV_TRACE, params)
            return lcs.LRU(cache_size=capacity).process_trace(reader)

        run_lcs()  # warm the page cache
        lcs_s = best_of(run_lcs, args.repeat)
        miss_ratio = run_lcs()[0]
        ours_s = best_of(lambda: simulate(workload, "lru", args.memory_mb, no_latency=True), args.repeat)
        ours_hit = simulate(workload, "lru", args.memory_mb, no_latency=True).hits.mean()
        latency_s = best_of(lambda: simulate(workload, "lru", args.latency_memory_mb, workers=16), args.repeat)
        latency_hit = simulate(workload, "lru", args.latency_memory_mb, workers=16).hits.mean()
        for name, seconds, hit in (
            ("libcachesim LRU (C, CSV reader), process_trace", lcs_s, 1 - miss_ratio),
            ("manymodels LRU --no-latency (object cache)", ours_s, ours_hit),
            (f"manymodels LRU with load/exec latency ({args.latency_memory_mb:.0f} MB, 16 slots)", latency_s, latency_hit),
        ):
            rows.append({"run": name, "requests": n, "seconds": seconds, "M requests/s": n / seconds / 1e6,
                         "x libcachesim time": seconds / lcs_s, "hit ratio": "" if hit is None else f"{hit:.6f}"})
        sweep_rows = []
        policies = ["lru", "lfu", "fifo", "gdsf", "cremebrulee", "belady"]
        memory = [250.0, 500.0, 1000.0, 2000.0]
        for workers in (1, 2):
            start = time.perf_counter()
            sweep(args.workload, policies, memory, [0, 1], Path(tmp) / f"sweep{workers}", workers=4,
                  scheduler="local", dask_workers=workers)
            sweep_rows.append({"dask workers": workers, "runs": len(policies) * len(memory) * 2,
                               "seconds": time.perf_counter() - start})
        for row in sweep_rows:
            row["speed-up vs 1 worker"] = sweep_rows[0]["seconds"] / row["seconds"]
    text = (f"Simulator benchmark on `{args.workload}` ({n} requests, {args.memory_mb:.0f} MB), best of {args.repeat}, "
            f"one process, same run.\n\n{markdown_table(rows)}\n\nSweep (LocalCluster, includes cluster start-up):\n\n"
            f"{markdown_table(sweep_rows)}\n")
    print(text)
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "simulate.md").write_text(text)
    (out / "simulate.json").write_text(json.dumps({"single": rows, "sweep": sweep_rows}, indent=2))


if __name__ == "__main__":
    main()
