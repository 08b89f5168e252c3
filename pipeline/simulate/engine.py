"""The compiled simulator loops (numba) and the built-in policies as state arrays.

Two loops share one set of helpers: `cache_loop` (no latency: an object cache, one step a request)
and `event_loop` (arrivals, load completions, inference completions and timeouts in time order).
Memory is counted in bytes (int64), so sums are exact and agree with libCacheSim's.

A built-in policy is an integer `kind` and a tuple `P` of small arrays; every policy function has
one signature `(kind, P, ...)` and priorities live in an indexed binary heap (LFU, GDSF,
CremeBrulee, Belady; CremeBrulee-oracle, whose utility grows with time, keeps lower bounds refreshed
from the top), a linked list (LRU, FIFO, keep-alive TTL) or a dense resident array (Random), so a
request costs O(log n) in the resident models, never a sort of all residents.

`python_build(function)` rebuilds a loop from its own source as plain Python with the policy
functions replaced by calls to a Python `Policy` object: a user's policy runs through the very
same loop (slower), and the tests check it against the compiled kinds case by case.
"""

from __future__ import annotations

import types

import numpy as np
from numba import njit
from numba.core.registry import CPUDispatcher

LRU, FIFO, LFU, RANDOM, GDSF, TTL, CREME, ORACLE, BELADY = range(9)
KINDS = {"lru": LRU, "fifo": FIFO, "lfu": LFU, "random": RANDOM, "gdsf": GDSF, "ttl": TTL,
         "cremebrulee": CREME, "cremebrulee-oracle": ORACLE, "belady": BELADY}
HEAP_KINDS = (LFU, GDSF, CREME, BELADY, ORACLE)  # `heap_cache_loop`'s policies
ABSENT, LOADING, LOADED = 0, 1, 2
WAITING, STARTED, DROPPED = 0, 1, 2
EV_LOAD, EV_EXEC = 0, 1

# policy state P = (int64 rows x models, float64 rows x models, next-use position per request,
# next-use time per request); the rows:
R_INTS, R_KEY2, R_HEAP, R_HPOS, R_PREV, R_NEXT, R_COUNT, R_MPOS, R_CAND, R_INPOL, R_DENSE, R_DPOS = range(12)
R_FLOATS, R_KEY1, R_WEIGHT, R_LAST, R_MNEXTMS = range(5)
# CremeBrulee-oracle's heap tie-break is (later next use first, then the tie-break): R_KEY2 holds
# -next position x width + R_TIE, R_TIE the model's own tie-break
R_TIE = 12
INT_ROWS, FLOAT_ROWS = 13, 5
# R_INTS slots (the rows are at least 8 wide)
I_HEAPN, I_HEAD, I_TAIL, I_NCAND, I_CURSOR, I_NDENSE, I_RNG, I_EVMODE = range(8)
# P_FLOATS slots
F_INFLATION, F_TTL, F_ALPHA = range(3)

NO_CURSOR = -2


# ---------------------------------------------------------------- indexed binary min-heap
@njit(cache=True)
def _lt(k1, k2, a, b):
    return k1[a] < k1[b] or (k1[a] == k1[b] and k2[a] < k2[b])


@njit(cache=True)
def _sift_up(heap, pos, k1, k2, j):
    x = heap[j]
    while j > 0:
        p = (j - 1) >> 1
        y = heap[p]
        if _lt(k1, k2, x, y):
            heap[j] = y
            pos[y] = j
            j = p
        else:
            break
    heap[j] = x
    pos[x] = j


@njit(cache=True)
def _sift_down(heap, n, pos, k1, k2, j):
    x = heap[j]
    while True:
        c = 2 * j + 1
        if c >= n:
            break
        if c + 1 < n and _lt(k1, k2, heap[c + 1], heap[c]):
            c += 1
        y = heap[c]
        if _lt(k1, k2, y, x):
            heap[j] = y
            pos[y] = j
            j = c
        else:
            break
    heap[j] = x
    pos[x] = j


@njit(cache=True)
def heap_push(heap, n, pos, k1, k2, x):
    heap[n] = x
    pos[x] = n
    _sift_up(heap, pos, k1, k2, n)
    return n + 1


@njit(cache=True)
def heap_pop(heap, n, pos, k1, k2):
    x = heap[0]
    pos[x] = -1
    n -= 1
    if n > 0:
        heap[0] = heap[n]
        _sift_down(heap, n, pos, k1, k2, 0)
    return x, n


@njit(cache=True)
def heap_remove(heap, n, pos, k1, k2, x):
    j = pos[x]
    pos[x] = -1
    n -= 1
    if j < n:
        y = heap[n]
        heap[j] = y
        pos[y] = j
        _sift_up(heap, pos, k1, k2, j)
        _sift_down(heap, n, pos, k1, k2, pos[y])
    return n


@njit(cache=True)
def heap_fix(heap, n, pos, k1, k2, x):
    _sift_up(heap, pos, k1, k2, pos[x])
    _sift_down(heap, n, pos, k1, k2, pos[x])


# ---------------------------------------------------------------- event heap: (time, sequence)
@njit(cache=True)
def ev_push(et, es, ek, ei, n, t, seq, kind, ident):
    j = n
    while j > 0:
        p = (j - 1) >> 1
        if t < et[p] or (t == et[p] and seq < es[p]):
            et[j], es[j], ek[j], ei[j] = et[p], es[p], ek[p], ei[p]
            j = p
        else:
            break
    et[j], es[j], ek[j], ei[j] = t, seq, kind, ident
    return n + 1


@njit(cache=True)
def ev_pop(et, es, ek, ei, n):
    t0, k0, i0 = et[0], ek[0], ei[0]
    n -= 1
    if n > 0:
        t, s, k, x = et[n], es[n], ek[n], ei[n]
        j = 0
        while True:
            c = 2 * j + 1
            if c >= n:
                break
            if c + 1 < n and (et[c + 1] < et[c] or (et[c + 1] == et[c] and es[c + 1] < es[c])):
                c += 1
            if et[c] < t or (et[c] == t and es[c] < s):
                et[j], es[j], ek[j], ei[j] = et[c], es[c], ek[c], ei[c]
                j = c
            else:
                break
        et[j], es[j], ek[j], ei[j] = t, s, k, x
    return t0, k0, i0, n


# ---------------------------------------------------------------- seeded random numbers (splitmix64)
@njit(cache=True)
def rand_below(ints, k):
    x = np.uint64(ints[I_RNG]) + np.uint64(0x9E3779B97F4A7C15)
    ints[I_RNG] = np.int64(x)
    z = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return np.int64(z % np.uint64(k))


MASK64 = (1 << 64) - 1


def splitmix_below(state: int, k: int) -> tuple[int, int]:
    """Plain-Python twin of `rand_below`: (new state, value in [0, k))."""
    x = (state + 0x9E3779B97F4A7C15) & MASK64
    z = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    z = z ^ (z >> 31)
    return x, z % k


def _py_rand_below(ints, k):
    state, value = splitmix_below(int(ints[I_RNG]) & MASK64, int(k))
    ints[I_RNG] = state - (1 << 64) if state >= 1 << 63 else state
    return value


# ---------------------------------------------------------------- built-in policies
@njit(cache=True)
def _list_append(P, m):
    ints, prev, nxt = P[0][R_INTS], P[0][R_PREV], P[0][R_NEXT]
    tail = ints[I_TAIL]
    prev[m] = tail
    nxt[m] = -1
    if tail >= 0:
        nxt[tail] = m
    else:
        ints[I_HEAD] = m
    ints[I_TAIL] = m


@njit(cache=True)
def _list_unlink(P, m):
    ints, prev, nxt = P[0][R_INTS], P[0][R_PREV], P[0][R_NEXT]
    p = prev[m]
    q = nxt[m]
    if p >= 0:
        nxt[p] = q
    else:
        ints[I_HEAD] = q
    if q >= 0:
        prev[q] = p
    else:
        ints[I_TAIL] = p


@njit(cache=True)
def _dense_add(P, m):
    ints, dense, dpos = P[0][R_INTS], P[0][R_DENSE], P[0][R_DPOS]
    dense[ints[I_NDENSE]] = m
    dpos[m] = ints[I_NDENSE]
    ints[I_NDENSE] += 1


@njit(cache=True)
def _dense_remove(P, m):
    ints, dense, dpos = P[0][R_INTS], P[0][R_DENSE], P[0][R_DPOS]
    j = dpos[m]
    last = dense[ints[I_NDENSE] - 1]
    dense[j] = last
    dpos[last] = j
    dpos[m] = -1
    ints[I_NDENSE] -= 1


@njit(cache=True)
def _heap_set(P, m, key, fresh):
    ints = P[0][R_INTS]
    P[1][R_KEY1][m] = key
    if fresh:
        ints[I_HEAPN] = heap_push(P[0][R_HEAP], ints[I_HEAPN], P[0][R_HPOS], P[1][R_KEY1], P[0][R_KEY2], m)
    elif P[0][R_HPOS][m] >= 0:
        heap_fix(P[0][R_HEAP], ints[I_HEAPN], P[0][R_HPOS], P[1][R_KEY1], P[0][R_KEY2], m)


@njit(cache=True)
def _touch_list(P, m, t_ms, fresh):
    P[1][R_LAST][m] = t_ms
    if not fresh:
        _list_unlink(P, m)
    _list_append(P, m)


@njit(cache=True)
def _touch_count(P, m, fresh, kind):
    count = P[0][R_COUNT]
    if kind == CREME:
        count[m] += 1  # requests seen, kept across evictions
        key = float(count[m]) ** P[1][R_FLOATS][F_ALPHA] * P[1][R_WEIGHT][m]
    else:
        count[m] = 1 if fresh else count[m] + 1  # requests since loaded
        key = float(count[m]) if kind == LFU else P[1][R_FLOATS][F_INFLATION] + count[m] * P[1][R_WEIGHT][m]
    _heap_set(P, m, key, fresh)


