"""FIFO: evict the model loaded longest ago; hits change nothing."""

from .base import OrderedPolicy, register


@register("fifo")
class FIFO(OrderedPolicy):
    def access(self, model, t_ms, index):
        pass
