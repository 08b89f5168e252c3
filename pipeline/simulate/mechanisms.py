"""Memory mechanisms beyond eviction (issue 13; DESIGN 8): the state the event loop reads (`engine` B).

- Shared weights (ShmFaas, ICCE'23; `shared_weights`): the workload models (functions) bound to
  one catalog model share one copy of its `weights_mb` on a server; each instance adds its own
  `instance_mb`; the weights leave memory with the last instance of that catalog model on the
  server. Without it a model takes its `size_mb`, as always.
- Memory-adaptive variants (Gilman et al., DIDL'19; `adaptive_variants`): the catalog's `family`
  groups variants of one model that trade accuracy for memory. When a load needs room, the
  evictable residents are walked in the policy's eviction order; the first one whose swap for a
  smaller variant of its family frees what is still missing on its server is swapped (the
  largest such variant: the least accuracy lost) instead of being evicted; the swap unloads it and
  loads the variant (the model waits for it like any load: a miss, not a cold start), and the
  model keeps the variant until it is evicted (its next load is its own model again). A request
  for a model that is not resident, not loading, and does not fit in free memory on any server is
  served by the largest *loaded* smaller variant of its family on any server, if there is one (a
  hit, at that variant's accuracy and exec time). Metrics: `downgrades`, `variant_served`,
  `accuracy_mean` (request-weighted top-1 of what served each served request).
- Multi-model hosting (`host_overhead_mb`, `hosting`): a model server process costs
  `host_overhead_mb` of memory. `hosting="multi"`: one process per server, shared by every model it
  hosts: charged when the server loads its first model, released with its last. `hosting=
  "per-model"`: one process per model: the overhead is part of every instance.
- Learned cache (GATI; `learned_cache={"hit": H, "speedup": S, "memory": F}`): a fraction H of each
  model's requests exit early and take S x its exec time; the learned layers cost F x the model's
  size_mb while it is resident (private to the instance). Which requests exit early is
  deterministic: the j-th request of a model exits early when floor((j + 1) H + u) > floor(j H + u),
  u in [0, 1) a per-model phase drawn from the run's seed (so exactly H of them, up to one).

With every mechanism off the event loop runs exactly as before (tests compare); `memory_events`
count shared weights once, and `memory_unshared_mb` gives the same run's memory as if every
instance held its own weights (the memory sharing saves).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import ManyModelsError
from . import engine

HOSTING = ("multi", "per-model")
LEARNED_KEYS = ("hit", "speedup", "memory")


@dataclass(frozen=True)
class Mechanisms:
    shared_weights: bool = False
    adaptive_variants: bool = False
    host_overhead_mb: float = 0.0
    hosting: str = "multi"
    learned_cache: dict | None = None  # {"hit": H, "speedup": S, "memory": F}

    @property
    def on(self) -> bool:
        return bool(self.shared_weights or self.adaptive_variants or self.host_overhead_mb > 0
                    or self.learned_cache)


def parse_learned_cache(spec: str | dict | None) -> dict | None:
    """`hit=H,speedup=S,memory=F` (H in [0, 1], S > 0, F >= 0) as a dict; None/''/'off': None."""
    if spec is None or isinstance(spec, dict):
        return check_learned_cache(spec) if spec else None
    text = str(spec).strip()
    if text in ("", "off", "none"):
        return None
    values = {}
    for part in text.replace(";", ",").split(","):
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or key not in LEARNED_KEYS:
            raise ManyModelsError(f"--learned-cache: expected hit=H,speedup=S,memory=F, got {text!r}")
        try:
            values[key] = float(value)
        except ValueError as error:
            raise ManyModelsError(f"--learned-cache: {key} must be a number, got {value!r}") from error
    return check_learned_cache(values)


def check_learned_cache(values: dict) -> dict:
    missing = [k for k in LEARNED_KEYS if k not in values]
    if missing:
        raise ManyModelsError(f"--learned-cache: missing {', '.join(missing)} (hit=H,speedup=S,memory=F)")
    hit, speedup, memory = (float(values[k]) for k in LEARNED_KEYS)
    if not (0.0 <= hit <= 1.0) or not (math.isfinite(speedup) and speedup > 0) or not (
            math.isfinite(memory) and memory >= 0):
        raise ManyModelsError(f"--learned-cache: need 0 <= hit <= 1, speedup > 0, memory >= 0; got {values}")
    return {"hit": hit, "speedup": speedup, "memory": memory}


def check_mechanisms(host_overhead_mb: float, hosting: str) -> None:
    if not (math.isfinite(host_overhead_mb) and host_overhead_mb >= 0):
        raise ManyModelsError(f"--host-overhead-mb must be a finite number >= 0, got {host_overhead_mb}")
    if hosting not in HOSTING:
        raise ManyModelsError(f"--hosting must be one of {', '.join(HOSTING)}, got {hosting!r}")


@dataclass
class CatalogArrays:
    """Per catalog entry: memory (MB), accuracy, family id, profile; and each model's entry."""
    size_mb: np.ndarray
    weights_mb: np.ndarray
    instance_mb: np.ndarray
    accuracy: np.ndarray
    family: np.ndarray  # int
    load_ms: np.ndarray
    exec_ms: np.ndarray
    unload_ms: np.ndarray
    index: np.ndarray  # per workload model


