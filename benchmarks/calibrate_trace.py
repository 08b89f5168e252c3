"""Calibration of the synthetic trace at scale: every target of SYNTHETIC.json, measured on the files.

    python benchmarks/calibrate_trace.py --work /tmp/mm-calib [--sizes 10000x14,2000x2] [--seeds 42]

For each size (functions x days) and seed, writes the trace with `manymodels synth-trace`, then
measures it again from the CSVs read back (`calibrate_directory`, the code that also measures a real
trace) and checks that this equals the manifest. Writes benchmarks/results/calibrate_trace.md and
.json: per target, the value, what each size achieved, the tolerance and pass/fail. Exits 1 if a
target fails at the largest size. Optional: --speed-baseline DIR (a checkout of the previous
generator) times both generators on the same size in the same run and reports the ratio."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.trace.calibration import calibrate_directory, summary


def synth(package_root: Path, out: Path, functions: int, days: int, seed: int) -> float:
    env = dict(os.environ, PYTHONPATH=str(package_root), MANYMODELS_NO_PROGRESS="1")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pipeline.cli", "synth-trace", "--functions", str(functions),
                    "--days", str(days), "--seed", str(seed), "--out", str(out.resolve())], check=True, env=env,
                   cwd=package_root)  # python -m puts the working directory first on sys.path
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--work", type=Path, default=Path("/tmp/mm-calib"))
    parser.add_argument("--sizes", default="10000x14,2000x2", help="functions x days, comma-separated, or none")
    parser.add_argument("--seeds", default="42")
    parser.add_argument("--speed-baseline", type=Path, default=None)
    parser.add_argument("--speed-size", default="10000x2")
    args = parser.parse_args()
    sizes = [] if args.sizes == "none" else [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    out_dir = ROOT / "benchmarks" / "results"
    results: dict = {"runs": []}
    if not sizes:  # speed only: keep the calibration runs of the last full benchmark
        results = json.loads((out_dir / "calibrate_trace.json").read_text())
    for functions, days in sizes:
        for seed in seeds:
            out = args.work / f"trace_{functions}x{days}_s{seed}"
            seconds = synth(ROOT, out, functions, days, seed)
            manifest = json.loads((out / "SYNTHETIC.json").read_text())
            measured, report = calibrate_directory(out)
            same = all(
                (measured[k] == v) or (isinstance(v, float) and abs(measured[k] - v) <= 1e-9 * max(1.0, abs(v)))
                for k, v in manifest["measured"].items() if isinstance(v, (int, float)))
            results["runs"].append({"functions": functions, "days": days, "seed": seed, "seconds": round(seconds, 1),
                                    "files_equal_manifest": same, "summary": summary(report), "report": report,
                                    "reference_real_d01_rows": manifest["reference_real_d01_rows"],
                                    "assumptions": manifest["assumptions"]})
            print(f"{functions}x{days} seed {seed}: {summary(report)} in {seconds:.0f} s; "
                  f"manifest equals the files read back: {same}", flush=True)
    if args.speed_baseline is not None:
        functions, days = (int(v) for v in args.speed_size.split("x"))
        new = synth(ROOT, args.work / "speed_new", functions, days, 42)
        old = synth(args.speed_baseline, args.work / "speed_old", functions, days, 42)
        results["speed"] = {"size": args.speed_size, "new_s": round(new, 1), "baseline_s": round(old, 1),
                            "ratio": round(new / old, 2)}
        print(f"speed {args.speed_size}: {new:.1f} s vs baseline {old:.1f} s (x{new / old:.2f})")
    (out_dir / "calibrate_trace.json").write_text(json.dumps(results, indent=2))
    lines = ["| target | value | " + " | ".join(f"{r['functions']:,} x {r['days']} (seed {r['seed']})"
                                                 for r in results["runs"]) + " | tolerance (first) |",
             "|---|---|" + "---|" * len(results["runs"]) + "---|"]
    first = results["runs"][0]["report"]
    for key, entry in first.items():
        cells = []
        for run in results["runs"]:
            e = run["report"][key]
            value = "-" if e["achieved"] is None else f"{e['achieved']:.4g}"
            cells.append(f"{value} {e['status']}")
        lines.append(f"| {key} | {entry['target']:g} | " + " | ".join(cells) + f" | {entry['tolerance']:.4g} |")
    lines.append("")
    lines.append("| run | pass | fail | unresolved | seconds |")
    lines.append("|---|---|---|---|---|")
    for run in results["runs"]:
        s = run["summary"]
        lines.append(f"| {run['functions']:,} x {run['days']} seed {run['seed']} | {s['pass']} | {s['fail']} | "
                     f"{s['unresolved']} | {run['seconds']} |")
    if "speed" in results:
        sp = results["speed"]
        lines.append("")
        lines.append(f"Speed at {sp['size']}: {sp['new_s']} s vs {sp['baseline_s']} s for the previous "
                     f"generator in the same run (ratio {sp['ratio']}).")
    (out_dir / "calibrate_trace.md").write_text("\n".join(lines) + "\n")
    largest = max(results["runs"], key=lambda r: r["functions"] * r["days"])
    return 0 if largest["summary"]["fail"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
