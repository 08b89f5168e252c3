"""LFU: evict the model with the fewest requests since it was loaded (ties: seeded random order)."""

from .base import Policy, register


@register("lfu")
class LFU(Policy):
    def __init__(self, ctx):
        super().__init__(ctx)
        self.count: dict[int, int] = {}
        self.tiebreak = ctx.tiebreak

    def access(self, model, t_ms, index):
        self.count[model] += 1

    def insert(self, model, t_ms, index):
        self.count[model] = 1

    def remove(self, model):
        del self.count[model]

    def victims(self, t_ms):
        tiebreak = self.tiebreak
        return sorted(self.count, key=lambda m: (self.count[m], tiebreak[m]))