@njit(cache=True)
def _touch_next_use(P, m, i, fresh, kind, t_ms):
    if kind == BELADY:
        _heap_set(P, m, -float(P[2][i]), fresh)
    else:
        key2 = P[0][R_KEY2]
        P[0][R_MPOS][m] = P[2][i]
        P[1][R_MNEXTMS][m] = P[3][i]
        key2[m] = -P[2][i] * key2.shape[0] + P[0][R_TIE][m]
        _heap_set(P, m, _lower_bound(_oracle_utility(P, m, t_ms)), fresh)


@njit(cache=True)
def pol_insert(kind, P, m, t_ms, i):
    P[0][R_INPOL][m] = 1
    if kind == LRU or kind == TTL or kind == FIFO:
        _touch_list(P, m, t_ms, True)
    elif kind == RANDOM:
        _dense_add(P, m)
    elif kind == LFU or kind == GDSF or kind == CREME:
        _touch_count(P, m, True, kind)
    else:
        _touch_next_use(P, m, i, True, kind, t_ms)


@njit(cache=True)
def pol_access(kind, P, m, t_ms, i):
    if kind == LRU or kind == TTL:
        _touch_list(P, m, t_ms, False)
    elif kind == LFU or kind == GDSF or kind == CREME:
        _touch_count(P, m, False, kind)
    elif kind == BELADY or kind == ORACLE:
        _touch_next_use(P, m, i, False, kind, t_ms)


@njit(cache=True)
def pol_remove(kind, P, m):
    P[0][R_INPOL][m] = 0
    if kind == LRU or kind == FIFO or kind == TTL:
        _list_unlink(P, m)
    elif kind == RANDOM:
        _dense_remove(P, m)
    else:
        if kind == GDSF and P[1][R_KEY1][m] > P[1][R_FLOATS][F_INFLATION]:
            P[1][R_FLOATS][F_INFLATION] = P[1][R_KEY1][m]
        if P[0][R_HPOS][m] >= 0:
            ints = P[0][R_INTS]
            ints[I_HEAPN] = heap_remove(P[0][R_HEAP], ints[I_HEAPN], P[0][R_HPOS], P[1][R_KEY1], P[0][R_KEY2], m)


@njit(cache=True)
def _oracle_utility(P, m, t_ms):
    distance = P[1][R_MNEXTMS][m] - t_ms
    distance = max(distance, 1.0)
    return (1.0 / distance) ** P[1][R_FLOATS][F_ALPHA] * P[1][R_WEIGHT][m]


@njit(cache=True)
def _lower_bound(u):
    """A CremeBrulee-oracle heap key: a utility only grows with time until the model's next request
    (its distance shrinks), so the utility computed now, lowered by far more than pow's rounding,
    bounds it from below at every later time."""
    return u - abs(u) * 1e-9


@njit(cache=True)
def pol_next(kind, P, t_ms):
    """The next resident in eviction order (least valuable first), -1 when none is left."""
    ints = P[0][R_INTS]
    if kind == LRU or kind == FIFO or kind == TTL:
        c = ints[I_CURSOR]
        if c == -1:
            return -1
        c = ints[I_HEAD] if c == NO_CURSOR else P[0][R_NEXT][c]
        ints[I_CURSOR] = c
        return c
    if kind == RANDOM:  # a lazy Fisher-Yates shuffle of the residents
        j = 0 if ints[I_CURSOR] == NO_CURSOR else ints[I_CURSOR]
        nd = ints[I_NDENSE]
        if j >= nd:
            return -1
        dense, dpos = P[0][R_DENSE], P[0][R_DPOS]
        r = j + rand_below(P[0][R_INTS], nd - j)
        a = dense[j]
        b = dense[r]
        dense[j] = b
        dpos[b] = j
        dense[r] = a
        dpos[a] = r
        ints[I_CURSOR] = j + 1
        return b
    if kind == ORACLE:  # the utility grows with time: a heap of lower bounds, refreshed from the top
        heap, hpos, key1, key2, side = P[0][R_HEAP], P[0][R_HPOS], P[1][R_KEY1], P[0][R_KEY2], P[0][R_DENSE]
        best = -1
        best_u = 0.0
        ns = 0
        while ints[I_HEAPN] > 0:
            x = heap[0]
            if best >= 0 and (key1[x] > best_u or (key1[x] == best_u and key2[x] > key2[best])):
                break  # every model left in the heap has a utility (and tie) above the best's
            x, hn = heap_pop(heap, ints[I_HEAPN], hpos, key1, key2)
            ints[I_HEAPN] = hn
            u = _oracle_utility(P, x, t_ms)
            key1[x] = _lower_bound(u)
            side[ns] = x
            ns += 1
            if best < 0 or u < best_u or (u == best_u and key2[x] < key2[best]):
                best = x
                best_u = u
        for j in range(ns):
            if side[j] != best:
                ints[I_HEAPN] = heap_push(heap, ints[I_HEAPN], hpos, key1, key2, side[j])
        if best >= 0:
            P[0][R_CAND][ints[I_NCAND]] = best
            ints[I_NCAND] += 1
        return best
    if ints[I_HEAPN] == 0:
        return -1
    x, hn = heap_pop(P[0][R_HEAP], ints[I_HEAPN], P[0][R_HPOS], P[1][R_KEY1], P[0][R_KEY2])
    ints[I_HEAPN] = hn
    P[0][R_CAND][ints[I_NCAND]] = x
    ints[I_NCAND] += 1
    return x


@njit(cache=True)
def pol_end(kind, P):
    """Close an eviction scan: candidates not removed go back."""
    ints, cand, inpol = P[0][R_INTS], P[0][R_CAND], P[0][R_INPOL]
    ints[I_CURSOR] = NO_CURSOR
    if kind == LFU or kind == GDSF or kind == CREME or kind == BELADY or kind == ORACLE:
        for j in range(ints[I_NCAND]):
            x = cand[j]
            if inpol[x] == 1:
                ints[I_HEAPN] = heap_push(P[0][R_HEAP], ints[I_HEAPN], P[0][R_HPOS], P[1][R_KEY1], P[0][R_KEY2], x)
    ints[I_NCAND] = 0


@njit(cache=True)
def pol_start(kind, P):
    """The event loop's mode for heap policies: the heap holds only the evictable residents
    (loaded, no queued or running work), so a victim search never pops busy ones. (List policies
    keep walking their list past busy models: a heap would cost O(log n) per request where the list
    costs O(1), slower in the common case; Random and CremeBrulee-oracle keep scanning.)"""
    if kind == LFU or kind == GDSF or kind == CREME or kind == BELADY or kind == ORACLE:
        P[0][R_INTS][I_EVMODE] = 1


@njit(cache=True)
def pol_pin(kind, P, m):
    """m is loading or got work: out of the evictable heap (its key still follows requests)."""
    ints, hpos = P[0][R_INTS], P[0][R_HPOS]
    if ints[I_EVMODE] != 0 and hpos[m] >= 0:
        ints[I_HEAPN] = heap_remove(P[0][R_HEAP], ints[I_HEAPN], hpos, P[1][R_KEY1], P[0][R_KEY2], m)


@njit(cache=True)
def pol_unpin(kind, P, m):
    """m is loaded and idle: back into the evictable heap."""
    ints, hpos = P[0][R_INTS], P[0][R_HPOS]
    if ints[I_EVMODE] != 0 and hpos[m] < 0 and P[0][R_INPOL][m] == 1:
        ints[I_HEAPN] = heap_push(P[0][R_HEAP], ints[I_HEAPN], hpos, P[1][R_KEY1], P[0][R_KEY2], m)


@njit(cache=True)
def pol_select(kind, P, buf, k, need, size):
    """Of the k candidates (least valuable first) that free enough, how many to evict (reordering
    `buf`): all of them, except CremeBrulee's, which sorts them by size, largest first, and keeps
    only the prefix needed."""
    if kind != CREME and kind != ORACLE:
        return k
    for a in range(1, k):
        x = buf[a]
        b = a - 1
        while b >= 0 and size[buf[b]] < size[x]:
            buf[b + 1] = buf[b]
            b -= 1
        buf[b + 1] = x
    freed = 0
    for j in range(k):
        freed += size[buf[j]]
        if freed >= need:
            return j + 1
    return k


@njit(cache=True)
def pol_expire(kind, P, t_ms, mstate, pins, idle, evbuf, evtime):
    """Keep-alive: remove from the policy every idle, unpinned model whose TTL ran out by t_ms;
    return how many (models in evbuf, the time each expired in evtime)."""
    if kind != TTL:
        return 0
    ttl = P[1][R_FLOATS][F_TTL]
    last, nxt = P[1][R_LAST], P[0][R_NEXT]
    c = P[0][R_INTS][I_HEAD]
    n = 0
    while c >= 0:
        following = nxt[c]
        if t_ms - last[c] < ttl:
            break
        if mstate[c] == LOADED and pins[c] == 0:
            when = last[c] + ttl
            when = max(when, idle[c])
            pol_remove(kind, P, c)
            evbuf[n] = c
            evtime[n] = when
            n += 1
        c = following
    return n