def catalog_arrays(workload) -> CatalogArrays:
    """The workload's catalog as arrays. Models bound to no catalog row (or a workload without a
    catalog) become entries of their own: their profile, weights = size_mb, instance 0, no family."""
    n = len(workload.size_mb)
    size = np.asarray(workload.size_mb, dtype=float)
    own = {"size_mb": size, "weights_mb": size, "instance_mb": np.zeros(n), "accuracy": np.full(n, np.nan),
           "load_ms": np.asarray(workload.load_ms, dtype=float), "exec_ms": np.asarray(workload.exec_ms, dtype=float),
           "unload_ms": np.asarray(workload.unload_ms, dtype=float)}
    catalog, index = getattr(workload, "catalog", None), getattr(workload, "catalog_index", None)
    if catalog is None or index is None:
        return CatalogArrays(**own, family=np.arange(n), index=np.arange(n))
    index = np.asarray(index, dtype=np.int64)
    k = catalog.height
    unbound = np.flatnonzero(index < 0)
    families = {name: j for j, name in enumerate(dict.fromkeys(catalog["family"].to_list()))}
    columns = {"size_mb": "size_mb", "weights_mb": "weights_mb", "instance_mb": "instance_mb",
               "accuracy": "accuracy_top1", "load_ms": "load_ms", "exec_ms": "exec_ms", "unload_ms": "unload_ms"}
    arrays = {key: np.concatenate([catalog[col].cast(float).fill_null(np.nan).to_numpy(), own[key][unbound]])
              for key, col in columns.items()}
    family = np.concatenate([np.array([families[f] for f in catalog["family"].to_list()], dtype=np.int64),
                             len(families) + np.arange(len(unbound))])
    index = index.copy()
    index[unbound] = k + np.arange(len(unbound))
    return CatalogArrays(**arrays, family=family, index=index)


def smaller_variant(cat: CatalogArrays) -> np.ndarray:
    """Per catalog entry, the next strictly smaller entry of its family (by size_mb; -1: none)."""
    k = len(cat.size_mb)
    order = np.lexsort((-np.nan_to_num(cat.accuracy, nan=-1.0), -cat.size_mb, cat.family))  # family, size desc
    smaller = np.full(k, -1, dtype=np.int64)
    for a, entry in enumerate(order):
        for b in range(a + 1, k):
            other = order[b]
            if cat.family[other] != cat.family[entry]:
                break
            if cat.size_mb[other] < cat.size_mb[entry]:
                smaller[entry] = other
                break
    return smaller


