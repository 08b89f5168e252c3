"""Belady (offline bound): evict the resident model whose next request is furthest in the future,
measured in time (not in requests)."""

from .base import Policy, register


@register("belady")
class Belady(Policy):
    def __init__(self, ctx):
        super().__init__(ctx)
        if ctx.next_use_ms is None:
            raise ValueError("Belady needs next-use times")
        self.next_use: dict[int, float] = {}

    def access(self, model, t_ms, index):
        self.next_use[model] = self.ctx.next_use_ms[index]

    insert = access

    def remove(self, model):
        del self.next_use[model]

    def victims(self, t_ms):
        tiebreak = self.ctx.tiebreak
        return sorted(self.next_use, key=lambda m: (-self.next_use[m], tiebreak[m]))
