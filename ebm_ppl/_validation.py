"""Argument checks shared by the public entry points (one sentence per error)."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

__all__ = ["check_int", "check_positive"]


def check_int(name: str, value: Any, minimum: int) -> int:
    """Return ``value`` as an int, or raise ``ValueError`` unless it is an integer
    ``>= minimum`` (booleans are refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_positive(name: str, value: Any) -> None:
    """Raise ``ValueError`` unless ``value`` is a finite scalar > 0 (tracers pass)."""
    if isinstance(value, jax.core.Tracer):
        return
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}") from None
    if arr.shape != () or not np.isfinite(arr) or arr <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
