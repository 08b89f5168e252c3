"""A policy written outside the simulator core (most recently used first out), for the plug-in test."""

from collections import OrderedDict

from pipeline.simulate.policies import Policy


class MRU(Policy):
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
        return list(reversed(self.order))
