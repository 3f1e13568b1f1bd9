"""MCLMC's own warm-up: BlackJAX's ``mclmc_find_L_and_step_size``, run once before sampling."""

from __future__ import annotations

import dataclasses
import math
from functools import partial
from typing import Any, ClassVar

import blackjax
import jax
import jax.numpy as jnp
from blackjax.adaptation.mclmc_adaptation import MCLMCAdaptationState
from jax.flatten_util import ravel_pytree

from ebm_ppl._types import LogDensityFn, PRNGKey
from ebm_ppl.adaptation.base import Kernel, Warmup

__all__ = ["MCLMCWarmup", "mclmc_warmup", "mclmc_warmup_chains"]


@dataclasses.dataclass(frozen=True)
class MCLMCWarmup(Warmup):
    """BlackJAX's MCLMC tuner, run once over the warm-up (:func:`mclmc`)."""

    name: ClassVar[str] = "mclmc"
    tunes_once: ClassVar[bool] = True

    def tune(self, kernels: Kernel, rng_key: PRNGKey, states: Any, pot: Any,
             num_warmup: int) -> tuple[Any, Kernel]:
        """:func:`mclmc_warmup_chains` (``num_warmup`` a Python integer)."""
        return mclmc_warmup_chains(kernels, rng_key, states, pot, num_warmup)

    def tune_one(self, kernel: Kernel, rng_key: PRNGKey, state: Any,
                 logdensity_fn: LogDensityFn, num_warmup: int) -> tuple[Any, Kernel]:
        """:func:`mclmc_warmup` of one chain."""
        return mclmc_warmup(kernel, rng_key, state, logdensity_fn, num_warmup)


#: BlackJAX's default fractions of ``mclmc_find_L_and_step_size``'s three stages; the
#: second stage is a third longer with diagonal preconditioning.
_MCLMC_FRACTIONS = (0.1, 0.1 * 4 / 3, 0.1)


def mclmc_warmup(
    kernel: Kernel, rng_key: PRNGKey, state: Any, logdensity_fn: LogDensityFn, num_warmup: int
) -> tuple[Any, Kernel]:
    r"""Tune an MCLMC kernel with BlackJAX's ``mclmc_find_L_and_step_size`` (one chain).

    The step size is set so that the energy error per dimension has variance
    :math:`5 \cdot 10^{-4}`, a diagonal preconditioner from the draws' variances, and
    :math:`L` from the effective sample size (Robnik et al. 2023). The three stages use
    about ``num_warmup`` integrator steps in all (BlackJAX's fractions 0.1, 0.1, 0.1 of
    ``num_warmup / 0.33``). ``num_warmup`` must be a Python integer (it sets scan
    lengths).

    Returns
    -------
    (state, kernel)
        The state after tuning and the kernel with the tuned ``L``, ``step_size`` and
        ``inverse_mass_matrix``.
    """
    static = dict(kernel.static_parameters)
    integrator = static.get("integrator", blackjax.mcmc.integrators.isokinetic_mclachlan)
    flat, _ = ravel_pytree(state.position)
    imm = kernel.parameters["inverse_mass_matrix"]
    imm = jnp.ones(flat.shape, flat.dtype) if imm is None else jnp.broadcast_to(imm, flat.shape)
    params = MCLMCAdaptationState(kernel.parameters["L"], kernel.parameters["step_size"], imm)
    num_steps = max(int(math.ceil(num_warmup / sum(_MCLMC_FRACTIONS))), 1)
    state, params, _ = blackjax.mclmc_find_L_and_step_size(
        blackjax.mcmc.mclmc.build_kernel(integrator=integrator), num_steps, state, rng_key,
        logdensity_fn=logdensity_fn, params=params,
    )
    return state, kernel.replace(L=params.L, step_size=params.step_size,
                                 inverse_mass_matrix=params.inverse_mass_matrix)


@partial(jax.jit, static_argnames=("num_warmup",))
def mclmc_warmup_chains(
    kernels: Kernel, rng_key: PRNGKey, states: Any, pot: Any, num_warmup: int
) -> tuple[Any, Kernel]:
    """:func:`mclmc_warmup` of every chain (leading chain axis on ``kernels`` and
    ``states``; one independent key per chain)."""
    num_chains = jax.tree.leaves(states)[0].shape[0]
    keys = jax.random.split(rng_key, num_chains)

    def one(kernel: Kernel, key: PRNGKey, state: Any) -> tuple[Any, Kernel]:
        state, kernel = mclmc_warmup(kernel, key, state, pot.logdensity_fn, num_warmup)
        return state, kernel

    states, kernels = jax.vmap(one)(kernels, keys, states)
    return states, kernels