# ---------------------------------------------------------------- shared: make room on some server
@njit(cache=True)
def make_room(kind, P, need, size, unload, free, server_of, mstate, pins, freed, cbuf, evbuf, t_ms):
    """Place a model of `need` bytes: on the server with the most free memory if one has room;
    else take the policy's least valuable evictable residents across all servers, in order, until
    one server has freed enough, and evict (of that server's candidates) what the policy selects.
    Returns (server or -1, unload ms, evicted count in evbuf, bytes freed)."""
    servers = free.shape[0]
    best = -1
    for k in range(servers):
        if free[k] >= need and (best < 0 or free[k] > free[best]):
            best = k
    if best >= 0:
        return best, 0.0, 0, 0
    for k in range(servers):
        freed[k] = 0
    nc = 0
    s = -1
    while True:
        c = pol_next(kind, P, t_ms)
        if c < 0:
            break
        if mstate[c] != LOADED or pins[c] != 0:
            continue
        k = server_of[c]
        freed[k] += size[c]
        cbuf[nc] = c
        nc += 1
        if free[k] + freed[k] >= need:
            s = k
            break
    if s < 0:
        pol_end(kind, P)
        return -1, 0.0, 0, 0
    ns = 0
    for j in range(nc):
        if server_of[cbuf[j]] == s:
            evbuf[ns] = cbuf[j]
            ns += 1
    ne = ns if kind == LRU or kind == FIFO or kind == TTL else pol_select(kind, P, evbuf, ns, need - free[s], size)
    unload_ms = 0.0
    freed_bytes = 0
    for j in range(ne):
        c = evbuf[j]
        pol_remove(kind, P, c)
        server_of[c] = -1
        mstate[c] = ABSENT
        free[s] += size[c]
        freed_bytes += size[c]
        unload_ms += unload[c]
    pol_end(kind, P)
    return s, unload_ms, ne, freed_bytes


# ---------------------------------------------------------------- the object-cache loop (no latency)
@njit(cache=True)
def cache_loop(kind, P, times, models, size, capacity, servers):
    n = times.shape[0]
    n_models = size.shape[0]
    hits = np.zeros(n, np.bool_)
    cold = np.zeros(n, np.bool_)
    rejected = np.zeros(n, np.bool_)
    free = np.full(servers, capacity, np.int64)
    server_of = np.full(n_models, -1, np.int64)
    mstate = np.zeros(n_models, np.int8)
    pins = np.zeros(n_models, np.int64)
    idle = np.zeros(n_models)
    unload = np.zeros(n_models)
    freed = np.zeros(servers, np.int64)
    cbuf = np.empty(n_models, np.int64)
    evbuf = np.empty(n_models, np.int64)
    evtime = np.empty(n_models)
    n_mem = 2 * n + 1 if kind == TTL or kind < 0 else n + 1  # one per load, plus one per expiry
    mem_t = np.empty(n_mem)
    mem_d = np.empty(n_mem, np.int64)
    nmem = 0
    evictions = 0
    loads = 0
    loaded_bytes = 0
    for i in range(n):
        t = times[i]
        m = models[i]
        if kind == TTL or kind < 0:
            ne = pol_expire(kind, P, t, mstate, pins, idle, evbuf, evtime)
            for j in range(ne):
                c = evbuf[j]
                free[server_of[c]] += size[c]
                server_of[c] = -1
                mstate[c] = ABSENT
                mem_t[nmem] = evtime[j]
                mem_d[nmem] = -size[c]
                nmem += 1
            evictions += ne
        if mstate[m] == LOADED:
            hits[i] = True
            if kind != FIFO and kind != RANDOM:
                pol_access(kind, P, m, t, i)
            idle[m] = t
            continue
        if size[m] > capacity:
            rejected[i] = True
            continue
        cold[i] = True
        s, _, ne, freed_bytes = make_room(kind, P, size[m], size, unload, free, server_of, mstate, pins, freed,
                                          cbuf, evbuf, t)
        evictions += ne
        free[s] -= size[m]
        server_of[m] = s
        mstate[m] = LOADED
        idle[m] = t
        pol_insert(kind, P, m, t, i)
        mem_t[nmem] = t
        mem_d[nmem] = size[m] - freed_bytes
        nmem += 1
        loads += 1
        loaded_bytes += size[m]
    latency = np.zeros(n)
    for i in range(n):
        if rejected[i]:
            latency[i] = np.nan
    timed_out = np.zeros(n, np.bool_)
    end_ms = times[n - 1] if n else 0.0
    return (hits, cold, rejected, timed_out, latency, evictions, loads, loaded_bytes, 0.0, end_ms,
            mem_t[:nmem].copy(), mem_d[:nmem].copy())


@njit(cache=True)
def next_use_kernel(t_ms, models, n_models):
    """For each request, the position of the next request for the same model (n if none) and its
    time (inf if none): one backward pass."""
    n = models.shape[0]
    position = np.empty(n, np.int64)
    time = np.empty(n)
    last = np.full(n_models, n, np.int64)
    for i in range(n - 1, -1, -1):
        m = models[i]
        j = last[m]
        position[i] = j
        time[i] = t_ms[j] if j < n else np.inf
        last[m] = i
    return position, time


@njit(cache=True)
def _set_next_use_keys(kind, P, pending, npending, stale, last_i, t_ms):
    """`heap_cache_loop`, Belady and CremeBrulee-oracle: bring the keys of the models requested
    since the last victim search up to date (their last request's next use), as the hits would have.
    The victims only depend on the keys' order (a strict total order), not on when a key was set:
    Belady's key is the next use; the oracle's a lower bound of the utility, exact at `pol_next`."""
    for j in range(npending):
        m = pending[j]
        stale[m] = False
        if kind == BELADY:
            _heap_set(P, m, -float(P[2][last_i[m]]), False)
        else:
            _touch_next_use(P, m, last_i[m], False, kind, t_ms)
    return 0


@njit(cache=True)
def heap_cache_loop(kind, P, times, models, size, capacity):
    """`cache_loop` specialized to the heap policies (LFU, GDSF, CremeBrulee, Belady,
    CremeBrulee-oracle) on one server (same results, tested): the rows unpacked once and the hit
    path written out, without a heap repair per hit. LFU, GDSF and CremeBrulee keys only grow
    (counts and inflation grow, weights and alpha are >= 0), so a hit only updates the key and marks
    the heap entry stale; when a victim is needed, a stale top is re-placed with its current key
    until the top is current. Belady and CremeBrulee-oracle note the hit and set the keys of the
    models hit since the last victim search before the next one. Either way the same victims in the
    same order as an eager heap."""
    n = times.shape[0]
    n_models = size.shape[0]
    ints, heap, hpos, key2, count = P[0][R_INTS], P[0][R_HEAP], P[0][R_HPOS], P[0][R_KEY2], P[0][R_COUNT]
    key1, weight = P[1][R_KEY1], P[1][R_WEIGHT]
    alpha = P[1][R_FLOATS][F_ALPHA]
    lazy = kind == LFU or kind == GDSF or kind == CREME
    for m in range(n_models):
        if not weight[m] >= 0.0:
            lazy = False
    if kind == CREME and not alpha >= 0.0:
        lazy = False
    current = key1.copy()  # the key a lazy entry should have; key1 is the key it has in the heap
    stale = np.zeros(n_models, np.bool_)
    deferred = kind == BELADY or kind == ORACLE
    last_i = np.zeros(n_models, np.int64)  # deferred: the last request of each model not yet in its key
    pending = np.empty(n_models, np.int64)
    npending = 0
    hits = np.zeros(n, np.bool_)
    cold = np.zeros(n, np.bool_)
    rejected = np.zeros(n, np.bool_)
    resident = P[0][R_INPOL][:n_models] == 1
    cbuf = np.empty(n_models, np.int64)
    mem_t = np.empty(n + 1)
    mem_d = np.empty(n + 1, np.int64)
    free = capacity
    for m in range(n_models):
        if resident[m]:
            free -= size[m]
    nmem = 0
    evictions = 0
    loads = 0
    loaded_bytes = 0
    for i in range(n):
        m = models[i]
        if resident[m]:
            hits[i] = True
            if lazy:
                count[m] += 1
                if kind == LFU:
                    current[m] = float(count[m])
                elif kind == GDSF:
                    current[m] = P[1][R_FLOATS][F_INFLATION] + count[m] * weight[m]
                else:
                    current[m] = float(count[m]) ** alpha * weight[m]
                stale[m] = True
            elif deferred:  # the key moves with the next use: set it when a victim is needed
                last_i[m] = i
                if not stale[m]:
                    stale[m] = True
                    pending[npending] = m
                    npending += 1
            else:
                pol_access(kind, P, m, times[i], i)
            continue
        need = size[m]
        if need > capacity:
            rejected[i] = True
            continue
        cold[i] = True
        t = times[i]
        freed_bytes = 0
        if free < need:
            npending = _set_next_use_keys(kind, P, pending, npending, stale, last_i, t)
            nc = 0
            freed = 0
            while free + freed < need:
                while lazy and ints[I_HEAPN] > 0 and stale[heap[0]]:  # the top's heap key is below its key: re-place it
                    x = heap[0]
                    key1[x] = current[x]
                    stale[x] = False
                    _sift_down(heap, ints[I_HEAPN], hpos, key1, key2, 0)
                c = pol_next(kind, P, t)
                cbuf[nc] = c
                nc += 1
                freed += size[c]
            ne = pol_select(kind, P, cbuf, nc, need - free, size)
            for j in range(ne):
                c = cbuf[j]
                pol_remove(kind, P, c)
                resident[c] = False
                free += size[c]
                freed_bytes += size[c]
            pol_end(kind, P)
            evictions += ne
        free -= need
        resident[m] = True
        pol_insert(kind, P, m, t, i)
        current[m] = key1[m]
        stale[m] = False
        mem_t[nmem] = t
        mem_d[nmem] = need - freed_bytes
        nmem += 1
        loads += 1
        loaded_bytes += need
    if n:
        _set_next_use_keys(kind, P, pending, npending, stale, last_i, times[n - 1])
    if lazy:  # leave the policy state as an eager heap would
        for m in range(n_models):
            if stale[m]:
                key1[m] = current[m]
                heap_fix(heap, ints[I_HEAPN], hpos, key1, key2, m)
    latency = np.zeros(n)
    for i in range(n):
        if rejected[i]:
            latency[i] = np.nan
    end_ms = times[n - 1] if n else 0.0
    return (hits, cold, rejected, np.zeros(n, np.bool_), latency, evictions, loads, loaded_bytes, 0.0, end_ms,
            mem_t[:nmem], mem_d[:nmem])


