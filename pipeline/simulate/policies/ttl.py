"""Keep-alive TTL, as FaaS platforms do: a model idle for `ttl_min` minutes is unloaded (10 min as
AWS, 20 min as Azure); under memory pressure the least recently used goes first."""

from .base import OrderedPolicy, register


@register("ttl")
class KeepAlive(OrderedPolicy):
    """Residents in order of last use, each with its last-use time (ms)."""

    expires = True

    def __init__(self, ctx):
        super().__init__(ctx)
        self.ttl_ms = float(ctx.params.get("ttl_min", 10.0)) * 60_000.0

    def access(self, model, t_ms, index):
        self.order[model] = t_ms
        self.order.move_to_end(model)

    def insert(self, model, t_ms, index):
        self.order[model] = t_ms

    def expired(self, t_ms):
        gone = []
        for model, last in self.order.items():
            if t_ms - last < self.ttl_ms:
                break
            gone.append(model)
        return gone

    def expiry_ms(self, model):
        return self.order[model] + self.ttl_ms
