"""LRU: evict the least recently used model."""

from collections import OrderedDict

from .base import Policy, register


@register("lru")
class LRU(Policy):
    def __init__(self, ctx):
        super().__init__(ctx)
        self.order: OrderedDict[int, None] = OrderedDict()

    def access(self, model, t_ms, index):
        self.order.move_to_end(model)

    def insert(self, model, t_ms, index):
        self.order[model] = None

    def remove(self, model):
        del self.order[model]

    def victims(self, t_ms):
        return list(self.order)