@njit(cache=True)
def list_cache_loop(kind, P, times, models, size, capacity):
    """`cache_loop` specialized to LRU, FIFO and keep-alive TTL on one server (same results,
    tested): the list operations written out in the loop, no policy calls."""
    n = times.shape[0]
    n_models = size.shape[0]
    ints = P[0][R_INTS]
    prev = P[0][R_PREV]
    nxt = P[0][R_NEXT]
    last = P[1][R_LAST]
    ttl = P[1][R_FLOATS][F_TTL]
    hits = np.zeros(n, np.bool_)
    cold = np.zeros(n, np.bool_)
    rejected = np.zeros(n, np.bool_)
    resident = np.zeros(n_models, np.bool_)
    expires = kind == TTL
    n_mem = 2 * n + 1 if expires else n + 1  # one per load, plus one per expiry
    mem_t = np.empty(n_mem)
    mem_d = np.empty(n_mem, np.int64)
    lru = kind == LRU or expires
    head = ints[I_HEAD]
    tail = ints[I_TAIL]
    free = capacity
    nmem = 0
    evictions = 0
    loads = 0
    loaded_bytes = 0
    for i in range(n):
        m = models[i]
        if expires:  # pol_expire, written out: idle models whose TTL ran out, from the list's head
            t = times[i]
            while head >= 0 and t - last[head] >= ttl:
                c = head
                head = nxt[c]
                if head >= 0:
                    prev[head] = -1
                else:
                    tail = -1
                resident[c] = False
                free += size[c]
                mem_t[nmem] = last[c] + ttl
                mem_d[nmem] = -size[c]
                nmem += 1
                evictions += 1
            last[m] = t
        if resident[m]:
            hits[i] = True
            if lru and tail != m:
                p = prev[m]
                q = nxt[m]
                if p >= 0:
                    nxt[p] = q
                else:
                    head = q
                prev[q] = p
                prev[m] = tail
                nxt[m] = -1
                nxt[tail] = m
                tail = m
            continue
        need = size[m]
        if need > capacity:
            rejected[i] = True
            continue
        cold[i] = True
        freed = 0
        while free < need:
            v = head
            head = nxt[v]
            if head >= 0:
                prev[head] = -1
            else:
                tail = -1
            resident[v] = False
            free += size[v]
            freed += size[v]
            evictions += 1
        free -= need
        resident[m] = True
        prev[m] = tail
        nxt[m] = -1
        if tail >= 0:
            nxt[tail] = m
        else:
            head = m
        tail = m
        mem_t[nmem] = times[i]
        mem_d[nmem] = need - freed
        nmem += 1
        loads += 1
        loaded_bytes += need
    ints[I_HEAD] = head
    ints[I_TAIL] = tail
    latency = np.zeros(n)
    for i in range(n):
        if rejected[i]:
            latency[i] = np.nan
    end_ms = times[n - 1] if n else 0.0
    return (hits, cold, rejected, np.zeros(n, np.bool_), latency, evictions, loads, loaded_bytes, 0.0, end_ms,
            mem_t[:nmem], mem_d[:nmem])


# ---------------------------------------------------------------- the event-driven loop
# engine state E: indices into the tuple
(E_CTR, E_MSTATE, E_SERVER, E_PINS, E_IDLE, E_PENDING, E_PENDQ, E_QHEAD, E_QTAIL, E_QNEXT, E_STATUS,
 E_FREE, E_EVICTABLE, E_SLOTS, E_RHEAP, E_RSIZE, E_RPOS, E_RKEY, E_RKEY2, E_ET, E_ES, E_EK, E_EI,
 E_MEMT, E_MEMD, E_CBUF, E_EVBUF, E_EVTIME, E_FREED, E_LASTREQ, E_FCTR) = range(31)
# E_CTR slots
C_NEV, C_SEQ, C_EVICTIONS, C_NMEM, C_PHEAD, C_PTAIL, C_LOADS, C_BYTES = range(8)
# E_FCTR slots
FC_LOADTIME, FC_END = range(2)
# beyond eviction in time (keep-alive with pre-warming, interference): more E entries, after the others
E_XP, E_LOADRUN, E_KI, E_KF, E_HIST, E_KCTR = range(32, 38)  # after E_B (31, the memory mechanisms)
# E_XP slots: the mechanisms' parameters (`xparams` of event_loop)
(XP_INTERF, XP_LOADINTERF, XP_WORKERS, XP_MODE, XP_FIXED_MS, XP_BIN_MS, XP_BINS, XP_MIN_SAMPLES, XP_CV,
 XP_HEAD_PCT, XP_TAIL_PCT, XP_MARGIN, XP_OOB_SHARE, XP_FC_MARGIN, XP_FC_MIN_SAMPLES, XP_FC_DEVS) = range(16)
XP_SIZE = 16
KA_OFF, KA_HYBRID, KA_FORECAST = range(3)  # XP_MODE
# E_KI rows (int64 x models): timer heap, its positions and tie-break, timer kind, idle-time samples,
# samples beyond the histogram, pre-warmed-and-not-yet-used flag, sum of squared bin counts, and the
# histogram's running percentiles: the bins holding the head and tail percentiles and the in-range
# samples up to and including each (kept up to date per sample instead of a scan of the bins per decision)
(KI_HEAP, KI_HPOS, KI_KEY2, KI_TKIND, KI_NSAMP, KI_NOOB, KI_FLAG, KI_SUMSQ, KI_HEAD, KI_CUMH, KI_TAIL,
 KI_CUMT) = range(12)
KI_ROWS = 12
# E_KF rows (float64 x models): timer time, idle since (-1: busy or never idle), keep-alive end after a
# pre-warm, forecaster mean and mean deviation of idle times
KF_TIME, KF_IDLE, KF_EXPIRE_AT, KF_MU, KF_DEV = range(5)
KF_ROWS = 5
T_EXPIRE, T_PREWARM, T_CANCELLED = 0, 1, 2  # a cancelled timer stays in the heap until it is due (lazy deletion)
# E_KCTR slots (also `xout` of event_loop)
K_HEAPN, K_PREWARMS, K_WASTED, K_SKIPPED, K_USED = range(5)


@njit(cache=True)
def _drop_queue(E, m):
    """An evicted model's queue holds only dropped requests: forget them."""
    rpos = E[E_RPOS]
    if rpos[m] >= 0:
        s = E[E_SERVER][m]
        rsize = E[E_RSIZE]
        rsize[s] = heap_remove(E[E_RHEAP][s], rsize[s], rpos, E[E_RKEY], E[E_RKEY2], m)
    E[E_QHEAD][m] = -1
    E[E_QTAIL][m] = -1


@njit(cache=True)
def _ready(E, m, s):
    """Model m (loaded, on server s) has queued requests: make it a candidate for a free slot."""
    if E[E_QHEAD][m] >= 0 and E[E_RPOS][m] < 0:
        E[E_RKEY][m] = E[E_QHEAD][m]
        rsize = E[E_RSIZE]
        rsize[s] = heap_push(E[E_RHEAP][s], rsize[s], E[E_RPOS], E[E_RKEY], E[E_RKEY2], m)


@njit(cache=True, inline="always")
def _dispatch(E, s, tau, exe):
    """Free slots on server s take the earliest queued request whose model is loaded there."""
    slots, rsize, qhead, qtail, qnext, status, ctr = (E[E_SLOTS], E[E_RSIZE], E[E_QHEAD], E[E_QTAIL],
                                                      E[E_QNEXT], E[E_STATUS], E[E_CTR])
    heap, rpos, rkey, rkey2 = E[E_RHEAP][s], E[E_RPOS], E[E_RKEY], E[E_RKEY2]
    while slots[s] > 0 and rsize[s] > 0:
        m, hn = heap_pop(heap, rsize[s], rpos, rkey, rkey2)
        rsize[s] = hn
        j = qhead[m]
        qhead[m] = qnext[j]
        if qhead[m] < 0:
            qtail[m] = -1
        else:
            rkey[m] = qhead[m]
            rsize[s] = heap_push(heap, rsize[s], rpos, rkey, rkey2, m)
        if status[j] != WAITING:
            continue
        status[j] = STARTED
        slots[s] -= 1
        ctr[C_NEV] = ev_push(E[E_ET], E[E_ES], E[E_EK], E[E_EI], ctr[C_NEV], tau + _exec_time(E, s, exe[m] * E[E_B][B_XMUL][j]),
                             ctr[C_SEQ],
                             EV_EXEC, j)
        ctr[C_SEQ] += 1


@njit(cache=True)
def _start_load(E, kind, P, m, tau, size, load, unload):
    if E[E_B][B_INTS][BI_ON] != 0:
        return _b_start_load(E, kind, P, m, tau, size, load, unload)
    need = size[m]
    free, evictable = E[E_FREE], E[E_EVICTABLE]
    possible = False
    for k in range(free.shape[0]):
        if free[k] + evictable[k] >= need:
            possible = True
            break
    if not possible:
        return False
    s, unload_ms, ne, freed_bytes = make_room(kind, P, need, size, unload, free, E[E_SERVER], E[E_MSTATE],
                                              E[E_PINS], E[E_FREED], E[E_CBUF], E[E_EVBUF], tau)
    if s < 0:
        return False
    ctr = E[E_CTR]
    evbuf, server_of = E[E_EVBUF], E[E_SERVER]
    for j in range(ne):
        c = evbuf[j]
        server_of[c] = s  # for _drop_queue
        _drop_queue(E, c)
        server_of[c] = -1
    evictable[s] -= freed_bytes
    ctr[C_EVICTIONS] += ne
    _commit_load(E, kind, P, m, s, tau, need, freed_bytes, load, unload_ms)
    return True


