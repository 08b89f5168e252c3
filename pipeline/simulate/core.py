"""The event-driven core: requests in time order against one or more servers of memory M.

Server model (all times simulated, in ms; nothing reads the wall clock):
- a request for a resident, loaded model is a hit; for a model still loading it waits for the
  load and counts as a miss (not a second cold start); otherwise it is a cold start: victims are
  chosen by the policy until the model fits, unloaded (unload time), and the model loads (load
  time); its memory is reserved from the start of the load;
- loads run beside inference, not in its queue (so miss penalty and queueing stay separate);
  a model that is still loading is evicted only when the loaded models do not free enough memory,
  and then only once its load is done (the new load waits; the loads that finish first go first);
  requests already dispatched to a model that is then evicted still complete (in-flight work is
  not modelled as holding memory);
- each server has `workers` inference slots serving requests in arrival order; a request runs
  once its model is loaded and a slot is free; latency = completion - arrival;
- with several servers a model lives on one server at a time; a cold start goes to the
  least-loaded server with room, else to the least-loaded server, evicting there;
- a model larger than a server's memory cannot be served: the request is rejected and counted
  (as a miss; `rejected` in the metrics), never given an infinite latency.
With `no_latency` every load, exec and unload time is zero, so the hit sequence is exactly that
of an object cache whose object sizes are the models' memory.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np

from .policies import PolicyContext, make_policy


@dataclass
class Workload:
    t_ms: np.ndarray  # int64, sorted
    model_id: np.ndarray  # int32
    size_mb: np.ndarray
    load_ms: np.ndarray
    exec_ms: np.ndarray
    unload_ms: np.ndarray
    name: str = "workload"


@dataclass
class RunResult:
    hits: np.ndarray  # bool per request
    cold: np.ndarray  # bool per request: this request started a load
    rejected: np.ndarray  # bool per request
    latency_ms: np.ndarray  # float per request (NaN only for rejected requests; excluded from stats)
    exec_ms: np.ndarray
    evictions: int
    bytes_loaded: int
    memory_events: tuple[np.ndarray, np.ndarray]  # (t_ms, memory in use after the change, MB)


def next_use_ms(t_ms: np.ndarray, model_id: np.ndarray) -> np.ndarray:
    """For each request, the time of the next request for the same model (inf if none)."""
    order = np.lexsort((t_ms, model_id))
    result = np.full(len(t_ms), np.inf)
    same = model_id[order][1:] == model_id[order][:-1]
    result[order[:-1][same]] = t_ms[order][1:][same]
    return result


def simulate(workload: Workload, policy: str, memory_mb: float, servers: int = 1, workers: int = 1,
             seed: int = 0, no_latency: bool = False, policy_params: dict | None = None) -> RunResult:
    n_models = len(workload.size_mb)
    rng = np.random.default_rng(seed)
    size = workload.size_mb.astype(float).tolist()
    zero = [0.0] * n_models
    load = zero if no_latency else workload.load_ms.astype(float).tolist()
    execute = zero if no_latency else workload.exec_ms.astype(float).tolist()
    unload = zero if no_latency else workload.unload_ms.astype(float).tolist()
    needs_future = policy in ("belady", "cremebrulee-oracle")
    future = next_use_ms(workload.t_ms, workload.model_id).tolist() if needs_future else None
    tiebreak = rng.permutation(n_models).tolist()
    # policies decide with the models' real profiles, even when simulated times are zero
    profile_load = workload.load_ms.astype(float).tolist()
    profile_exec = workload.exec_ms.astype(float).tolist()
    policies = [make_policy(policy, PolicyContext(size, profile_load, profile_exec, rng, tiebreak,
                                                  dict(policy_params or {}), future))
                for _ in range(servers)]
    expires = policies[0].expires
    free_mb = [float(memory_mb)] * servers
    slots = [[0.0] * workers for _ in range(servers)]
    location = [-1] * n_models  # server holding the model, -1 if none
    ready_at = [0.0] * n_models  # time its load completes
    times = workload.t_ms.tolist()
    models = workload.model_id.tolist()
    n = len(times)
    hits = np.zeros(n, dtype=bool)
    cold = np.zeros(n, dtype=bool)
    rejected = np.zeros(n, dtype=bool)
    latency = np.zeros(n)
    evictions = 0
    loaded_mb = 0.0
    mem_t: list[int] = []
    mem_used: list[float] = []
    capacity = float(memory_mb)
    heapreplace = heapq.heapreplace
    single = servers == 1
    access = [p.access for p in policies]

    def evict(server: int, victim: int) -> float:
        """Drop `victim` from `server`; return its unload time."""
        nonlocal evictions
        policies[server].remove(victim)
        location[victim] = -1
        free_mb[server] += size[victim]
        evictions += 1
        return unload[victim]

    for i in range(n):
        t = times[i]
        m = models[i]
        if expires:  # before looking the model up: it may be the one that just expired
            for k, p in enumerate(policies):
                for victim in p.expired(t):
                    if ready_at[victim] <= t:
                        evict(k, victim)
                        mem_t.append(t)
                        mem_used.append(capacity * servers - sum(free_mb))
        s = location[m]
        if s >= 0:
            access[s](m, t, i)
            ready = ready_at[m]
            if ready <= t:
                hits[i] = True
                ready = t
        else:
            need = size[m]
            if need > capacity:
                rejected[i] = True
                latency[i] = np.nan
                continue
            if single:
                s = 0
            else:
                roomy = [k for k in range(servers) if free_mb[k] >= need]
                pool = roomy or list(range(servers))
                s = min(pool, key=lambda k: (slots[k][0], k))
            policy_s = policies[s]
            unload_ms = 0.0
            start_load = t
            if free_mb[s] < need:
                loading = []
                for victim in policy_s.victims(t):
                    if ready_at[victim] > t:
                        loading.append(victim)  # still loading: evictable once loaded
                        continue
                    unload_ms += evict(s, victim)
                    if free_mb[s] >= need:
                        break
                # not enough: wait for the loads that finish first
                for victim in sorted(loading, key=ready_at.__getitem__):
                    if free_mb[s] >= need:
                        break
                    unload_ms += evict(s, victim)
                    start_load = max(start_load, ready_at[victim])
            free_mb[s] -= need
            location[m] = s
            ready = start_load + unload_ms + load[m]
            ready_at[m] = ready
            policy_s.insert(m, t, i)
            cold[i] = True
            loaded_mb += need
            mem_t.append(t)
            mem_used.append(capacity * servers - sum(free_mb))
        if no_latency:
            continue
        heap = slots[s]
        start = heap[0]
        start = max(start, ready)
        end = start + execute[m]
        heapreplace(heap, end)
        latency[i] = end - t
    return RunResult(hits, cold, rejected, latency, workload.exec_ms[workload.model_id].astype(float) * (not no_latency),
                     evictions, round(loaded_mb * 1_000_000), (np.array(mem_t, dtype=np.int64), np.array(mem_used)))
