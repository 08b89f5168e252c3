"""Workload generation speed (requests/second) and peak memory, streaming a large workload.

    python benchmarks/bench_synthesize.py --models 100000 --rate-scale 0.02 [--baseline-tree DIR]

Needs the default pipeline outputs (datasets/trace.duckdb, datasets/characterization). The replay of
every function at rate 1 is the baseline of the same run (`x replay` = requests/s over the replay's);
with --baseline-tree (a checkout of another version, e.g. `git archive main | tar -x -C DIR`) its
parametric generator runs the same case in the same run. Writes benchmarks/results/synthesize.md."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from measure import markdown_table, measure

RUN = """
import os, sys
sys.path.insert(0, {tree!r})  # before the working directory, which `python -c` puts first
os.environ['MANYMODELS_NO_PROGRESS'] = '1'
from pathlib import Path
from pipeline.workload.synthesize import WorkloadConfig, synthesize
m = synthesize(WorkloadConfig(mode={mode!r}, models={models}, minutes={minutes}, seed=1, rate_scale={scale}, selection='all'),
               Path({out!r}), db=Path('datasets/trace.duckdb'), characterization=Path('datasets/characterization'))
Path({out!r}, 'rows.json').write_text(str(m['rows']['requests']))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", type=int, default=100_000)
    parser.add_argument("--minutes", type=int, default=1440)
    parser.add_argument("--rate-scale", type=float, default=0.02,
                        help="the parametric case's rate scale (per-model rates follow the trace's functions, so "
                             "100,000 models at 0.5 would write ~0.5 billion requests on the default trace)")
    parser.add_argument("--baseline-tree", type=Path, default=None,
                        help="another checkout whose parametric generator runs the same case (PYTHONPATH)")
    args = parser.parse_args()
    env = dict(os.environ, MANYMODELS_NO_PROGRESS="1")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        here = str(Path(__file__).resolve().parents[1])
        cases = [("replay", "this tree", here, 0, 1440, 1.0)]
        if args.baseline_tree:
            cases.append(("parametric", "baseline tree", str(args.baseline_tree.resolve()), args.models, args.minutes,
                          args.rate_scale))
        cases.append(("parametric", "this tree", here, args.models, args.minutes, args.rate_scale))
        for i, (mode, tree, path, models, minutes, scale) in enumerate(cases):
            out = Path(tmp) / f"{mode}{i}"
            seconds, peak_mb = measure(RUN.format(mode=mode, models=models, minutes=minutes, scale=scale, out=str(out),
                                                  tree=path), dict(env, PYTHONPATH=path))
            requests = int((out / "rows.json").read_text())
            size_mb = (out / "requests.parquet").stat().st_size / 1e6
            rows.append({"mode": mode, "code": tree, "models": models or "all", "minutes": minutes,
                         "rate scale": scale, "requests": requests, "seconds": seconds,
                         "M requests/s": requests / seconds / 1e6, "x replay": 0.0, "peak MB": peak_mb,
                         "requests.parquet MB": size_mb})
    for row in rows:
        row["x replay"] = row["M requests/s"] / rows[0]["M requests/s"]
    text = f"Workload synthesis benchmark (one process; peak = whole process tree).\n\n{markdown_table(rows)}\n"
    print(text)
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "synthesize.md").write_text(text)
    (out / "synthesize.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