@njit(cache=True, inline="always")
def _commit_load(E, kind, P, m, s, tau, need, freed_bytes, load, unload_ms):
    """Book the load of m on server s once its room is made (with or without the memory
    mechanisms): memory, state, counters, the policy's insert and pin, and its completion event
    after the victims' unloads. Returns the slot of its memory event (E_MEMT/E_MEMD)."""
    ctr = E[E_CTR]
    E[E_FREE][s] -= need
    E[E_SERVER][m] = s
    E[E_LOADRUN][s] += 1
    E[E_MSTATE][m] = LOADING
    slot = ctr[C_NMEM]
    E[E_MEMT][slot] = tau
    E[E_MEMD][slot] = need - freed_bytes
    ctr[C_NMEM] += 1
    ctr[C_LOADS] += 1
    ctr[C_BYTES] += need
    E[E_FCTR][FC_LOADTIME] += load[m]
    pol_insert(kind, P, m, tau, E[E_LASTREQ][m])
    pol_pin(kind, P, m)
    ctr[C_NEV] = ev_push(E[E_ET], E[E_ES], E[E_EK], E[E_EI], ctr[C_NEV], tau + unload_ms + load[m], ctr[C_SEQ],
                         EV_LOAD, m)
    ctr[C_SEQ] += 1
    return slot


@njit(cache=True)
def _try_pending(E, kind, P, tau, size, load, unload):
    """Start waiting loads in request order (the first that cannot start holds the others)."""
    ctr, pendq, pending, pins = E[E_CTR], E[E_PENDQ], E[E_PENDING], E[E_PINS]
    cap = pendq.shape[0]
    while ctr[C_PHEAD] != ctr[C_PTAIL]:
        m = pendq[ctr[C_PHEAD] % cap]
        if pins[m] == 0:  # every request for it timed out: the load is not needed any more
            E[E_QHEAD][m] = -1
            E[E_QTAIL][m] = -1
        elif not _start_load(E, kind, P, m, tau, size, load, unload):
            break
        pending[m] = 0
        ctr[C_PHEAD] += 1


@njit(cache=True)
def _unpinned(E, kind, P, m, tau, size):
    """m's last queued or running request is gone: its memory may be evicted from now on."""
    E[E_IDLE][m] = tau
    if E[E_MSTATE][m] == LOADED:
        E[E_EVICTABLE][E[E_SERVER][m]] += size[m]
        pol_unpin(kind, P, m)


# ---------------------------------------------------------------- memory mechanisms (issue 13)
# B = E[E_B]: the memory mechanisms' state (shared weights, memory-adaptive variants, host process,
# learned cache). Every array exists (length >= 1) when they are off, so one compiled loop serves
# every run; with B_INTS[BI_ON] == 0 the loop runs exactly as without them.
# Memory of a model m at its current variant v = var[m] on server k: its instance bytes (minst[m]
# at its own variant, kinst[v] at another; unshared: the whole footprint), plus the weights kw[v]
# once per (server, catalog model) (0 unless --shared-weights), plus the host process BI_HOST once
# per server hosting any model (multi-model hosting). The loop's `size[m]` is then instance +
# weights (an upper bound of what evicting m frees, host aside), used for the evictable sums.
E_B = 31
(B_INTS, B_VAR, B_BASE, B_KINST, B_KW, B_MINST, B_WCOUNT, B_NHOSTED, B_SMALLER, B_VHEAD, B_VPREV, B_VNEXT,
 B_SERVED, B_XMUL, B_KTIMES, B_MTIMES, B_MEMU, B_EXE) = range(18)  # B_EXE: the loop's `exe` array itself
# B_INTS slots
BI_ON, BI_SHARED, BI_ADAPT, BI_HOST, BI_DOWNGRADES, BI_REDIRECTS, BI_DG, BI_DGV = range(8)
NOT_LISTED = -2


@njit(cache=True)
def _b_inst(B, m):
    v = B[B_VAR][m]
    return B[B_MINST][m] if v == B[B_BASE][m] else B[B_KINST][v]


@njit(cache=True)
def _b_full(B, m):
    """m's unshared footprint at its current variant (instance + weights)."""
    return _b_inst(B, m) + B[B_KW][B[B_VAR][m]]


@njit(cache=True)
def _b_need(B, m, k):
    """Bytes m (at its current variant) adds on server k: its instance, its weights unless an
    instance of the same catalog model holds them there, the host process if k hosts nothing."""
    v = B[B_VAR][m]
    need = _b_inst(B, m)
    if B[B_WCOUNT][k, v] == 0:
        need += B[B_KW][v]
    if B[B_NHOSTED][k] == 0:
        need += B[B_INTS][BI_HOST]
    return need


@njit(cache=True)
def _b_hold(B, m, k):
    B[B_WCOUNT][k, B[B_VAR][m]] += 1
    B[B_NHOSTED][k] += 1


@njit(cache=True)
def _b_drop(B, m, k):
    """Take m's instance off server k's counts; return the bytes that frees (its weights with the
    last instance of its catalog model there, the host process with the last model)."""
    v = B[B_VAR][m]
    wcount = B[B_WCOUNT]
    freed = _b_inst(B, m)
    wcount[k, v] -= 1
    if wcount[k, v] == 0:
        freed += B[B_KW][v]
    B[B_NHOSTED][k] -= 1
    if B[B_NHOSTED][k] == 0:
        freed += B[B_INTS][BI_HOST]
    return freed


@njit(cache=True)
def _b_vlist_add(B, m):
    """m is loaded: listed under its variant (the resident variants a request may be served by)."""
    v, head, prev, nxt = B[B_VAR][m], B[B_VHEAD], B[B_VPREV], B[B_VNEXT]
    if prev[m] != NOT_LISTED:
        return
    prev[m] = -1
    nxt[m] = head[v]
    if head[v] >= 0:
        prev[head[v]] = m
    head[v] = m


@njit(cache=True)
def _b_vlist_remove(B, m):
    v, head, prev, nxt = B[B_VAR][m], B[B_VHEAD], B[B_VPREV], B[B_VNEXT]
    p = prev[m]
    if p == NOT_LISTED:
        return
    q = nxt[m]
    if p >= 0:
        nxt[p] = q
    else:
        head[v] = q
    if q >= 0:
        prev[q] = p
    prev[m] = NOT_LISTED


@njit(cache=True)
def _b_evicted(B, c, size, load, unload):
    """c left memory: unlisted, and back to its own variant (profile, size) for its next load."""
    if B[B_INTS][BI_ADAPT] != 0:
        _b_vlist_remove(B, c)
        if B[B_VAR][c] != B[B_BASE][c]:
            B[B_VAR][c] = B[B_BASE][c]
            times = B[B_MTIMES]
            load[c] = times[0, c]
            B[B_EXE][c] = times[1, c]
            unload[c] = times[2, c]
    size[c] = _b_full(B, c)


@njit(cache=True)
def _b_downgrade_to(B, c, k, deficit, m):
    """The largest smaller variant of c's family whose swap for c frees at least `deficit` bytes
    on server k for loading m (-1: none). Weights m will use are not counted as freed."""
    v, wcount, kw, kinst, smaller = B[B_VAR][c], B[B_WCOUNT], B[B_KW], B[B_KINST], B[B_SMALLER]
    current = _b_inst(B, c)
    if wcount[k, v] == 1 and B[B_VAR][m] != v:
        current += kw[v]
    u = smaller[v]
    while u >= 0:
        gain = current - kinst[u]
        if wcount[k, u] == 0:
            gain -= kw[u]
        if gain >= deficit:
            return u
        u = smaller[u]
    return -1


@njit(cache=True)
def _b_make_room(E, kind, P, m, tau, size, unload):
    """`make_room` with the mechanisms' memory: the bytes needed depend on the server (weights
    already there, host process); walking the evictable residents in the policy's order, a
    candidate whose swap for a smaller variant frees what is still missing on its server is
    downgraded instead of evicted (--adaptive-variants; left in B_INTS[BI_DG], [BI_DGV]).
    Returns (server or -1, unload ms, evicted count in evbuf, bytes freed by the evictions)."""
    B = E[E_B]
    bi = B[B_INTS]
    free, server_of, mstate, pins = E[E_FREE], E[E_SERVER], E[E_MSTATE], E[E_PINS]
    freed, cbuf, evbuf = E[E_FREED], E[E_CBUF], E[E_EVBUF]
    bi[BI_DG] = -1
    servers = free.shape[0]
    best = -1
    for k in range(servers):
        if free[k] >= _b_need(B, m, k) and (best < 0 or free[k] > free[best]):
            best = k
    if best >= 0:
        return best, 0.0, 0, 0
    for k in range(servers):
        freed[k] = 0
    adapt = bi[BI_ADAPT] != 0
    nc = 0
    s = -1
    dg = -1
    while True:
        c = pol_next(kind, P, tau)
        if c < 0:
            break
        if mstate[c] != LOADED or pins[c] != 0:
            continue
        k = server_of[c]
        if adapt:
            u = _b_downgrade_to(B, c, k, _b_need(B, m, k) - free[k] - freed[k], m)
            if u >= 0:
                dg = c
                bi[BI_DGV] = u
                s = k
                break
        freed[k] += _b_drop(B, c, k)  # tentatively: counts restored below
        cbuf[nc] = c
        nc += 1
        if free[k] + freed[k] >= _b_need(B, m, k):
            s = k
            break
    for j in range(nc):
        _b_hold(B, cbuf[j], server_of[cbuf[j]])
    if s < 0:
        pol_end(kind, P)
        return -1, 0.0, 0, 0
    ns = 0
    for j in range(nc):
        if server_of[cbuf[j]] == s:
            evbuf[ns] = cbuf[j]
            ns += 1
    nsel = ns
    if dg < 0 and kind != LRU and kind != FIFO and kind != TTL:
        nsel = pol_select(kind, P, evbuf, ns, _b_need(B, m, s) - free[s], size)  # CremeBrulee: largest first
    unload_ms = 0.0
    freed_bytes = 0
    ne = 0
    for sweep in range(2):  # the selection, then (if shared weights left it short) the candidates in order
        for j in range(nsel if sweep == 0 else nc):
            if dg < 0 and free[s] >= _b_need(B, m, s):
                break
            c = evbuf[j] if sweep == 0 else cbuf[j]
            if server_of[c] != s or mstate[c] != LOADED:
                continue
            f = _b_drop(B, c, s)
            free[s] += f
            freed_bytes += f
            unload_ms += unload[c]
            pol_remove(kind, P, c)
            server_of[c] = -1
            mstate[c] = ABSENT
            evbuf[ne] = c
            ne += 1
    pol_end(kind, P)
    bi[BI_DG] = dg
    return s, unload_ms, ne, freed_bytes


