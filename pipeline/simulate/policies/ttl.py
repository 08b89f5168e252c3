"""Keep-alive TTL, as FaaS platforms do: a model idle for `ttl_min` minutes is unloaded (10 min as
AWS, 20 min as Azure); under memory pressure the least recently used goes first."""

from collections import OrderedDict

from .base import Policy, register


@register("ttl")
class KeepAlive(Policy):
    expires = True

    def __init__(self, ctx):
        super().__init__(ctx)
        self.ttl_ms = float(ctx.params.get("ttl_min", 10.0)) * 60_000.0
        self.last: OrderedDict[int, int] = OrderedDict()

    def access(self, model, t_ms, index):
        self.last[model] = t_ms
        self.last.move_to_end(model)

    def insert(self, model, t_ms, index):
        self.last[model] = t_ms

    def remove(self, model):
        del self.last[model]

    def victims(self, t_ms):
        return list(self.last)

    def expired(self, t_ms):
        gone = []
        for model, last in self.last.items():
            if t_ms - last < self.ttl_ms:
                break
            gone.append(model)
        return gone
