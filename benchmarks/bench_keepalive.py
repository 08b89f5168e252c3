"""Keep-alive policies' simulator time vs the plain core (issue 13's 2x bar), on a small workload.

LRU with latency vs `ttl`, `hybrid-histogram`, `forecast-prewarm` at 0.4x the requested-model memory
(as bench_beyond.py), interleaved rounds in one process, best of `--rounds`, in process CPU time
(the runs are 0.03-0.1 s: wall time on a shared machine is dominated by preemption).

    python benchmarks/bench_keepalive.py --workload datasets/workloads/replay --rounds 12"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("MANYMODELS_NO_PROGRESS", "1")
POLICIES = ("lru", "ttl", "hybrid-histogram", "forecast-prewarm")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", required=True)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--out", help="write the figures as JSON here")
    args = parser.parse_args()

    from pipeline.simulate.core import simulate
    from pipeline.simulate.run import load_workload
    from pipeline.simulate.summary import requested_model_mb

    workload, _ = load_workload(Path(args.workload))
    memory = round(0.4 * requested_model_mb(Path(args.workload)))
    for policy in POLICIES:  # compile / warm up
        simulate(workload, policy, memory, workers=args.workers)
    best = dict.fromkeys(POLICIES, float("inf"))
    for _ in range(args.rounds):
        for policy in POLICIES:
            start = time.process_time()
            simulate(workload, policy, memory, workers=args.workers)
            best[policy] = min(best[policy], time.process_time() - start)
    report = {"workload": args.workload, "memory_mb": memory, "rounds": args.rounds, "load_average": os.getloadavg(),
              "cpu_seconds": best, "x_plain": {p: best[p] / best["lru"] for p in POLICIES}}
    for policy in POLICIES:
        print(f"{policy}: {best[policy]:.4f} s CPU = {best[policy] / best['lru']:.2f}x plain LRU")
    print(f"load average {report['load_average'][0]:.1f}")
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
