"""Simulator benchmark, all in the same run (ratios are measured side by side):
(a) LRU --no-latency end to end from the workload directory (read, simulate, summarize) vs
    libCacheSim's LRU (the libcachesim package, C core) on the same request sequence in its binary
    oracleGeneral format (written here with a numpy structured dtype: 24-byte little-endian records
    u32 time in seconds, u64 obj_id, u32 obj_size in bytes, i64 next access index or -1);
(b) LRU with load/exec/unload latency: requests/second of the compiled core;
(c) every built-in policy with 2,000+ models resident: time vs LRU's (object cache and with latency);
(d) a parametric workload with many models (`--scale-workload`, e.g. 100,000 models over a day),
    every policy as an object cache on the whole workload, and with latency on its first
    `--scale-latency-requests` requests; seconds, requests/second and the day's time (extrapolated
    where only part of a day was run);
(e) a policy x memory sweep on dask with 1 worker vs 2 workers.

    python benchmarks/bench_simulate.py --workload W --scale-workload W100K --sweep-workload WS

Writes benchmarks/results/simulate.md and simulate.json."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from measure import best_of, markdown_table

os.environ.setdefault("MANYMODELS_NO_PROGRESS", "1")

POLICIES = ["lru", "fifo", "lfu", "random", "gdsf", "ttl", "cremebrulee", "belady", "cremebrulee-oracle"]
ORACLE_GENERAL = np.dtype([("time", "<u4"), ("obj_id", "<u8"), ("obj_size", "<u4"), ("next", "<i8")])


def write_oracle_general(workload, path: Path) -> None:
    from pipeline.simulate.core import next_use
    n = len(workload.t_ms)
    position, _ = next_use(workload.t_ms, workload.model_id)
    records = np.empty(n, dtype=ORACLE_GENERAL)
    records["time"] = workload.t_ms // 1000
    records["obj_id"] = workload.model_id
    records["obj_size"] = np.round(workload.size_mb * 1_000_000).astype(np.int64)[workload.model_id]
    records["next"] = np.where(position < n, position, -1)
    records.tofile(path)


def top_models_mb(workload, count: int) -> float:
    """Memory that holds the `count` most requested models."""
    requests = np.bincount(workload.model_id, minlength=len(workload.size_mb))
    return float(workload.size_mb[np.argsort(-requests, kind="stable")[:count]].sum())


def resident_after(result) -> int:
    return int(result.loads - result.evictions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workload", type=Path, default=Path("datasets/workloads/parametric"))
    parser.add_argument("--memory-mb", type=float, default=2000.0, help="(a) memory")
    parser.add_argument("--many-memory-mb", type=float, default=None,
                        help="(c) memory holding 2,000+ models (default: the sizes of the 2,500 most requested)")
    parser.add_argument("--workers", type=int, default=256, help="inference slots for the runs with latency")
    parser.add_argument("--scale-workload", type=Path, default=None, help="(d) a workload with many models")
    parser.add_argument("--scale-memory-mb", type=float, default=None)
    parser.add_argument("--scale-latency-requests", type=int, default=2_000_000,
                        help="(d) with latency: run the first N requests of the scale workload (0: all)")
    parser.add_argument("--sweep-workload", type=Path, default=None, help="(e) default: --workload")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    import libcachesim as lcs

    from pipeline.simulate.core import Workload, simulate
    from pipeline.simulate.run import load_workload, summarize, sweep

    workload, _ = load_workload(args.workload)
    n = len(workload.t_ms)
    simulate(load_workload(args.workload)[0], "lru", args.memory_mb, no_latency=True)  # load the compiled code
    load_average = os.getloadavg()
    out: dict = {"workload": str(args.workload), "requests": n, "models": len(workload.size_mb),
                 "load_average_start": load_average}
    with tempfile.TemporaryDirectory() as tmp:
        # (a) end to end vs libCacheSim on its binary format
        trace = Path(tmp) / "trace.oracleGeneral.bin"
        write_oracle_general(workload, trace)
        capacity = int(args.memory_mb * 1_000_000)

        def run_lcs():
            reader = lcs.TraceReader(str(trace), lcs.TraceType.ORACLE_GENERAL_TRACE)
            return lcs.LRU(cache_size=capacity).process_trace(reader)

        run_lcs()  # warm the page cache
        lcs_s, lcs_out = best_of(run_lcs, args.repeat)

        def end_to_end():
            w, _ = load_workload(args.workload)
            return summarize(simulate(w, "lru", args.memory_mb, no_latency=True), w)

        ours_s, ours = best_of(end_to_end, args.repeat)
        read_s, _ = best_of(lambda: load_workload(args.workload), args.repeat)
        core_s, core = best_of(lambda: simulate(workload, "lru", args.memory_mb, no_latency=True), args.repeat)
        summary_s, _ = best_of(lambda: summarize(core, workload), args.repeat)
        a_rows = [
            {"run": "libCacheSim LRU, oracleGeneral binary, process_trace", "seconds": lcs_s,
             "M requests/s": n / lcs_s / 1e6, "x libCacheSim time": 1.0, "hit ratio": f"{1 - lcs_out[0]:.6f}"},
            {"run": "manymodels LRU --no-latency, end to end (read parquet, simulate, summarize)", "seconds": ours_s,
             "M requests/s": n / ours_s / 1e6, "x libCacheSim time": ours_s / lcs_s, "hit ratio": f"{ours['hit_ratio']:.6f}"},
            {"run": "  of which: load_workload() (read, verify checksums and rows)", "seconds": read_s,
             "M requests/s": n / read_s / 1e6, "x libCacheSim time": read_s / lcs_s, "hit ratio": ""},
            {"run": "  of which: simulate()", "seconds": core_s,
             "M requests/s": n / core_s / 1e6, "x libCacheSim time": core_s / lcs_s, "hit ratio": f"{core.hits.mean():.6f}"},
            {"run": "  of which: summarize()", "seconds": summary_s,
             "M requests/s": n / summary_s / 1e6, "x libCacheSim time": summary_s / lcs_s, "hit ratio": ""},
        ]
        print(a_rows, flush=True)
        # (c) every policy with 2,000+ models resident
        many_mb = args.many_memory_mb or top_models_mb(workload, 2500)
        # (b) LRU with latency, at the memory of (c) (a server that keeps up)
        latency_s, latency = best_of(lambda: simulate(workload, "lru", many_mb, workers=args.workers), args.repeat)
        b_rows = [{"run": f"LRU with latency ({many_mb:.0f} MB, {args.workers} slots)", "seconds": latency_s,
                   "M requests/s": n / latency_s / 1e6, "hit ratio": f"{latency.hits.mean():.6f}",
                   "overloaded": summarize(latency, workload)["overloaded"]}]
        print(b_rows, flush=True)
        c_rows = []
        for no_latency in (True, False):
            base = None
            for policy in POLICIES:
                seconds, result = best_of(lambda p=policy, nl=no_latency: simulate(
                    workload, p, many_mb, no_latency=nl, workers=args.workers), 1 if policy != "lru" else 2)
                base = base or seconds
                c_rows.append({"mode": "object cache" if no_latency else "with latency", "policy": policy,
                               "seconds": seconds, "x LRU time": seconds / base,
                               "resident models at the end": resident_after(result),
                               "hit ratio": f"{result.hits.mean():.6f}"})
                print(c_rows[-1] if no_latency in (True, False) and c_rows else "", flush=True)
        out.update(a=a_rows, b=b_rows, c=c_rows, c_memory_mb=many_mb)
        print(json.dumps(out, default=str)[-3000:], flush=True)  # progress
        # (d) many models
        d_rows = []
        if args.scale_workload is not None:
            big, manifest = load_workload(args.scale_workload)
            big_n = len(big.t_ms)
            span_min = manifest.get("minutes") or (float(big.t_ms[-1]) / 60_000)
            scale_mb = args.scale_memory_mb or top_models_mb(big, 2500)
            cut = args.scale_latency_requests if 0 < args.scale_latency_requests < big_n else big_n
            part = Workload(big.t_ms[:cut], big.model_id[:cut], big.size_mb, big.load_ms, big.exec_ms, big.unload_ms,
                            big.name)
            for mode, w in (("object cache", big), ("with latency", part)):
                for policy in POLICIES:
                    start = time.perf_counter()
                    result = simulate(w, policy, scale_mb, workers=args.workers, no_latency=mode == "object cache")
                    seconds = time.perf_counter() - start
                    d_rows.append({"mode": mode, "policy": policy, "models": len(w.size_mb), "requests": len(w.t_ms),
                                   "seconds": seconds, "M requests/s": len(w.t_ms) / seconds / 1e6,
                                   "overloaded": summarize(result, w)["overloaded"],
                                   # per request run, to the whole workload, then to a day
                                   "seconds per day (extrapolated)": seconds * big_n / len(w.t_ms) * 1440 / span_min,
                                   "resident models at the end": resident_after(result),
                                   "hit ratio": f"{result.hits.mean():.6f}"})
                    print(d_rows[-1], flush=True)
                    del result
            out.update(d=d_rows, d_memory_mb=scale_mb, d_minutes=span_min)
            print(json.dumps(out, default=str)[-3000:], flush=True)  # progress
            del big
        # (e) sweep on 1 vs 2 dask workers
        sweep_dir = args.sweep_workload or args.workload
        e_rows = []
        policies = ["lru", "lfu", "fifo", "gdsf", "cremebrulee", "belady"]
        memory = [250.0, 500.0, 1000.0, 2000.0]
        for dask_workers in (1, 2):
            start = time.perf_counter()
            sweep(sweep_dir, policies, memory, [0], Path(tmp) / f"sweep{dask_workers}", workers=4,
                  scheduler="local", dask_workers=dask_workers)
            e_rows.append({"dask workers": dask_workers, "runs": len(policies) * len(memory),
                           "seconds": time.perf_counter() - start})
        for row in e_rows:
            row["speed-up vs 1 worker"] = e_rows[0]["seconds"] / row["seconds"]
        out.update(e=e_rows, e_workload=str(sweep_dir))
        print(json.dumps(out, default=str)[-3000:], flush=True)  # progress
    text = (f"Simulator benchmark on `{args.workload}` ({n} requests, {len(workload.size_mb)} models), one process, "
            f"same run, best of {args.repeat} where repeated.\n\n(a) LRU without latency at {args.memory_mb:.0f} MB:\n\n"
            f"{markdown_table(a_rows)}\n\n(b) LRU with latency:\n\n{markdown_table(b_rows)}\n\n"
            f"(c) every policy at {many_mb:.0f} MB (2,000+ models resident):\n\n{markdown_table(c_rows)}\n")
    if d_rows:
        text += (f"\n(d) `{args.scale_workload}`, {out['d_minutes']:.0f} simulated minutes, {out['d_memory_mb']:.0f} MB, "
                 f"{args.workers} slots with latency (first {args.scale_latency_requests or 'all'} requests):\n\n"
                 f"{markdown_table(d_rows)}\n")
    text += f"\n(e) sweep on `{sweep_dir}` (LocalCluster, includes cluster start-up):\n\n{markdown_table(e_rows)}\n"
    out["load_average_end"] = os.getloadavg()
    text += (f"\nLoad average (1, 5, 15 min) at the start {tuple(round(x, 2) for x in load_average)}, at the end "
             f"{tuple(round(x, 2) for x in out['load_average_end'])} on {os.cpu_count()} cores.\n")
    print(text)
    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    (results / "simulate.md").write_text(text)
    (results / "simulate.json").write_text(json.dumps(out, indent=2, default=str))


if __name__ == "__main__":
    main()
