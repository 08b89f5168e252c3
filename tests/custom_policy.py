"""A policy written outside the simulator core (most recently used first out), for the plug-in test."""

from pipeline.simulate.policies import LRU


class MRU(LRU):
    def victims(self, t_ms):
        return list(reversed(self.order))
