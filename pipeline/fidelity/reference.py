"""The default reference of a candidate workload: the replay of its source trace.

All functions of the trace, one model per function, over the candidate's window (start minute and
minutes), with the candidate's binding, rate scale, arrival, seed and catalog. It is built with
`manymodels synthesize --mode replay --selection all` (the replay mode only; the measuring modules
of this package never import the workload generators) and reused while its parameters and the
trace database's fingerprint are unchanged."""

from __future__ import annotations

import json
from pathlib import Path

from ..db import connect_read_only, meta
from ..errors import ManyModelsError
from ..logs import log
from ..workload.layout import WORKLOAD_FILES

# the candidate's parameters the reference shares (everything else is the replay of all functions)
SHARED = ("start_minute", "minutes", "binding", "rate_scale", "arrival", "seed", "catalog")
KEY_FILE = "fidelity_reference.json"


def reference_parameters(candidate_manifest: dict) -> dict:
    parameters = candidate_manifest.get("parameters") or {}
    missing = [k for k in SHARED if k not in parameters and k not in ("start_minute", "catalog")]
    if missing:
        raise ManyModelsError(f"the candidate's manifest.json has no {', '.join(missing)} parameter(s); "
                              "pass --reference DIR")
    shared = {k: parameters.get(k) for k in SHARED}
    shared["start_minute"] = shared["start_minute"] or 0
    if shared["catalog"] and not Path(shared["catalog"]).exists():
        raise ManyModelsError(f"{shared['catalog']}: the candidate's catalog is not found; pass --reference DIR")
    return {"mode": "replay", "selection": "all", **shared}


def replay_reference(candidate_manifest: dict, db: Path, out: Path) -> Path:
    """Write (or reuse) the replay of the trace in `db` that matches the candidate; return its directory."""
    db, out = Path(db), Path(out)
    if not db.exists():
        raise ManyModelsError(f"{db}: trace database not found (run `manymodels ingest`, or pass --reference DIR)")
    with connect_read_only(db) as con:
        info = meta(con)
    # the data's digest (deterministic), not the file's fingerprint (input file times); older databases: fingerprint
    stored = info.get("content_digest")
    fingerprint = json.loads(stored)["content_sha256"] if stored else info.get("fingerprint")
    key = {"parameters": reference_parameters(candidate_manifest), "db": str(db), "db_fingerprint": fingerprint}
    key_path = out / KEY_FILE
    complete = all((out / name).exists() for name in WORKLOAD_FILES) and key_path.exists()
    if complete and json.loads(key_path.read_text()) == key:
        log.info("reusing the reference replay %s (parameters and trace unchanged)", out)
        return out
    from ..workload.synthesize import WorkloadConfig, synthesize  # the replay mode

    key_path.unlink(missing_ok=True)
    synthesize(WorkloadConfig(**key["parameters"]), out, db=db)
    key_path.write_text(json.dumps(key, indent=2) + "\n")
    return out
