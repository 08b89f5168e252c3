"""GDSF (Greedy-Dual-Size-Frequency): priority = L + frequency x cost / size, cost = load time,
frequency counted since the model was loaded; L rises to the priority of each evicted model
(aging)."""

from .base import Policy, register


@register("gdsf")
class GDSF(Policy):
    def __init__(self, ctx):
        super().__init__(ctx)
        self.inflation = 0.0
        self.count: dict[int, int] = {}
        self.priority: dict[int, float] = {}

    def _update(self, model):
        self.priority[model] = self.inflation + self.count[model] * self.ctx.weight[model]  # weight = load / size

    def access(self, model, t_ms, index):
        self.count[model] += 1
        self._update(model)

    def insert(self, model, t_ms, index):
        self.count[model] = 1
        self._update(model)

    def remove(self, model):
        self.inflation = max(self.inflation, self.priority[model])
        del self.count[model], self.priority[model]

    def victims(self, t_ms):
        tiebreak = self.ctx.tiebreak
        return sorted(self.priority, key=lambda m: (self.priority[m], tiebreak[m]))
