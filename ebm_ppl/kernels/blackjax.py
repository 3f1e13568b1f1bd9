"""Adapters over BlackJAX's MALA, HMC, NUTS and Barker kernels.

The transitions are BlackJAX's own; the adapters only bind hyper-parameters into the
ebm_ppl :class:`~ebm_ppl.kernels.base.Kernel` interface and normalise the info:
``acceptance_rate`` and ``is_divergent`` are always present, and a proposal whose log
density or gradient is NaN/inf (BlackJAX then silently rejects it, reporting a NaN or zero
acceptance) is reported as divergent with acceptance 0.
"""

from __future__ import annotations

from typing import NamedTuple

import blackjax
import blackjax.mcmc.diffusions as diffusions
import blackjax.mcmc.proposal as proposal
import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from ebm_ppl._tree import tree_all_finite
from ebm_ppl._types import Array, ArrayTree, LogDensityFn, PRNGKey
from ebm_ppl._validation import check_int, check_positive
from ebm_ppl.kernels.base import Kernel

__all__ = ["mala", "hmc", "nuts", "barker", "GradientInfo", "HMCInfo", "NUTSInfo"]

_MALA = blackjax.mcmc.mala.build_kernel()  # reference for tests: same draws as _mala_kernel
_BARKER = blackjax.mcmc.barker.build_kernel()
_HMC = blackjax.mcmc.hmc.build_kernel()
_NUTS = blackjax.mcmc.nuts.build_kernel()


class GradientInfo(NamedTuple):
    """Info of MALA and Barker."""

    acceptance_rate: Array
    is_accepted: Array
    is_divergent: Array


class HMCInfo(NamedTuple):
    """Info of HMC (``energy`` is the Hamiltonian at the returned state)."""

    acceptance_rate: Array
    is_accepted: Array
    is_divergent: Array
    energy: Array
    num_integration_steps: Array


class NUTSInfo(NamedTuple):
    """Info of NUTS (``tree_depth`` counts trajectory doublings)."""

    acceptance_rate: Array
    is_divergent: Array
    energy: Array
    num_integration_steps: Array
    tree_depth: Array


def _safe_rate(rate: Array) -> tuple[Array, Array]:
    """Acceptance rate in [0, 1] (NUTS' trajectory average can exceed 1 by rounding)
    and whether it was non-finite."""
    finite = jnp.isfinite(rate)
    return jnp.clip(jnp.where(finite, rate, 0.0), 0.0, 1.0), ~finite


def _default_imm(position: ArrayTree, inverse_mass_matrix: Array | None) -> Array:
    if inverse_mass_matrix is not None:
        return inverse_mass_matrix
    flat, _ = ravel_pytree(position)
    return jnp.ones(flat.shape, flat.dtype)


def _mala_transition_energy(state, new_state, step_size):
    """BlackJAX's MALA transition energy ``-log p(x') + |x - x' - h∇log p(x')|²/(4h)``."""
    theta = jax.tree.map(
        lambda x, new_x, g: x - new_x - step_size * g,
        state.position, new_state.position, new_state.logdensity_grad,
    )
    theta_dot = sum(jnp.sum(t * t) for t in jax.tree.leaves(theta))
    return -new_state.logdensity + 0.25 * (1.0 / step_size) * theta_dot


_MALA_RATIO = proposal.compute_asymmetric_acceptance_ratio(_mala_transition_energy)


def _mala_kernel(rng_key: PRNGKey, state, logdensity_fn: LogDensityFn, step_size: Array):
    """BlackJAX's MALA step, assembled from its parts so that a proposal with a
    non-finite log density or gradient is reported as divergent (BlackJAX's own kernel
    silently turns it into acceptance 0). Same keys, same draws as ``blackjax.mala``."""
    key_integrator, key_rmh = jax.random.split(rng_key)
    integrator = diffusions.overdamped_langevin(jax.value_and_grad(logdensity_fn))
    new_state = blackjax.mcmc.mala.MALAState(*integrator(key_integrator, state, step_size))
    bad = ~jnp.isfinite(new_state.logdensity) | ~tree_all_finite(new_state.logdensity_grad)
    log_p_accept = jnp.where(bad, -jnp.inf, _MALA_RATIO(state, new_state, step_size=step_size))
    state, (is_accepted, rate, _) = proposal.static_binomial_sampling(
        key_rmh, log_p_accept, state, new_state
    )
    return state, GradientInfo(rate, is_accepted, bad)


def _barker_kernel(
    rng_key: PRNGKey, state, logdensity_fn: LogDensityFn, step_size: Array, inverse_mass_matrix
):
    imm = _default_imm(state.position, inverse_mass_matrix)
    state, info = _BARKER(rng_key, state, logdensity_fn, step_size, imm)
    rate, bad = _safe_rate(info.acceptance_rate)
    return state, GradientInfo(rate, info.is_accepted, bad)


