"""Belady (offline bound): evict the resident model whose next request is furthest in the future;
requests are in time order, so the furthest next request by position is the furthest in time,
with same-millisecond ties going to the later position (optimal at unit sizes)."""

from .base import Policy, register


@register("belady")
class Belady(Policy):
    def __init__(self, ctx):
        super().__init__(ctx)
        if ctx.next_use_index is None:
            raise ValueError("Belady needs next-use positions")
        self.next_use: dict[int, int] = {}

    def access(self, model, t_ms, index):
        self.next_use[model] = self.ctx.next_use_index[index]

    insert = access

    def remove(self, model):
        del self.next_use[model]

    def victims(self, t_ms):
        tiebreak = self.ctx.tiebreak
        return sorted(self.next_use, key=lambda m: (-float(self.next_use[m]), tiebreak[m]))
