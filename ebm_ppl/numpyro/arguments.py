"""NumPyro's kernel arguments: range checks and what each means for a BlackJAX
algorithm (used by :mod:`ebm_ppl.numpyro.kernels`)."""

from __future__ import annotations

from typing import Any

import jax

from ebm_ppl import adaptation
from ebm_ppl.adaptation import NoWarmup, Warmup, WindowWarmup

__all__ = ["is_traced", "check_target", "tree_depth", "reject_mass_arguments",
           "numpyro_warmup"]


def is_traced(value: Any) -> bool:
    """Whether ``value`` is a JAX tracer (its range cannot be checked in Python)."""
    return isinstance(value, jax.core.Tracer)


def check_target(target: Any) -> None:
    """Raise unless ``target_accept_prob`` is None, traced, or in (0, 1)."""
    if target is None or is_traced(target):
        return
    if not (isinstance(target, (int, float)) and 0.0 < float(target) < 1.0):
        raise ValueError(f"target_accept_prob must be in (0, 1), got {target!r}")


def tree_depth(max_tree_depth: Any, max_num_doublings: Any) -> int | tuple[int, int]:
    """NUTS' depth (default 10) from NumPyro's or BlackJAX's name, or a (warmup,
    sampling) pair."""
    if max_tree_depth is not None and max_num_doublings is not None:
        raise ValueError("give max_tree_depth or max_num_doublings (the same thing), not both")
    depth = max_tree_depth if max_tree_depth is not None else max_num_doublings
    depth = 10 if depth is None else depth
    pair = isinstance(depth, (tuple, list))
    values = tuple(depth) if pair else (depth,)
    if len(values) not in (1, 2) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in values
    ):
        raise ValueError(
            "max_tree_depth must be an integer >= 1 or a (warmup, sampling) pair of them, "
            f"got {depth!r}"
        )
    return values if pair else values[0]


def reject_mass_arguments(name: str, inverse_mass_matrix: Any, adapt_mass_matrix: Any,
                           dense_mass: Any, regularize_mass_matrix: Any) -> None:
    """Raise if a mass-matrix argument is given to an algorithm without one."""
    given = [arg for arg, value in (("inverse_mass_matrix", inverse_mass_matrix is not None),
                                    ("adapt_mass_matrix", bool(adapt_mass_matrix)),
                                    ("dense_mass", bool(dense_mass)),
                                    ("regularize_mass_matrix", not regularize_mass_matrix))
             if value]
    if given:
        raise ValueError(
            f"{given[0]} has no meaning for {name}: BlackJAX's {name} takes no mass matrix "
            "(use 'mala', 'barker', 'hmc' or 'nuts' for a preconditioned sampler)"
        )


def numpyro_warmup(default: Warmup, adapt_step_size: bool, adapt_mass_matrix: bool, *,
                   regularize: bool = True) -> Warmup:
    """The warm-up for NumPyro's adaptation flags, from the kernel's ``default``:
    window adaptation keeps the mass matrix only with ``adapt_mass_matrix`` (and the step
    size only with ``adapt_step_size``); any other warm-up runs only with
    ``adapt_step_size``. ``regularize`` is NumPyro's ``regularize_mass_matrix``."""
    target = default.target_acceptance_rate
    if isinstance(default, WindowWarmup):
        if adapt_mass_matrix:
            return adaptation.window(target, regularize=regularize,
                                     adapt_step_size=adapt_step_size)
        return adaptation.dual_averaging(target) if adapt_step_size else NoWarmup(target)
    return default if adapt_step_size else NoWarmup(target)
