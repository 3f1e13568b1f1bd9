"""The one transition-info contract of ebm_ppl kernels, and the one map to ArviZ stats.

Every kernel's ``step`` returns ``(state, info)`` where ``info`` satisfies
:class:`TransitionInfo` (as BlackJAX's ``base.py`` declares its protocols): it has at
least ``acceptance_rate`` (in [0, 1]; 1 for kernels without an accept step) and
``is_divergent``. Kernels that integrate a trajectory add ``energy`` and
``num_integration_steps``, NUTS adds ``tree_depth``, exchange kernels
``inner_acceptance_rate``, parallel tempering ``swap_acceptance``, ``replica_acceptance``
and ``round_trips``. The info types are fixed NamedTuples (never built at run time).

:func:`to_stats` is the one place where an info becomes ArviZ's ``sample_stats`` names
(``acceptance_rate``, ``diverging``, ``energy``, ``n_steps``, ``tree_depth``): used by
:func:`ebm_ppl.sample` and the NumPyro kernels alike.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol, runtime_checkable

import jax.numpy as jnp

from ebm_ppl._types import Array

__all__ = ["STAT_NAMES", "TransitionInfo", "Info", "TrajectoryInfo", "TreeInfo",
           "GradientInfo", "HMCInfo", "NUTSInfo", "to_stats", "info_from_fields"]

#: Info field -> ArviZ ``sample_stats`` name.
STAT_NAMES = {
    "acceptance_rate": "acceptance_rate",
    "is_divergent": "diverging",
    "energy": "energy",
    "num_integration_steps": "n_steps",
    "tree_depth": "tree_depth",
    "inner_acceptance_rate": "inner_acceptance_rate",
    # parallel tempering (kernels.tempering): per neighbour pair (NaN where no swap was
    # proposed that step), per replica, and the cumulative count of round trips
    "swap_acceptance": "swap_acceptance",
    "replica_acceptance": "replica_acceptance",
    "round_trips": "round_trips",
}


@runtime_checkable
class TransitionInfo(Protocol):
    """What every kernel's info has."""

    @property
    def acceptance_rate(self) -> Array: ...

    @property
    def is_divergent(self) -> Array: ...


class Info(NamedTuple):
    """Info of a kernel with no trajectory (ULA, MH, wrapped BlackJAX samplers)."""

    acceptance_rate: Array
    is_divergent: Array


class GradientInfo(NamedTuple):
    """Info of MALA and Barker."""

    acceptance_rate: Array
    is_accepted: Array
    is_divergent: Array


class TrajectoryInfo(NamedTuple):
    """Info of a wrapped BlackJAX integrator (``energy``: the Hamiltonian at the
    returned state)."""

    acceptance_rate: Array
    is_divergent: Array
    energy: Array
    num_integration_steps: Array


class HMCInfo(NamedTuple):
    """Info of HMC (``energy`` is the Hamiltonian at the returned state)."""

    acceptance_rate: Array
    is_accepted: Array
    is_divergent: Array
    energy: Array
    num_integration_steps: Array


class TreeInfo(NamedTuple):
    """Info of a tree-building integrator (NUTS; ``tree_depth`` counts doublings)."""

    acceptance_rate: Array
    is_divergent: Array
    energy: Array
    num_integration_steps: Array
    tree_depth: Array


#: NUTS' info is the tree info.
NUTSInfo = TreeInfo


def info_from_fields(values: dict[str, Array]) -> Info | TrajectoryInfo | TreeInfo:
    """The fixed info type for ``values`` (``acceptance_rate``, ``is_divergent`` and any of
    ``energy``, ``num_integration_steps``, ``tree_depth``); a trajectory field that is
    missing is NaN (``energy``) or 1 (``num_integration_steps``)."""
    base = {"acceptance_rate": values["acceptance_rate"], "is_divergent": values["is_divergent"]}
    extra = set(values) - set(base)
    if not extra:
        return Info(**base)
    dtype = jnp.result_type(float)
    trajectory = {
        "energy": values.get("energy", jnp.full((), jnp.nan, dtype)),
        "num_integration_steps": values.get("num_integration_steps", jnp.ones((), jnp.int32)),
    }
    if "tree_depth" in values:
        return TreeInfo(**base, **trajectory, tree_depth=values["tree_depth"])
    return TrajectoryInfo(**base, **trajectory)


def to_stats(info: Any) -> dict[str, Array]:
    """The ArviZ ``sample_stats`` of one transition's ``info`` (the fields it has, by
    :data:`STAT_NAMES`)."""
    return {stat: getattr(info, field) for field, stat in STAT_NAMES.items()
            if hasattr(info, field)}
