"""Eviction policies: one small class per file on the `Policy` interface, found through `REGISTRY`.

Add a policy by writing a class with `@register("name")` in any module that is imported (or pass
`module.path:ClassName` as the policy name); the simulator core never changes."""

from . import belady, cremebrulee, fifo, gdsf, keepalive, lfu, lru, random_policy, ttl  # noqa: F401  (registration)
from .base import (
    REGISTRY,
    OrderedPolicy,
    Policy,
    PolicyContext,
    make_policy,
    policy_names,
    register,
)
from .lru import LRU

__all__ = ["LRU", "REGISTRY", "OrderedPolicy", "Policy", "PolicyContext", "make_policy", "policy_names", "register"]
