"""CremeBrulee (Ogden et al., ACSOS'21): utility = (f / max f)^a x (c / max c)^b / size, where f is
the model's request frequency so far (requests seen / requests elapsed), c its reload cost (load
time, or load/exec with `cost: load_over_exec`) and size its memory; lowest utility is evicted first.
CremeBrulee-oracle puts the inverse of the next-use distance (time) in place of f: an offline bound."""

from .base import Policy, register


@register("cremebrulee")
class CremeBrulee(Policy):
    def __init__(self, ctx):
        super().__init__(ctx)
        self.a = float(ctx.params.get("alpha", 1.0))
        self.b = float(ctx.params.get("beta", 1.0))
        if ctx.params.get("cost", "load") == "load_over_exec":
            cost = [load / exe for load, exe in zip(ctx.load_ms, ctx.exec_ms)]
        else:
            cost = list(ctx.load_ms)
        top = max(cost)
        self.cost = [c / top for c in cost]
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

    def frequency(self, model, t_ms):
        return self.seen[model]  # / requests elapsed, a common factor that cancels in f / max f

    def victims(self, t_ms):
        frequency = {m: self.frequency(m, t_ms) for m in self.resident}
        top = max(frequency.values(), default=1.0) or 1.0
        size, cost, tiebreak = self.ctx.size_mb, self.cost, self.ctx.tiebreak
        def utility(m):
            return (frequency[m] / top) ** self.a * cost[m] ** self.b / size[m]
        return sorted(self.resident, key=lambda m: (utility(m), tiebreak[m]))


@register("cremebrulee-oracle")
class CremeBruleeOracle(CremeBrulee):
    def __init__(self, ctx):
        super().__init__(ctx)
        if ctx.next_use_ms is None:
            raise ValueError("CremeBrulee-oracle needs next-use times")
        self.next_use: dict[int, float] = {}

    def _count(self, model, index):
        self.next_use[model] = self.ctx.next_use_ms[index]

    def frequency(self, model, t_ms):
        distance = self.next_use[model] - t_ms
        return 1.0 / max(distance, 1.0)  # inf distance (never used again) gives 0
