"""Workload generation speed (requests/second) and peak memory, streaming a large workload.

    python benchmarks/bench_synthesize.py --models 100000 --rate-scale 0.5

Needs the default pipeline outputs (datasets/trace.duckdb, datasets/characterization). Writes
benchmarks/results/synthesize.md."""

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
import os
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
    parser.add_argument("--rate-scale", type=float, default=0.5)
    args = parser.parse_args()
    env = dict(os.environ, MANYMODELS_NO_PROGRESS="1")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cases = [("replay", 0, 1440, 1.0), ("parametric", args.models, args.minutes, args.rate_scale)]
        for mode, models, minutes, scale in cases:
            out = Path(tmp) / mode
            seconds, peak_mb = measure(RUN.format(mode=mode, models=models, minutes=minutes, scale=scale, out=str(out)), env)
            requests = int((out / "rows.json").read_text())
            size_mb = (out / "requests.parquet").stat().st_size / 1e6
            rows.append({"mode": mode, "models": models or "all", "minutes": minutes, "requests": requests,
                         "seconds": seconds, "M requests/s": requests / seconds / 1e6, "peak MB": peak_mb,
                         "requests.parquet MB": size_mb})
    text = f"Workload synthesis benchmark (one process; peak = whole process tree).\n\n{markdown_table(rows)}\n"
    print(text)
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "synthesize.md").write_text(text)
    (out / "synthesize.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
