"""Robbins–Monro warm-up of a random-walk proposal's scale."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, NamedTuple

import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from ebm_ppl._types import Array, ArrayLike, ArrayTree
from ebm_ppl.adaptation.base import Kernel, Warmup, counters

__all__ = ["RobbinsMonroState", "RobbinsMonroWarmup"]

#: Robbins–Monro gain exponent for random-walk scale adaptation: γ_t = t^{-0.6}
#: satisfies Σγ = ∞, Σγ² < ∞ (Andrieu & Thoms 2008).
_RM_EXPONENT = 0.6


class RobbinsMonroState(NamedTuple):
    """State of :func:`robbins_monro`: the log proposal scale, count, length."""

    log_scale: Array
    count: Array
    num_warmup: Array


@dataclasses.dataclass(frozen=True)
class RobbinsMonroWarmup(Warmup):
    """Robbins–Monro adaptation of a random-walk proposal's scale (:func:`robbins_monro`).
    The kernel's ``proposal`` parameter must have a ``scale`` (``kernels.random_walk``)."""

    name: ClassVar[str] = "scale"
    target_acceptance_rate: float = 0.234

    def init(self, kernel: Kernel, position: ArrayTree, num_warmup: ArrayLike
             ) -> RobbinsMonroState:
        flat, _ = ravel_pytree(position)
        scale = _proposal(kernel).scale
        if scale is None:
            raise ValueError(f"robbins_monro adapts a proposal scale; kernel {kernel.name!r} "
                             "has none (use kernels.random_walk, or warmup=adaptation.none())")
        return RobbinsMonroState(jnp.log(jnp.asarray(scale, flat.dtype)),
                                 *counters(num_warmup))

    def _step(self, kernel, state, position, acceptance_rate, stats):
        gain = (state.count + 1).astype(state.log_scale.dtype) ** -_RM_EXPONENT
        log_scale = state.log_scale + gain * (acceptance_rate - self.target_acceptance_rate)
        proposal = _proposal(kernel).with_scale(jnp.exp(log_scale))
        return kernel.replace(proposal=proposal), state._replace(log_scale=log_scale)


def _proposal(kernel: Kernel) -> Any:
    proposal = kernel.parameters.get("proposal")
    if proposal is None:
        raise ValueError(f"robbins_monro adapts a proposal scale; kernel {kernel.name!r} has "
                         "no proposal")
    return proposal
