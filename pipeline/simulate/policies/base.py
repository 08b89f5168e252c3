"""The policy interface and registry."""

from __future__ import annotations

import importlib
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from ...errors import ManyModelsError


@dataclass
class PolicyContext:
    """What a policy may know: the workload models' profiles, a seeded RNG, its parameters, and,
    for offline policies, each request's next use of the same model (ms; inf if none) and its
    position (n if none). `size_bytes` is the memory the core counts; `weight` the per-model
    constant factor of the built-in priorities (`core.policy_weights`); `seed_state` seeds the
    random policy's generator (`engine.splitmix_below`)."""

    size_mb: list[float]
    load_ms: list[float]
    exec_ms: list[float]
    rng: np.random.Generator
    tiebreak: list[int]
    params: dict = field(default_factory=dict)
    next_use_ms: list[float] | None = None
    size_bytes: list[int] | None = None
    next_use_index: list[int] | None = None
    seed_state: int = 0
    weight: list[float] | None = None


class Policy:
    """Higher utility = keep. One policy sees every server. The core calls `access` on every
    request to a resident model (loaded or still loading), `insert` when a load starts (with the
    latest request for the model), `remove` when a model leaves, and asks `victims(t)` for resident
    models in eviction order (it consumes them lazily, skipping those with work in flight, until
    one server has freed enough); `select(candidates, need_bytes)` then picks which of that
    server's candidates to evict (default: all, which is exactly the prefix needed). A policy
    with `expires = True` names models to drop without memory pressure in `expired(t)` (and may
    say when each expired with `expiry_ms(model)`)."""

    name = "base"
    expires = False  # True if `expired(t)` may return models to drop without memory pressure

    def __init__(self, ctx: PolicyContext) -> None:
        self.ctx = ctx

    def access(self, model: int, t_ms: int, index: int) -> None:
        raise NotImplementedError

    def insert(self, model: int, t_ms: int, index: int) -> None:
        raise NotImplementedError

    def remove(self, model: int) -> None:
        raise NotImplementedError

    def victims(self, t_ms: int) -> Iterable[int]:
        raise NotImplementedError

    def select(self, candidates: list[int], need_bytes: int) -> list[int]:
        return candidates

    def expired(self, t_ms: int) -> list[int]:
        return []


class OrderedPolicy(Policy):
    """Residents kept in an insertion-ordered dict; victims are taken from its front."""

    def __init__(self, ctx: PolicyContext) -> None:
        super().__init__(ctx)
        self.order: OrderedDict[int, object] = OrderedDict()  # value: per policy (None, or last use)

    def insert(self, model: int, t_ms: int, index: int) -> None:
        self.order[model] = None

    def remove(self, model: int) -> None:
        del self.order[model]

    def victims(self, t_ms: int) -> Iterable[int]:
        return list(self.order)


REGISTRY: dict[str, type[Policy]] = {}


def register(name: str):
    def decorate(cls: type[Policy]) -> type[Policy]:
        cls.name = name
        REGISTRY[name] = cls
        return cls
    return decorate


def policy_names() -> list[str]:
    return sorted(REGISTRY)


def make_policy(name: str, ctx: PolicyContext) -> Policy:
    if name in REGISTRY:
        return REGISTRY[name](ctx)
    if ":" in name:  # a user's own policy: package.module:ClassName
        module, _, attr = name.partition(":")
        try:
            cls = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as error:
            raise ManyModelsError(f"cannot load policy {name!r}: {error}") from error
        return cls(ctx)
    raise ManyModelsError(f"unknown policy {name!r}; valid policies: {', '.join(policy_names())} "
                          "(or module.path:ClassName for your own)")