def _hmc_kernel(
    rng_key: PRNGKey,
    state,
    logdensity_fn: LogDensityFn,
    step_size: Array,
    inverse_mass_matrix,
    num_integration_steps: int,
):
    imm = _default_imm(state.position, inverse_mass_matrix)
    state, info = _HMC(rng_key, state, logdensity_fn, step_size, imm, num_integration_steps)
    rate, bad = _safe_rate(info.acceptance_rate)
    return state, HMCInfo(
        rate,
        info.is_accepted,
        info.is_divergent | bad,
        info.energy,
        jnp.asarray(info.num_integration_steps),
    )


def _nuts_kernel(
    rng_key: PRNGKey,
    state,
    logdensity_fn: LogDensityFn,
    step_size: Array,
    inverse_mass_matrix,
    max_num_doublings: int,
):
    imm = _default_imm(state.position, inverse_mass_matrix)
    state, info = _NUTS(
        rng_key, state, logdensity_fn, step_size, imm, max_num_doublings=max_num_doublings
    )
    rate, bad = _safe_rate(info.acceptance_rate)
    return state, NUTSInfo(
        rate,
        info.is_divergent | bad,
        info.energy,
        info.num_integration_steps,
        info.num_trajectory_expansions,
    )


def _float(x: float) -> Array:
    return jnp.asarray(x, dtype=jnp.result_type(float))


def mala(step_size: float, *, target_acceptance_rate: float = 0.574) -> Kernel:
    r"""Metropolis-adjusted Langevin (BlackJAX ``blackjax.mala``).

    .. math:: x' = x + h \nabla \log p(x) + \sqrt{2h}\,\xi, \text{ then MH accept/reject}

    Exact for any :math:`h`; warm-up adapts :math:`h` by dual averaging towards
    ``target_acceptance_rate`` (0.574 is optimal in high dimension, Roberts & Rosenthal
    1998).
    """
    check_positive("step_size", step_size)
    return Kernel(
        name="mala",
        init_fn=blackjax.mcmc.mala.init,
        kernel_fn=_mala_kernel,
        parameters={"step_size": _float(step_size)},
        adaptation="step_size",
        target_acceptance_rate=target_acceptance_rate,
    )


def barker(step_size: float, *, target_acceptance_rate: float = 0.574) -> Kernel:
    """Barker's proposal with MH correction (BlackJAX ``blackjax.barker``)."""
    check_positive("step_size", step_size)
    return Kernel(
        name="barker",
        init_fn=blackjax.mcmc.barker.init,
        kernel_fn=_barker_kernel,
        parameters={"step_size": _float(step_size), "inverse_mass_matrix": None},
        adaptation="window",
        target_acceptance_rate=target_acceptance_rate,
    )


def hmc(
    step_size: float,
    num_integration_steps: int,
    *,
    inverse_mass_matrix: ArrayTree | None = None,
    target_acceptance_rate: float = 0.8,
) -> Kernel:
    r"""Hamiltonian Monte Carlo with a fixed number of leapfrog steps (BlackJAX).

    Warm-up (in :func:`ebm_ppl.sample`) adapts the step size and a diagonal inverse mass
    matrix with Stan's window adaptation.

    Parameters
    ----------
    step_size
        Leapfrog step size :math:`\epsilon > 0`.
    num_integration_steps
        Number of leapfrog steps :math:`L \geq 1` per transition.
    inverse_mass_matrix
        Diagonal (1-D) or dense (2-D) inverse mass matrix; identity when None.
    """
    static = ("num_integration_steps", check_int("num_integration_steps", num_integration_steps, 1))
    return _hamiltonian("hmc", _hmc_kernel, step_size, inverse_mass_matrix, static,
                        target_acceptance_rate)


def nuts(
    step_size: float,
    *,
    max_num_doublings: int = 10,
    inverse_mass_matrix: ArrayTree | None = None,
    target_acceptance_rate: float = 0.8,
) -> Kernel:
    """The No-U-Turn sampler (BlackJAX's iterative multinomial NUTS).

    Parameters
    ----------
    step_size
        Leapfrog step size > 0 (adapted during warm-up by :func:`ebm_ppl.sample`).
    max_num_doublings
        Maximum tree depth (trajectory of at most ``2**max_num_doublings - 1`` steps).
    inverse_mass_matrix
        Diagonal or dense inverse mass matrix; identity when None.

    References
    ----------
    Hoffman & Gelman (2014), https://arxiv.org/abs/1111.4246
    """
    static = ("max_num_doublings", check_int("max_num_doublings", max_num_doublings, 1))
    return _hamiltonian("nuts", _nuts_kernel, step_size, inverse_mass_matrix, static,
                        target_acceptance_rate)


def _hamiltonian(
    name: str, kernel_fn, step_size: float, inverse_mass_matrix: ArrayTree | None,
    static: tuple[str, int], target_acceptance_rate: float,
) -> Kernel:
    """HMC-family kernel (BlackJAX's HMC state, window adaptation of step size and mass)."""
    check_positive("step_size", step_size)
    return Kernel(
        name=name,
        init_fn=blackjax.mcmc.hmc.init,
        kernel_fn=kernel_fn,
        parameters={
            "step_size": _float(step_size),
            "inverse_mass_matrix": None
            if inverse_mass_matrix is None
            else jnp.asarray(inverse_mass_matrix),
        },
        static_parameters=(static,),
        adaptation="window",
        target_acceptance_rate=target_acceptance_rate,
    )
