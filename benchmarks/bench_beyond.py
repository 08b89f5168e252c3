"""Memory mechanisms (issue 13): their cost in simulator time and their effect, on the default workloads.

(a) time: each mechanism's run vs the plain core (LRU with latency, same workload, same memory),
    best of `--repeat`, measured side by side in this run (bar: at most 2x);
(b) shared weights (ShmFaas): memory saved vs the same run's unshared accounting (every instance
    holding its own weights), peak and memory-time, with memory large enough that nothing is
    evicted (the setting of ShmFaas's "over 29.4%") and at fractions of the requested-model memory,
    with the hit ratio with and without sharing (unshared here = the default run: size_mb each);
(c) adaptive variants: accuracy_mean, downgrades, requests served by a smaller variant, hit ratio,
    cold starts vs the plain run;
(d) learned cache and host overhead: latency and memory with and without.

    python benchmarks/bench_beyond.py --workload datasets/workloads/replay --workload datasets/workloads/parametric

Writes benchmarks/results/beyond.md and beyond.json."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("MANYMODELS_NO_PROGRESS", "1")
sys.path.insert(0, str(Path(__file__).parent))
from measure import best_of

MECHANISMS = {
    "shared-weights": {"shared_weights": True},
    "adaptive-variants": {"adaptive_variants": True},
    "host-overhead 200 MB (multi)": {"host_overhead_mb": 200.0},
    "learned-cache 0.3/0.4/0.1": {"learned_cache": "hit=0.3,speedup=0.4,memory=0.1"},
    "all four": {"shared_weights": True, "adaptive_variants": True, "host_overhead_mb": 200.0,
                 "learned_cache": "hit=0.3,speedup=0.4,memory=0.1"},
    # the time mechanisms (beyondtime): keep-alive policies run instead of LRU ("policy"); ttl is the fixed
    # keep-alive they refine (a reference, not a mechanism)
    "keep-alive ttl 10 min (reference)": {"policy": "ttl"},
    "hybrid-histogram": {"policy": "hybrid-histogram"},
    "forecast-prewarm": {"policy": "forecast-prewarm"},
    "interference K=0.1": {"interference": 0.1},
    "load-interference K2=0.5": {"load_interference": 0.5},
}


def run(simulate, workload, memory, workers, kwargs):
    """One run of a mechanism: its policy (default LRU) and its simulate() arguments."""
    options = {k: v for k, v in kwargs.items() if k != "policy"}
    return simulate(workload, kwargs.get("policy", "lru"), memory, workers=workers, **options)
FRACTIONS = (0.1, 0.4, 1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", action="append", default=[])
    parser.add_argument("--render-only", action="store_true", help="rewrite beyond.md from beyond.json")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=4, help="inference slots (as params.yaml simulate.workers)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args()

    from pipeline.simulate.core import simulate
    from pipeline.simulate.mechanisms import catalog_arrays
    from pipeline.simulate.run import load_workload, summarize
    from pipeline.simulate.summary import requested_model_mb

    out = Path(args.out)
    if args.render_only:
        render(json.loads((out / "beyond.json").read_text()), out)
        return
    report = {"workers": args.workers, "repeat": args.repeat, "workloads": {}}
    for directory in args.workload:
        workload, _ = load_workload(Path(directory))
        name = Path(directory).name
        requested = requested_model_mb(Path(directory))
        memory = round(0.4 * requested)
        entry = {"requests": len(workload.t_ms), "models": len(workload.size_mb), "requested_model_mb": requested,
                 "timing_memory_mb": memory, "timing": {}, "shared": [], "variants": [], "latency_memory": []}
        simulate(workload, "lru", memory, workers=args.workers)  # compile / warm up
        for kwargs in MECHANISMS.values():
            run(simulate, workload, memory, args.workers, kwargs)
        plain_s, _ = best_of(lambda w=workload, m=memory: simulate(w, "lru", m, workers=args.workers), args.repeat)
        entry["timing"]["plain"] = {"seconds": plain_s, "ratio": 1.0}
        for label, kwargs in MECHANISMS.items():
            seconds, _ = best_of(lambda kw=kwargs, w=workload, m=memory: run(simulate, w, m, args.workers, kw),
                                 args.repeat)
            entry["timing"][label] = {"seconds": seconds, "ratio": seconds / plain_s}
            print(f"{name} {label}: {seconds:.3f} s = {seconds / plain_s:.2f}x plain ({plain_s:.3f} s)", flush=True)
        instance_mb = catalog_arrays(workload).instance_mb[catalog_arrays(workload).index]
        unbounded = 10.0 * (requested + float(instance_mb.sum()))  # nothing evicted
        # the fair unshared baseline at a bounded memory: every instance holds its weights and its
        # instance memory (size_mb + instance_mb), as under --shared-weights without the sharing
        private = dataclasses.replace(workload, size_mb=workload.size_mb + instance_mb, catalog=None,
                                      catalog_index=None)
        for fraction in (*FRACTIONS, None):
            size = unbounded if fraction is None else round(fraction * requested)
            plain = summarize(simulate(workload, "lru", size, workers=args.workers), workload)
            shared = summarize(simulate(workload, "lru", size, workers=args.workers, shared_weights=True), workload)
            unshared = summarize(simulate(private, "lru", size, workers=args.workers), private)
            entry["shared"].append({
                "memory": "unbounded" if fraction is None else f"{fraction:g} x requested", "memory_mb": size,
                "saved_peak": shared["shared_weights_saved_peak"], "saved_time": shared["shared_weights_saved_time"],
                "peak_mb": shared["memory_peak_mb"], "peak_unshared_mb": shared["memory_peak_unshared_mb"],
                "hit_ratio_default": plain["hit_ratio"], "hit_ratio_shared": shared["hit_ratio"],
                "hit_ratio_unshared": unshared["hit_ratio"], "cold_unshared": unshared["cold_starts"],
                "cold_default": plain["cold_starts"], "cold_shared": shared["cold_starts"]})
            if fraction is None:
                continue
            adaptive = summarize(simulate(workload, "lru", size, workers=args.workers, adaptive_variants=True),
                                 workload)
            entry["variants"].append({
                "memory": f"{fraction:g} x requested", "memory_mb": size,
                "accuracy_default": plain["accuracy_mean"], "accuracy_adaptive": adaptive["accuracy_mean"],
                "downgrades": adaptive["downgrades"], "variant_served": adaptive["variant_served"],
                "hit_ratio_default": plain["hit_ratio"], "hit_ratio_adaptive": adaptive["hit_ratio"],
                "cold_default": plain["cold_starts"], "cold_adaptive": adaptive["cold_starts"],
                "p99_default_ms": plain["latency_p99_ms"], "p99_adaptive_ms": adaptive["latency_p99_ms"]})
            for label, kwargs in (("learned-cache 0.3/0.4/0.1", {"learned_cache": "hit=0.3,speedup=0.4,memory=0.1"}),
                                  ("host 200 MB, one process per server", {"host_overhead_mb": 200.0}),
                                  ("host 200 MB, one process per model", {"host_overhead_mb": 200.0,
                                                                         "hosting": "per-model"})):
                other = summarize(simulate(workload, "lru", size, workers=args.workers, **kwargs), workload)
                entry["latency_memory"].append({
                    "memory": f"{fraction:g} x requested", "memory_mb": size, "mechanism": label,
                    "hit_ratio": other["hit_ratio"], "hit_ratio_default": plain["hit_ratio"],
                    "latency_mean_ms": other["latency_mean_ms"], "latency_mean_default_ms": plain["latency_mean_ms"],
                    "p99_ms": other["latency_p99_ms"], "p99_default_ms": plain["latency_p99_ms"],
                    "memory_time_mb_min": other["memory_time_mb_min"],
                    "memory_time_default_mb_min": plain["memory_time_mb_min"]})
        report["workloads"][name] = entry

    out.mkdir(parents=True, exist_ok=True)
    (out / "beyond.json").write_text(json.dumps(report, indent=2) + "\n")
    render(report, out)


def markdown_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def render(report: dict, out: Path) -> None:
    workers, repeat = report["workers"], report["repeat"]
    lines = ["# Memory mechanisms (issue 13): cost and effect", "",
             (f"LRU with latency, {workers} inference slots, 1 server; times best of {repeat}, "
              "measured side by side in one run (`benchmarks/bench_beyond.py`). Hit ratios: default = size_mb "
              "per model (today's accounting); unshared = size_mb + instance_mb per instance (the fair "
              "baseline of sharing); shared = --shared-weights. Saved = 1 - shared / unshared accounting of "
              "the same run."), ""]
    for name, entry in report["workloads"].items():
        lines += [(f"## {name}: {entry['requests']:,} requests, {entry['models']} models, requested-model memory "
                   f"{entry['requested_model_mb']:,.0f} MB"), "",
                  f"### Time vs the plain core (memory {entry['timing_memory_mb']:,} MB)", "",
                  markdown_table(["run", "seconds", "x plain"],
                                 [[k, f"{v['seconds']:.3f}", f"{v['ratio']:.2f}"] for k, v in entry["timing"].items()]),
                  "", "### Shared weights: memory saved vs every instance holding its weights (same run)", "",
                  markdown_table(["memory", "MB", "saved (peak)", "saved (memory-time)", "peak MB", "unshared peak MB",
                                  "hit ratio default", "hit ratio unshared", "hit ratio shared", "cold default",
                                  "cold unshared", "cold shared"],
                                 [[r["memory"], f"{r['memory_mb']:,.0f}", f"{r['saved_peak']:.1%}",
                                   f"{r['saved_time']:.1%}", f"{r['peak_mb']:,.0f}", f"{r['peak_unshared_mb']:,.0f}",
                                   f"{r['hit_ratio_default']:.4f}", f"{r['hit_ratio_unshared']:.4f}",
                                   f"{r['hit_ratio_shared']:.4f}", r["cold_default"], r["cold_unshared"],
                                   r["cold_shared"]] for r in entry["shared"]]),
                  "", "### Adaptive variants", "",
                  markdown_table(["memory", "MB", "accuracy default", "accuracy adaptive", "downgrades",
                                  "served by smaller variant", "hit ratio default", "hit ratio adaptive",
                                  "cold default", "cold adaptive", "p99 default ms", "p99 adaptive ms"],
                                 [[r["memory"], f"{r['memory_mb']:,}", f"{r['accuracy_default']:.4f}",
                                   f"{r['accuracy_adaptive']:.4f}", r["downgrades"], r["variant_served"],
                                   f"{r['hit_ratio_default']:.4f}", f"{r['hit_ratio_adaptive']:.4f}",
                                   r["cold_default"], r["cold_adaptive"], _ms(r["p99_default_ms"]),
                                   _ms(r["p99_adaptive_ms"])] for r in entry["variants"]]),
                  "", "### Learned cache and host process: latency and memory with and without", "",
                  markdown_table(["memory", "mechanism", "hit ratio (default)", "mean latency ms (default)",
                                  "p99 ms (default)", "memory-time MB min (default)"],
                                 [[r["memory"], r["mechanism"], f"{r['hit_ratio']:.4f} ({r['hit_ratio_default']:.4f})",
                                   f"{_ms(r['latency_mean_ms'])} ({_ms(r['latency_mean_default_ms'])})",
                                   f"{_ms(r['p99_ms'])} ({_ms(r['p99_default_ms'])})",
                                   f"{r['memory_time_mb_min']:,.0f} ({r['memory_time_default_mb_min']:,.0f})"]
                                  for r in entry["latency_memory"]]), ""]
    (out / "beyond.md").write_text("\n".join(lines))
    print(f"wrote {out / 'beyond.md'} and {out / 'beyond.json'}")


def _ms(value) -> str:
    return "-" if value is None else f"{value:,.0f}"


if __name__ == "__main__":
    main()
