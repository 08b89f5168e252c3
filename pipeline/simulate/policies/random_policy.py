"""Random: evict resident models in a seeded random order."""

from .base import OrderedPolicy, register


@register("random")
class Random(OrderedPolicy):
    def access(self, model, t_ms, index):
        pass

    def victims(self, t_ms):
        models = list(self.order)
        return [models[i] for i in self.ctx.rng.permutation(len(models))]
