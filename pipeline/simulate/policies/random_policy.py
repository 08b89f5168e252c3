"""Random: evict resident models in a seeded random order."""

from .base import Policy, register


@register("random")
class Random(Policy):
    def __init__(self, ctx):
        super().__init__(ctx)
        self.resident: dict[int, None] = {}

    def access(self, model, t_ms, index):
        pass

    def insert(self, model, t_ms, index):
        self.resident[model] = None

    def remove(self, model):
        del self.resident[model]

    def victims(self, t_ms):
        models = list(self.resident)
        return [models[i] for i in self.ctx.rng.permutation(len(models))]
