"""Random: evict resident models in a seeded random order (a lazy Fisher-Yates shuffle of the
residents with the splitmix64 generator the compiled policy uses)."""

from ..engine import splitmix_below
from .base import Policy, register


@register("random")
class Random(Policy):
    def __init__(self, ctx):
        super().__init__(ctx)
        self.dense: list[int] = []
        self.position: dict[int, int] = {}
        self.state = ctx.seed_state

    def access(self, model, t_ms, index):
        pass

    def insert(self, model, t_ms, index):
        self.position[model] = len(self.dense)
        self.dense.append(model)

    def remove(self, model):
        j = self.position.pop(model)
        last = self.dense.pop()
        if last != model:
            self.dense[j] = last
            self.position[last] = j

    def victims(self, t_ms):
        dense, position = self.dense, self.position
        for j in range(len(dense)):
            self.state, r = splitmix_below(self.state, len(dense) - j)
            r += j
            dense[j], dense[r] = dense[r], dense[j]
            position[dense[j]], position[dense[r]] = j, r
            yield dense[j]
