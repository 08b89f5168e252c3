"""CremeBrulee (Ogden et al., ACSOS'21): utility = (f / max f)^a x (c / max c)^b / size, where f is
the model's request frequency so far (requests seen, counted across evictions; the common factors
1 / requests elapsed and 1 / max f do not change the order), c its reload cost (load time, or
load/exec with `cost: load_over_exec`) and size its memory. As the original: victims are taken in
order of lowest utility until they free enough memory, then that set is sorted by size, largest
first, and only the prefix needed is evicted.
CremeBrulee-oracle puts the inverse of the next-use distance (time, at least 1 ms) in place of f,
ties going to the later next-use position: an offline bound."""

from .base import Policy, register


@register("cremebrulee")
class CremeBrulee(Policy):
    def __init__(self, ctx):
        super().__init__(ctx)
        self.a = float(ctx.params.get("alpha", 1.0))
        self.weight = ctx.weight  # (c / max c)^b / size, from core.policy_weights
        self.seen: dict[int, int] = {}  # requests per model so far (kept across evictions)
        self.resident: dict[int, None] = {}

    def _count(self, model, index):
        self.seen[model] = self.seen.get(model, 0) + 1

    def access(self, model, t_ms, index):
        self._count(model, index)

    def insert(self, model, t_ms, index):
        self._count(model, index)
        self.resident[model] = None

    def remove(self, model):
        del self.resident[model]

    def utility(self, model, t_ms):
        return float(self.seen[model]) ** self.a * self.weight[model]

    def order_key(self, model, t_ms):
        return (self.utility(model, t_ms), self.ctx.tiebreak[model])

    def victims(self, t_ms):
        return sorted(self.resident, key=lambda m: self.order_key(m, t_ms))

    def select(self, candidates, need_bytes):
        size = self.ctx.size_bytes
        chosen, freed = [], 0
        for model in sorted(candidates, key=lambda m: -size[m]):
            chosen.append(model)
            freed += size[model]
            if freed >= need_bytes:
                break
        return chosen


@register("cremebrulee-oracle")
class CremeBruleeOracle(CremeBrulee):
    def __init__(self, ctx):
        super().__init__(ctx)
        if ctx.next_use_ms is None or ctx.next_use_index is None:
            raise ValueError("CremeBrulee-oracle needs next-use times")
        self.next_use: dict[int, tuple[float, int]] = {}

    def _count(self, model, index):
        self.next_use[model] = (self.ctx.next_use_ms[index], self.ctx.next_use_index[index])

    def utility(self, model, t_ms):
        distance = self.next_use[model][0] - t_ms
        distance = max(distance, 1.0)
        return (1.0 / distance) ** self.a * self.weight[model]  # never used again: 0

    def order_key(self, model, t_ms):
        return (self.utility(model, t_ms), -self.next_use[model][1], self.ctx.tiebreak[model])
