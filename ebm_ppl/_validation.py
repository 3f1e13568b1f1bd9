"""Argument checks shared by the public entry points (one sentence per error), and the one
conversion from a user's ``seed`` to a ``jax.random`` key."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "as_key",
    "check_int",
    "check_nonnegative",
    "check_positive",
    "check_probability",
]


#: ``jax.random.key`` compiled once: the same key for every int32 seed.
_key_of = jax.jit(jax.random.key)


def check_int(name: str, value: Any, minimum: int) -> int:
    """Return ``value`` as an int, or raise ``ValueError`` unless it is an integer
    ``>= minimum`` (booleans are refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _real_scalar(name: str, value: Any, expectation: str) -> float:
    if isinstance(value, (bool, str, bytes)):
        raise ValueError(f"{name} must be {expectation}, got {value!r}")
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be {expectation}, got {value!r}") from None
    if arr.shape != () or not np.isfinite(arr):
        raise ValueError(f"{name} must be {expectation}, got {value!r}")
    return float(arr)


def check_positive(name: str, value: Any) -> Any:
    """Return ``value`` as a float (a tracer unchanged), or raise ``ValueError`` unless it
    is a finite scalar > 0 (tracers pass)."""
    if isinstance(value, jax.core.Tracer):
        return value
    v = _real_scalar(name, value, "a finite number > 0")
    if v <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return v


def check_nonnegative(name: str, value: Any) -> float:
    """Return ``value`` as a float, or raise ``ValueError`` unless it is finite and >= 0."""
    v = _real_scalar(name, value, "a finite number >= 0")
    if v < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return v


def check_probability(name: str, value: Any, *, allow_one: bool = True) -> float:
    """Return ``value`` as a float, or raise ``ValueError`` unless it lies in [0, 1]
    (``[0, 1)`` with ``allow_one=False``)."""
    interval = "[0, 1]" if allow_one else "[0, 1)"
    v = _real_scalar(name, value, f"a number in {interval}")
    if v < 0 or v > 1 or (not allow_one and v == 1) or math.isnan(v):
        raise ValueError(f"{name} must be a number in {interval}, got {value!r}")
    return v


def as_key(seed: Any, name: str = "seed") -> jax.Array:
    """The one ``seed -> key`` conversion: a non-negative integer, a typed
    ``jax.random.key`` or a raw ``uint32[2]`` key becomes a typed key.

    Raises
    ------
    TypeError
        For anything else.
    """
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        if seed < 0:
            raise ValueError(f"{name} must be a non-negative integer or a jax.random key, "
                             f"got {seed!r}")
        # one compiled dispatch instead of the eager ops of jax.random.key (0.3 ms);
        # jit takes the seed as int32, so larger seeds keep the eager path
        return _key_of(int(seed)) if seed < 2**31 else jax.random.key(int(seed))
    if isinstance(seed, jax.Array) and jnp.issubdtype(seed.dtype, jax.dtypes.prng_key):
        return seed
    if isinstance(seed, (jax.Array, np.ndarray)) and seed.dtype == np.uint32 and seed.shape == (2,):
        return jax.random.wrap_key_data(jnp.asarray(seed))
    raise TypeError(f"{name} must be an integer or a jax.random key, got {seed!r}")