@njit(cache=True)
def _b_start_load(E, kind, P, m, tau, size, load, unload):
    """`_start_load` with the memory mechanisms (B_INTS[BI_ON]): shared weights, downgrades,
    host process; also records the unshared-equivalent memory change (B_MEMU)."""
    B = E[E_B]
    bi = B[B_INTS]
    free, evictable = E[E_FREE], E[E_EVICTABLE]
    possible = False
    least = _b_inst(B, m)
    for k in range(free.shape[0]):
        if free[k] + evictable[k] + bi[BI_HOST] >= least:
            possible = True
            break
    if not possible:
        return False
    exe = B[B_EXE]
    s, unload_ms, ne, freed_bytes = _b_make_room(E, kind, P, m, tau, size, unload)
    if s < 0:
        return False
    ctr = E[E_CTR]
    evbuf, server_of, mstate = E[E_EVBUF], E[E_SERVER], E[E_MSTATE]
    unshared = 0
    for j in range(ne):
        c = evbuf[j]
        server_of[c] = s  # for _drop_queue
        _drop_queue(E, c)
        server_of[c] = -1
        evictable[s] -= size[c]
        unshared -= size[c]
        _b_evicted(B, c, size, load, unload)
    ctr[C_EVICTIONS] += ne
    dg = bi[BI_DG]
    if dg >= 0:  # swap dg for its smaller variant: unload it, load the variant (a load: dg waits)
        u = bi[BI_DGV]
        old_full = size[dg]
        f = _b_drop(B, dg, s)
        _b_vlist_remove(B, dg)
        B[B_VAR][dg] = u
        added = _b_need(B, dg, s)
        _b_hold(B, dg, s)
        free[s] += f - added
        freed_bytes += f - added
        evictable[s] -= old_full
        size[dg] = _b_full(B, dg)
        unshared -= old_full - size[dg]
        kt = B[B_KTIMES]
        swap_ms = unload[dg] + kt[0, u]
        load[dg] = kt[0, u]
        exe[dg] = kt[1, u]
        unload[dg] = kt[2, u]
        mstate[dg] = LOADING
        E[E_LOADRUN][s] += 1
        pol_pin(kind, P, dg)
        bi[BI_DOWNGRADES] += 1
        ctr[C_LOADS] += 1
        ctr[C_BYTES] += added
        E[E_FCTR][FC_LOADTIME] += load[dg]
        ctr[C_NEV] = ev_push(E[E_ET], E[E_ES], E[E_EK], E[E_EI], ctr[C_NEV], tau + swap_ms, ctr[C_SEQ], EV_LOAD, dg)
        ctr[C_SEQ] += 1
    need = _b_need(B, m, s)
    _b_hold(B, m, s)
    host_added = bi[BI_HOST] if B[B_NHOSTED][s] - 1 + ne == 0 else 0
    slot = _commit_load(E, kind, P, m, s, tau, need, freed_bytes, load, unload_ms)
    B[B_MEMU][slot] = unshared + size[m] + host_added
    return True


@njit(cache=True)
def _b_expired(E, c, size, load, unload):
    """Keep-alive expiry of c with the memory mechanisms: release its memory, record the change
    (shared and unshared-equivalent) at E_MEMD/B_MEMU's next slot; return the bytes freed."""
    B = E[E_B]
    s = E[E_SERVER][c]
    f = _b_drop(B, c, s)
    E[E_FREE][s] += f
    E[E_EVICTABLE][s] -= size[c]
    B[B_MEMU][E[E_CTR][C_NMEM]] = -size[c] - (B[B_INTS][BI_HOST] if B[B_NHOSTED][s] == 0 else 0)
    _b_evicted(B, c, size, load, unload)
    return f


@njit(cache=True)
def _b_redirect(E, m):
    """--adaptive-variants: a request for m (not resident, no load under way) that does not fit in
    free memory on any server is served by the largest loaded smaller variant of its family, if
    one is resident anywhere (its model is returned; -1: none)."""
    B = E[E_B]
    free = E[E_FREE]
    for k in range(free.shape[0]):
        if free[k] >= _b_need(B, m, k):
            return -1
    head, smaller = B[B_VHEAD], B[B_SMALLER]
    u = smaller[B[B_BASE][m]]
    while u >= 0:
        if head[u] >= 0:
            B[B_INTS][BI_REDIRECTS] += 1
            return head[u]
        u = smaller[u]
    return -1


# ---------------------------------------------------------------- beyond eviction in time
# Interference (FECBench / Deep-Edge as simple models) and keep-alive with pre-warming (hybrid
# histogram, Shahrad et al. ATC'20; forecast-driven pre-loading, Barista IC2E'19). Their state is in
# the E entries E_XP .. E_KCTR; with every parameter zero they change nothing.
@njit(cache=True, inline="always")
def _exec_time(E, s, base):
    """A request's execution time, decided when it starts on server s (its slot already taken):
    base x (1 + K (busy - 1)) x (1 + K2 loads), busy = executions running on s including it, loads =
    loads running on s (from their decision, victims' unloads included, to their completion)."""
    xp = E[E_XP]
    if xp[XP_INTERF] == 0.0 and xp[XP_LOADINTERF] == 0.0:
        return base
    busy = xp[XP_WORKERS] - E[E_SLOTS][s]
    return base * (1.0 + xp[XP_INTERF] * (busy - 1.0)) * (1.0 + xp[XP_LOADINTERF] * E[E_LOADRUN][s])


@njit(cache=True)
def _timer_set(ki, kf, kc, m, when, what):
    kf[KF_TIME, m] = when
    ki[KI_TKIND, m] = what
    if ki[KI_HPOS, m] >= 0:
        heap_fix(ki[KI_HEAP], kc[K_HEAPN], ki[KI_HPOS], kf[KF_TIME], ki[KI_KEY2], m)
    else:
        kc[K_HEAPN] = heap_push(ki[KI_HEAP], kc[K_HEAPN], ki[KI_HPOS], kf[KF_TIME], ki[KI_KEY2], m)


@njit(cache=True)
def _pct_move(ki, hist, m, row_bin, row_cum, target):
    """Move m's percentile bin (row_bin, with row_cum = in-range samples up to and including it) to the
    lowest bin whose cumulative count reaches target, as a scan from bin 0 would find it."""
    b = ki[row_bin, m]
    cum = ki[row_cum, m]
    last = hist.shape[1] - 1
    while cum < target and b < last:
        b += 1
        cum += hist[m, b]
    while b > 0 and cum - hist[m, b] >= target:
        cum -= hist[m, b]
        b -= 1
    ki[row_bin, m] = b
    ki[row_cum, m] = cum


