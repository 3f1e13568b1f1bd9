"""Shared type aliases and protocols (in the spirit of ``blackjax.types``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeAlias

import jax
from jax.typing import ArrayLike

__all__ = [
    "Array",
    "ArrayLike",
    "ArrayTree",
    "ArrayLikeTree",
    "PRNGKey",
    "Params",
    "LogDensityFn",
    "EnergyFn",
    "Metrics",
]

Array: TypeAlias = jax.Array
ArrayTree: TypeAlias = Any  # an array or a pytree of arrays
ArrayLikeTree: TypeAlias = Any
PRNGKey: TypeAlias = jax.Array
Params: TypeAlias = Any
Metrics: TypeAlias = dict[str, jax.Array]
LogDensityFn: TypeAlias = Callable[[ArrayTree], jax.Array]


class EnergyFn(Protocol):
    """``energy_fn(params, x) -> scalar`` (or ``energy_fn(x)`` without params)."""

    def __call__(self, *args: Any) -> jax.Array: ...
