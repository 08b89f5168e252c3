"""LRU: evict the least recently used model."""

from .base import OrderedPolicy, register


@register("lru")
class LRU(OrderedPolicy):
    def access(self, model, t_ms, index):
        self.order.move_to_end(model)