@njit(cache=True)
def _ka_sample(xp, ki, kf, hist, m, x):
    """One idle time x (ms) of model m: into its histogram (or counted beyond its range) and its
    forecaster (EWMA mean and mean deviation, gains 1/8 and 1/4, as TCP's round-trip-time estimator)."""
    b = int(x // xp[XP_BIN_MS])
    ki[KI_NSAMP, m] += 1
    if b >= int(xp[XP_BINS]):
        ki[KI_NOOB, m] += 1
    else:
        c = hist[m, b]
        ki[KI_SUMSQ, m] += 2 * c + 1
        hist[m, b] = c + 1
        if b <= ki[KI_HEAD, m]:
            ki[KI_CUMH, m] += 1
        if b <= ki[KI_TAIL, m]:
            ki[KI_CUMT, m] += 1
        nin = ki[KI_NSAMP, m] - ki[KI_NOOB, m]
        _pct_move(ki, hist, m, KI_HEAD, KI_CUMH, xp[XP_HEAD_PCT] / 100.0 * nin)
        _pct_move(ki, hist, m, KI_TAIL, KI_CUMT, xp[XP_TAIL_PCT] / 100.0 * nin)
    if ki[KI_NSAMP, m] == 1:
        kf[KF_MU, m] = x
        kf[KF_DEV, m] = 0.5 * x
    else:
        err = x - kf[KF_MU, m]
        kf[KF_MU, m] += err / 8.0
        kf[KF_DEV, m] += (abs(err) - kf[KF_DEV, m]) / 4.0


@njit(cache=True)
def _ka_window(xp, ki, kf, hist, m):
    """(pre-warm after, keep alive until), both in ms after m went idle. Pre-warm 0: m is not unloaded."""
    n = ki[KI_NSAMP, m]
    forecast = False
    if xp[XP_MODE] == KA_FORECAST:
        forecast = n >= xp[XP_FC_MIN_SAMPLES]
    elif n >= xp[XP_MIN_SAMPLES]:
        if ki[KI_NOOB, m] > xp[XP_OOB_SHARE] * n:
            forecast = True  # mostly beyond the histogram: the forecaster (the paper's ARIMA)
        else:
            nin = n - ki[KI_NOOB, m]
            bins = xp[XP_BINS]
            if nin >= xp[XP_MIN_SAMPLES]:
                mean = nin / bins
                var = ki[KI_SUMSQ, m] / bins - mean * mean
                if np.sqrt(max(var, 0.0)) / mean > xp[XP_CV]:  # representative: concentrated idle times
                    # head, tail: the lowest bins whose cumulative counts reach head_pct and tail_pct % of
                    # the in-range samples (kept by _ka_sample)
                    head, tail = ki[KI_HEAD, m], ki[KI_TAIL, m]
                    bin_ms = xp[XP_BIN_MS]
                    return head * bin_ms * (1.0 - xp[XP_MARGIN]), (tail + 1) * bin_ms * (1.0 + xp[XP_MARGIN])
    if forecast:
        mu, dev, k = kf[KF_MU, m], kf[KF_DEV, m], xp[XP_FC_DEVS]
        keep = max((mu + k * dev) * (1.0 + xp[XP_FC_MARGIN]), xp[XP_BIN_MS])
        return max(mu - k * dev, 0.0) * (1.0 - xp[XP_FC_MARGIN]), keep
    return 0.0, xp[XP_FIXED_MS]


@njit(cache=True)
def _ka_unload(E, kind, P, m, t, size, load, unload):
    """Unload the loaded, idle model m now (kept-alive window over, or unloaded to be pre-warmed)."""
    s = E[E_SERVER][m]
    _drop_queue(E, m)
    released = size[m]
    if E[E_B][B_INTS][BI_ON] != 0:
        released = _b_expired(E, m, size, load, unload)
    else:
        E[E_FREE][s] += size[m]
        E[E_EVICTABLE][s] -= size[m]
    E[E_SERVER][m] = -1
    E[E_MSTATE][m] = ABSENT
    pol_remove(kind, P, m)
    ctr = E[E_CTR]
    E[E_MEMT][ctr[C_NMEM]] = t
    E[E_MEMD][ctr[C_NMEM]] = -released
    ctr[C_NMEM] += 1
    ctr[C_EVICTIONS] += 1
    ki = E[E_KI]
    if ki[KI_FLAG, m] != 0:  # pre-warmed and never used
        ki[KI_FLAG, m] = 0
        E[E_KCTR][K_WASTED] += 1


@njit(cache=True)
def _ka_decide(xp, ki, kf, kc, hist, m, tau, loaded):
    """m has no queued or running work from tau on: its idle time starts, and its timer is set (pre-warm
    or keep-alive end). True: unload it now (to be pre-warmed later)."""
    kf[KF_IDLE, m] = tau
    prewarm, keep = _ka_window(xp, ki, kf, hist, m)
    if prewarm > 0.0:
        kf[KF_EXPIRE_AT, m] = tau + keep
        _timer_set(ki, kf, kc, m, tau + prewarm, T_PREWARM)
        return loaded
    if loaded:
        _timer_set(ki, kf, kc, m, tau + keep, T_EXPIRE)
    return False


@njit(cache=True)
def _ka_idle(E, kind, P, m, tau, size, load, unload):
    """m has no queued or running work from tau on: its idle time starts; unload it and pre-warm
    later, or keep it alive until its window ends. (The event loop's hot path calls `_ka_decide`
    itself: a call that takes E costs more than the decision.)"""
    if _ka_decide(E[E_XP], E[E_KI], E[E_KF], E[E_KCTR], E[E_HIST], m, tau, E[E_MSTATE][m] == LOADED):
        _ka_unload(E, kind, P, m, tau, size, load, unload)
        _try_pending(E, kind, P, tau, size, load, unload)


@njit(cache=True)
def _ka_arrive(xp, ki, kf, kc, hist, mstate, m, t):
    """A request for m: its idle time (if it was idle) is a sample; its timer is off; a pre-warm
    it finds loaded (or loading) was used, one it finds evicted was wasted."""
    if kf[KF_IDLE, m] >= 0.0:
        _ka_sample(xp, ki, kf, hist, m, t - kf[KF_IDLE, m])
        kf[KF_IDLE, m] = -1.0
    ki[KI_TKIND, m] = T_CANCELLED  # left in the heap (skipped when due, or moved when m's timer is set again)
    if ki[KI_FLAG, m] != 0:
        ki[KI_FLAG, m] = 0
        if mstate[m] == ABSENT:
            kc[K_WASTED] += 1
        else:
            kc[K_USED] += 1


@njit(cache=True)
def _ka_timer(E, kind, P, t, size, load, unload):
    """The earliest timer fires: a keep-alive ends (unload if still loaded and idle), or a pre-warm
    is due (load without a request, only into free memory and when no request waits for memory:
    a pre-warm never evicts; otherwise it is skipped)."""
    ki, kf, kc = E[E_KI], E[E_KF], E[E_KCTR]
    m = ki[KI_HEAP, 0]
    kc[K_HEAPN] = heap_remove(ki[KI_HEAP], kc[K_HEAPN], ki[KI_HPOS], kf[KF_TIME], ki[KI_KEY2], m)
    if ki[KI_TKIND, m] == T_CANCELLED:
        return
    mstate = E[E_MSTATE]
    if ki[KI_TKIND, m] == T_EXPIRE:
        if mstate[m] == LOADED and E[E_PINS][m] == 0:
            _ka_unload(E, kind, P, m, t, size, load, unload)
            _try_pending(E, kind, P, t, size, load, unload)
        return
    free = E[E_FREE]
    room = False
    for k in range(free.shape[0]):
        if free[k] >= size[m]:
            room = True
    ctr = E[E_CTR]
    if (mstate[m] == ABSENT and E[E_PENDING][m] == 0 and ctr[C_PHEAD] == ctr[C_PTAIL] and room
            and _start_load(E, kind, P, m, t, size, load, unload)):
        ki[KI_FLAG, m] = 1
        kc[K_PREWARMS] += 1
        return
    kc[K_SKIPPED] += 1


@njit(cache=True)
def _ka_loaded_idle(E, kind, P, m, tau, size, load, unload):
    """m finished loading with nothing waiting: a pre-warm is kept alive until its window ends;
    any other load (its requests timed out) starts an idle time."""
    ki, kf = E[E_KI], E[E_KF]
    if ki[KI_FLAG, m] != 0:
        _timer_set(ki, kf, E[E_KCTR], m, max(kf[KF_EXPIRE_AT, m], tau), T_EXPIRE)
    else:
        _ka_idle(E, kind, P, m, tau, size, load, unload)


def keepalive_params(mode: int, fixed_ms: float, workers: int, interference: float = 0.0,
                     load_interference: float = 0.0, bin_min: float = 1.0, range_min: float = 240.0,
                     min_samples: int = 5, cv: float = 2.0, head_pct: float = 5.0, tail_pct: float = 99.0,
                     margin: float = 0.1, oob_share: float = 0.5, fc_margin: float = 0.15,
                     fc_min_samples: int = 2, fc_devs: float = 4.0) -> np.ndarray:
    """`xparams` of event_loop (the E_XP slots)."""
    xp = np.zeros(XP_SIZE)
    xp[XP_INTERF], xp[XP_LOADINTERF], xp[XP_WORKERS], xp[XP_MODE] = interference, load_interference, workers, mode
    xp[XP_FIXED_MS], xp[XP_BIN_MS], xp[XP_BINS] = fixed_ms, bin_min * 60_000.0, round(range_min / bin_min)
    xp[XP_MIN_SAMPLES], xp[XP_CV], xp[XP_HEAD_PCT], xp[XP_TAIL_PCT] = min_samples, cv, head_pct, tail_pct
    xp[XP_MARGIN], xp[XP_OOB_SHARE], xp[XP_FC_MARGIN] = margin, oob_share, fc_margin
    xp[XP_FC_MIN_SAMPLES], xp[XP_FC_DEVS] = fc_min_samples, fc_devs
    return xp


@njit(cache=True)
def event_loop(kind, P, times, models, size, load, exe, unload, capacity, servers, workers, max_wait_ms, B,
               xparams, xout):
    n = times.shape[0]
    n_models = size.shape[0]
    hits = np.zeros(n, np.bool_)
    cold = np.zeros(n, np.bool_)
    rejected = np.zeros(n, np.bool_)
    timed_out = np.zeros(n, np.bool_)
    latency = np.full(n, np.nan)
    n_events = n_models + servers * workers + 16
    n_mem = 2 * n + 1 if kind == TTL or kind < 0 else n + 1  # one per load, plus one per expiry
    keepalive = xparams[XP_MODE] != KA_OFF
    if keepalive:
        n_mem = 4 * n + 1  # loads and pre-warm loads (at most one per completion), and as many unloads
    E = (np.zeros(8, np.int64), np.zeros(n_models, np.int8), np.full(n_models, -1, np.int64),
         np.zeros(n_models, np.int64), np.zeros(n_models), np.zeros(n_models, np.int8),
         np.empty(n_models + 1, np.int64), np.full(n_models, -1, np.int64), np.full(n_models, -1, np.int64),
         np.full(n, -1, np.int64), np.zeros(n, np.int8),
         np.full(servers, capacity, np.int64), np.zeros(servers, np.int64), np.full(servers, workers, np.int64),
         np.empty((servers, n_models), np.int64), np.zeros(servers, np.int64), np.full(n_models, -1, np.int64),
         np.zeros(n_models), np.zeros(n_models, np.int64),
         np.empty(n_events), np.empty(n_events, np.int64), np.empty(n_events, np.int8), np.empty(n_events, np.int64),
         np.empty(n_mem), np.empty(n_mem, np.int64),
         np.empty(n_models, np.int64), np.empty(n_models, np.int64), np.empty(n_models), np.zeros(servers, np.int64),
         np.full(n_models, -1, np.int64), np.zeros(2), B) + (
         xparams, np.zeros(servers, np.int64), np.full((KI_ROWS, n_models), -1, np.int64), np.zeros((KF_ROWS, n_models)),
         np.zeros((n_models if keepalive else 1, int(xparams[XP_BINS]) if keepalive else 1), np.int64),
         np.zeros(8, np.int64))
    ki = E[E_KI]
    for r in (KI_TKIND, KI_NSAMP, KI_NOOB, KI_FLAG, KI_SUMSQ, KI_HEAD, KI_CUMH, KI_TAIL, KI_CUMT):
        ki[r] = 0
    ki[KI_KEY2] = np.arange(n_models)
    E[E_KF][KF_IDLE] = -1.0
    kctr, kfl, khist = E[E_KCTR], E[E_KF], E[E_HIST]
    ctr, mstate, server_of, pins, pending, pendq = E[E_CTR], E[E_MSTATE], E[E_SERVER], E[E_PINS], E[E_PENDING], E[E_PENDQ]
    qhead, qtail, qnext, status, evictable, slots = E[E_QHEAD], E[E_QTAIL], E[E_QNEXT], E[E_STATUS], E[E_EVICTABLE], E[E_SLOTS]
    et, es, ek, ei, fctr = E[E_ET], E[E_ES], E[E_EK], E[E_EI], E[E_FCTR]
    evbuf, evtime, free = E[E_EVBUF], E[E_EVTIME], E[E_FREE]
    idle, rsize, rpos, rkey, rkey2, rheap = E[E_IDLE], E[E_RSIZE], E[E_RPOS], E[E_RKEY], E[E_RKEY2], E[E_RHEAP]
    use_timeout = max_wait_ms >= 0.0
    expires = kind == TTL or kind < 0
    pol_start(kind, P)
    beyond = B[B_INTS][BI_ON] != 0  # the memory mechanisms (B)
    adapt = B[B_INTS][BI_ADAPT] != 0
    host_bytes = B[B_INTS][BI_HOST]
    xmul = B[B_XMUL]
    i = 0
    to = 0
    inf = np.inf
    while True:
        te = et[0] if ctr[C_NEV] > 0 else inf
        ta = times[i] if i < n else inf
        tk = kfl[KF_TIME, ki[KI_HEAP, 0]] if kctr[K_HEAPN] > 0 and i < n else inf  # timers stop at the last arrival
        tt = inf
        if use_timeout:
            while to < i and status[to] != WAITING:
                to += 1
            if to < i:
                tt = times[to] + max_wait_ms
        if te == inf and ta == inf and tt == inf:
            break
        if te <= ta and te <= tt and te <= tk:  # a load or an inference completes
            tau, what, x, nev = ev_pop(et, es, ek, ei, ctr[C_NEV])
            ctr[C_NEV] = nev
            if what == EV_EXEC:
                m = models[x]
                s = server_of[m]
                latency[x] = tau - times[x]
                fctr[FC_END] = max(fctr[FC_END], tau)
                slots[s] += 1
                pins[m] -= 1
                if pins[m] == 0:
                    idle[m] = tau
                    evictable[s] += size[m]
                    pol_unpin(kind, P, m)
                if rsize[s] > 0:
                    _dispatch(E, s, tau, exe)
                if pins[m] == 0 and ctr[C_PHEAD] != ctr[C_PTAIL]:
                    _try_pending(E, kind, P, tau, size, load, unload)
                if keepalive and pins[m] == 0 and _ka_decide(xparams, ki, kfl, kctr, khist, m, tau, mstate[m] == LOADED):
                    _ka_unload(E, kind, P, m, tau, size, load, unload)
                    _try_pending(E, kind, P, tau, size, load, unload)
            else:
                m = x
                mstate[m] = LOADED
                if adapt:
                    _b_vlist_add(B, m)
                s = server_of[m]
                E[E_LOADRUN][s] -= 1
                if pins[m] == 0:
                    _unpinned(E, kind, P, m, tau, size)
                    _drop_queue(E, m)
                    _try_pending(E, kind, P, tau, size, load, unload)
                    if keepalive:
                        _ka_loaded_idle(E, kind, P, m, tau, size, load, unload)
                else:
                    _ready(E, m, s)
                    _dispatch(E, s, tau, exe)
        elif tk <= tt and tk <= ta:  # a keep-alive or pre-warm timer
            _ka_timer(E, kind, P, tk, size, load, unload)
        elif tt <= ta:  # a request waited max_wait_ms without starting: dropped
            j = to
            to += 1
            status[j] = DROPPED
            timed_out[j] = True
            m = models[j]
            pins[m] -= 1
            if pins[m] == 0:
                _unpinned(E, kind, P, m, tt, size)
                _try_pending(E, kind, P, tt, size, load, unload)
                if keepalive and mstate[m] != LOADING:
                    _ka_idle(E, kind, P, m, tt, size, load, unload)
        else:  # a request arrives
            t = ta
            m = models[i]
            if adapt and mstate[m] == ABSENT and pending[m] == 0:
                redirect = _b_redirect(E, m)
                if redirect >= 0:  # served by a smaller resident variant
                    models[i] = redirect
                    m = redirect
            if beyond:
                B[B_SERVED][i] = B[B_VAR][m]
            if expires:
                ne = pol_expire(kind, P, t, mstate, pins, E[E_IDLE], evbuf, evtime)
                for j in range(ne):
                    c = evbuf[j]
                    s = server_of[c]
                    _drop_queue(E, c)
                    released = size[c]
                    if beyond:
                        released = _b_expired(E, c, size, load, unload)
                    else:
                        free[s] += size[c]
                        evictable[s] -= size[c]
                    server_of[c] = -1
                    mstate[c] = ABSENT
                    E[E_MEMT][ctr[C_NMEM]] = evtime[j]
                    E[E_MEMD][ctr[C_NMEM]] = -released
                    ctr[C_NMEM] += 1
                ctr[C_EVICTIONS] += ne
                if ne > 0:
                    _try_pending(E, kind, P, t, size, load, unload)
            if size[m] + host_bytes > capacity:
                rejected[i] = True
                status[i] = STARTED
                i += 1
                continue
            E[E_LASTREQ][m] = i
            if keepalive:
                _ka_arrive(xparams, ki, kfl, kctr, khist, mstate, m, t)
            pins[m] += 1
            if qtail[m] >= 0:
                qnext[qtail[m]] = i
            else:
                qhead[m] = i
            qtail[m] = i
            state = mstate[m]
            if state == LOADED:
                hits[i] = True
                s = server_of[m]
                if pins[m] == 1:
                    evictable[s] -= size[m]
                    pol_pin(kind, P, m)
                if kind != FIFO and kind != RANDOM:
                    pol_access(kind, P, m, t, i)
                if rsize[s] == 0 and slots[s] > 0 and qhead[m] == i:  # nothing waits: start now
                    qhead[m] = -1
                    qtail[m] = -1
                    status[i] = STARTED
                    slots[s] -= 1
                    ctr[C_NEV] = ev_push(et, es, ek, ei, ctr[C_NEV], t + _exec_time(E, s, exe[m] * xmul[i]), ctr[C_SEQ],
                                         EV_EXEC, i)
                    ctr[C_SEQ] += 1
                else:
                    if rpos[m] < 0:  # its queue was empty: m becomes a candidate for a free slot
                        rkey[m] = qhead[m]
                        rsize[s] = heap_push(rheap[s], rsize[s], rpos, rkey, rkey2, m)
                    if slots[s] > 0:
                        _dispatch(E, s, t, exe)
            elif state == LOADING:
                pol_access(kind, P, m, t, i)
            elif pending[m] == 0:
                cold[i] = True
                pending[m] = 1
                pendq[ctr[C_PTAIL] % pendq.shape[0]] = m
                ctr[C_PTAIL] += 1
                _try_pending(E, kind, P, t, size, load, unload)
            i += 1
    if keepalive:
        for m in range(n_models):  # a pre-warm evicted under memory pressure, never used
            if ki[KI_FLAG, m] != 0 and mstate[m] == ABSENT:
                kctr[K_WASTED] += 1
    for j in range(min(xout.shape[0], kctr.shape[0])):
        xout[j] = kctr[j]
    return (hits, cold, rejected, timed_out, latency, ctr[C_EVICTIONS], ctr[C_LOADS], ctr[C_BYTES],
            fctr[FC_LOADTIME], fctr[FC_END], E[E_MEMT][:ctr[C_NMEM]].copy(), E[E_MEMD][:ctr[C_NMEM]].copy())


# ---------------------------------------------------------------- the plain-Python path
class PythonPolicyState:
    """Stands in for P on the plain-Python path: wraps a `Policy` object."""

    def __init__(self, policy) -> None:
        self.policy = policy
        self.candidates = None


def _py_insert(kind, P, m, t_ms, i):
    P.policy.insert(int(m), float(t_ms), int(i))


def _py_access(kind, P, m, t_ms, i):
    P.policy.access(int(m), float(t_ms), int(i))


def _py_remove(kind, P, m):
    P.policy.remove(int(m))


def _py_next(kind, P, t_ms):
    if P.candidates is None:
        P.candidates = iter(P.policy.victims(float(t_ms)))
    return next(P.candidates, -1)


def _py_end(kind, P):
    P.candidates = None


def _py_nothing(kind, P, m=None):
    pass


def _py_select(kind, P, buf, k, need, size):
    chosen = list(P.policy.select([int(x) for x in buf[:k]], int(need)))
    for j, model in enumerate(chosen):
        buf[j] = model
    return len(chosen)


def _py_expire(kind, P, t_ms, mstate, pins, idle, evbuf, evtime):
    policy = P.policy
    if not policy.expires:
        return 0
    n = 0
    for c in list(policy.expired(float(t_ms))):
        if mstate[c] == LOADED and pins[c] == 0:
            when = policy.expiry_ms(c) if hasattr(policy, "expiry_ms") else float(t_ms)
            when = max(when, float(idle[c]))
            policy.remove(c)
            evbuf[n] = c
            evtime[n] = when
            n += 1
    return n


_PY_GLOBALS: dict = {}


def python_build(function):
    """The plain-Python twin of a compiled loop: same source, Python policy calls."""
    if not _PY_GLOBALS:
        namespace = dict(globals())
        for name, value in globals().items():
            if isinstance(value, CPUDispatcher):
                code = value.py_func
                namespace[name] = types.FunctionType(code.__code__, namespace, name, code.__defaults__)
        namespace.update(pol_insert=_py_insert, pol_access=_py_access, pol_remove=_py_remove, pol_next=_py_next,
                         pol_end=_py_end, pol_start=_py_nothing, pol_pin=_py_nothing, pol_unpin=_py_nothing, pol_select=_py_select, pol_expire=_py_expire, rand_below=_py_rand_below)
        _PY_GLOBALS.update(namespace)
    return _PY_GLOBALS[function.__name__ if not isinstance(function, CPUDispatcher) else function.py_func.__name__]