def early_exit(model_id: np.ndarray, n_models: int, hit: float, seed: int) -> np.ndarray:
    """Which requests the learned cache answers: exactly a fraction `hit` of each model's requests
    (up to one), spread evenly with a seeded per-model phase."""
    model_id = np.asarray(model_id, dtype=np.int64)
    n = len(model_id)
    if n == 0 or hit <= 0:
        return np.zeros(n, dtype=bool)
    order = np.argsort(model_id, kind="stable")
    counts = np.bincount(model_id, minlength=n_models)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    ordinal = np.empty(n, dtype=np.int64)
    ordinal[order] = np.arange(n) - np.repeat(starts, counts)
    phase = np.random.default_rng([seed, 0x6A71]).random(n_models)[model_id]
    return np.floor((ordinal + 1) * hit + phase) > np.floor(ordinal * hit + phase)


def _bytes(mb: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(mb, dtype=float) * 1_000_000).astype(np.int64)


def off_state(n_requests: int) -> tuple:
    """B with every mechanism off (the default run)."""
    one_i, one_f = np.zeros(1, np.int64), np.zeros((3, 1))
    return (np.zeros(8, np.int64), one_i, one_i.copy(), one_i.copy(), one_i.copy(), one_i.copy(),
            np.zeros((1, 1), np.int64), one_i.copy(), one_i.copy(), one_i.copy(), one_i.copy(), one_i.copy(),
            one_i.copy(), np.ones(n_requests), one_f, one_f.copy(), one_i.copy(), np.zeros(1))


def mechanism_state(workload, mech: Mechanisms, cat: CatalogArrays, servers: int, exe: np.ndarray,
                    n_requests: int, zero_times: bool, seed: int, models: np.ndarray) -> tuple:
    """B for the event loop (engine B_* layout) and the per-model `size` (bytes) the loop counts."""
    n_models = len(workload.size_mb)
    learned = mech.learned_cache or {"hit": 0.0, "speedup": 1.0, "memory": 0.0}
    learned_mb_model = learned["memory"] * np.asarray(workload.size_mb, dtype=float)
    learned_mb_entry = learned["memory"] * cat.size_mb
    per_model_host = mech.host_overhead_mb if mech.hosting == "per-model" else 0.0
    if mech.shared_weights:
        minst = _bytes(cat.instance_mb[cat.index] + learned_mb_model + per_model_host)
        kinst = _bytes(cat.instance_mb + learned_mb_entry + per_model_host)
        kw = _bytes(cat.weights_mb)
    else:  # a model's whole size is private: bytes identical to the default run's
        minst = _bytes(workload.size_mb) + _bytes(learned_mb_model + per_model_host)
        kinst = _bytes(cat.size_mb) + _bytes(learned_mb_entry + per_model_host)
        kw = np.zeros(len(cat.size_mb), np.int64)
    k = len(cat.size_mb)
    ints = np.zeros(8, np.int64)
    ints[engine.BI_ON] = 1
    ints[engine.BI_SHARED] = int(mech.shared_weights)
    ints[engine.BI_ADAPT] = int(mech.adaptive_variants)
    ints[engine.BI_HOST] = round(mech.host_overhead_mb * 1_000_000) if mech.hosting == "multi" else 0
    base = cat.index.astype(np.int64)
    smaller = smaller_variant(cat) if mech.adaptive_variants else np.full(k, -1, np.int64)
    xmul = np.ones(n_requests)
    if learned["hit"] > 0:
        xmul[early_exit(models, n_models, learned["hit"], seed)] = learned["speedup"]
    if zero_times:
        ktimes, mtimes = np.zeros((3, k)), np.zeros((3, n_models))
    else:
        ktimes = np.ascontiguousarray(np.vstack([cat.load_ms, cat.exec_ms, cat.unload_ms]), dtype=float)
        mtimes = np.ascontiguousarray(np.vstack([workload.load_ms, workload.exec_ms, workload.unload_ms]),
                                      dtype=float)
    B = (ints, base.copy(), base, kinst, kw, minst, np.zeros((servers, k), np.int64), np.zeros(servers, np.int64),
         smaller, np.full(k, -1, np.int64), np.full(n_models, engine.NOT_LISTED, np.int64),
         np.full(n_models, -1, np.int64), np.full(n_requests, -1, np.int64), xmul, ktimes, mtimes,
         np.zeros(4 * n_requests + 1, np.int64), exe)  # as the loop's memory events (pre-warm loads and unloads: 4n + 1)
    size = minst + kw[base]
    return B, size
