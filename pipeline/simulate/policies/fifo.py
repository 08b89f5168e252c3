"""FIFO: evict the model loaded longest ago; hits change nothing."""

from collections import OrderedDict

from .base import Policy, register


@register("fifo")
class FIFO(Policy):
    def __init__(self, ctx):
        super().__init__(ctx)
        self.order: OrderedDict[int, None] = OrderedDict()

    def access(self, model, t_ms, index):
        pass

    def insert(self, model, t_ms, index):
        self.order[model] = None

    def remove(self, model):
        del self.order[model]

    def victims(self, t_ms):
        return list(self.order)
