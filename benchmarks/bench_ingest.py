"""Ingest benchmark: manymodels ingest vs a bare CSV read (polars, DuckDB) and the pandas read + melt
of the public notebooks, on a generated full-size trace, all measured in the same run.

    python benchmarks/bench_ingest.py --functions 50000 --days 14 --work /tmp/mm-bench

Writes benchmarks/results/ingest.md (the table quoted in the README)."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from measure import markdown_table, measure

POLARS_READ = """
import polars as pl, sys
from pipeline.trace.schema import INVOCATION_SCHEMA
rows = 0
for path in {paths!r}:
    rows += pl.read_csv(path, schema=INVOCATION_SCHEMA).height
print(rows, file=sys.stderr)
"""
DUCKDB_READ = """
import duckdb
from pipeline.trace.schema import INVOCATION_COLUMNS
columns = {{c: ('VARCHAR' if i < 4 else 'INTEGER') for i, c in enumerate(INVOCATION_COLUMNS)}}
con = duckdb.connect()
for path in {paths!r}:
    con.read_csv(path, header=True, columns=columns).to_arrow_table()
"""
PANDAS_MELT = """
import pandas as pd
for path in {paths!r}:
    frame = pd.read_csv(path)
    long = frame.melt(id_vars=['HashOwner', 'HashApp', 'HashFunction', 'Trigger'], var_name='minute', value_name='count')
    long = long[long['count'] > 0]
"""
INGEST = """
import os
os.environ['MANYMODELS_NO_PROGRESS'] = '1'
from pipeline.trace.ingest import ingest
ingest({trace!r}, {db!r}, scheduler='local', workers=2, force=True)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--functions", type=int, default=50_000)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--work", type=Path, default=Path("/tmp/mm-bench"))
    parser.add_argument("--pandas-days", type=int, default=1, help="days the pandas baseline reads (it is slow)")
    args = parser.parse_args()
    trace = args.work / f"trace-{args.functions}x{args.days}"
    if not (trace / "SYNTHETIC.json").exists():
        seconds, _ = measure(
            f"from pipeline.trace.synthetic import *; from pathlib import Path; "
            f"synthesize_trace(SyntheticTraceConfig(functions={args.functions}, days={args.days}, seed=1), Path({str(trace)!r}))")
        print(f"generated {trace} in {seconds:.1f} s")
    rows = []
    env = dict(os.environ, MANYMODELS_NO_PROGRESS="1")
    for days in sorted({1, args.days}):
        subset = args.work / f"subset-{days}"
        shutil.rmtree(subset, ignore_errors=True)
        subset.mkdir(parents=True)
        for path in trace.glob("*.anon.d*.csv"):
            if int(path.name.split(".d")[-1][:2]) <= days:
                os.symlink(path, subset / path.name)
        shutil.copy(trace / "SYNTHETIC.json", subset)
        paths = sorted(str(p) for p in subset.glob("invocations_per_function_md.*.csv"))
        size_gb = sum(Path(p).stat().st_size for p in paths) / 1e9
        results = {
            "polars read": measure(POLARS_READ.format(paths=paths), env),
            "duckdb read": measure(DUCKDB_READ.format(paths=paths), env),
            "manymodels ingest": measure(INGEST.format(trace=str(subset), db=str(args.work / f"trace-{days}.duckdb")), env),
        }
        if days <= args.pandas_days:
            results["pandas read + melt"] = measure(PANDAS_MELT.format(paths=paths), env)
        base = results["polars read"][0]
        ingest_s = results["manymodels ingest"][0]
        for name, (seconds, peak_mb) in results.items():
            rows.append({
                "days": days, "invocation CSV GB": round(size_gb, 2), "method": name, "seconds": seconds,
                "x polars read": seconds / base, "x ingest": seconds / ingest_s, "peak MB": peak_mb,
            })
    table = markdown_table(rows)
    print(table)
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "ingest.md").write_text(
        f"Ingest benchmark, {args.functions} functions, 2 cores (same run for every row).\n\n{table}\n")
    (out / "ingest.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
