"""Unadjusted Langevin algorithm with an explicit temperature (own code)."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from ebm_ppl._tree import tree_all_finite, tree_normal_like
from ebm_ppl._types import Array, ArrayTree, LogDensityFn, PRNGKey
from ebm_ppl._validation import check_positive
from ebm_ppl.kernels.base import Kernel

__all__ = ["ULAState", "ULAInfo", "ula", "ula_init", "ula_kernel"]


class ULAState(NamedTuple):
    """Position with its cached log density and gradient."""

    position: ArrayTree
    logdensity: Array
    logdensity_grad: ArrayTree


class ULAInfo(NamedTuple):
    """``acceptance_rate`` is 1 (0 for a rejected non-finite step); ``is_divergent``
    flags a step whose new position, log density or gradient was not finite (the chain
    then keeps its previous state)."""

    acceptance_rate: Array
    is_divergent: Array


def ula_init(position: ArrayTree, logdensity_fn: LogDensityFn) -> ULAState:
    """State at ``position``."""
    logdensity, grad = jax.value_and_grad(logdensity_fn)(position)
    return ULAState(position, logdensity, grad)


def ula_kernel(
    rng_key: PRNGKey,
    state: ULAState,
    logdensity_fn: LogDensityFn,
    step_size: Array,
    temperature: Array,
) -> tuple[ULAState, ULAInfo]:
    """One ULA step; see :func:`ula`."""
    noise = tree_normal_like(rng_key, state.position)
    scale = jnp.sqrt(2.0 * step_size * temperature)
    position = jax.tree.map(
        lambda x, g, z: x + step_size * g + scale * z, state.position, state.logdensity_grad, noise
    )
    logdensity, grad = jax.value_and_grad(logdensity_fn)(position)
    ok = jnp.isfinite(logdensity) & tree_all_finite(grad) & tree_all_finite(position)
    proposed = ULAState(position, logdensity, grad)
    new_state = jax.tree.map(lambda new, old: jnp.where(ok, new, old), proposed, state)
    info = ULAInfo(acceptance_rate=ok.astype(jnp.result_type(logdensity)), is_divergent=~ok)
    return new_state, info


def ula(step_size: float, temperature: float = 1.0) -> Kernel:
    r"""Unadjusted Langevin algorithm (no accept/reject step).

    .. math::

        x_{k+1} = x_k + h\,\nabla \log p(x_k) + \sqrt{2 h T}\, \xi_k,
        \qquad \xi_k \sim \mathcal N(0, I).

    With ``log p = -E`` its stationary law tends to :math:`\propto \exp(-E/T)` as
    :math:`h \to 0`. For finite :math:`h` the law is biased: on
    :math:`E(x) = \tfrac12 (x-\mu)^\top H (x-\mu)` the chain has mean :math:`\mu` and
    covariance :math:`T\,V \operatorname{diag}\!\big(2 / (\lambda(2 - h\lambda))\big) V^\top`
    (eigen-decomposition :math:`H = V \Lambda V^\top`), stable only for
    :math:`h < 2/\lambda_{\max}`. A Langevin update written with noise scale
    :math:`\varepsilon` and drift :math:`\varepsilon^2` (seed 002) is this kernel with
    :math:`h = \varepsilon^2, T = 1/2`: it samples :math:`\exp(-2U)`.

    Parameters
    ----------
    step_size
        :math:`h > 0`.
    temperature
        :math:`T > 0`; multiplies the noise variance (the potential's own temperature,
        if any, composes with it).

    Returns
    -------
    Kernel
        ``state.position`` is kept and ``info.is_divergent`` set when a step produces a
        non-finite position, log density or gradient.

    References
    ----------
    Roberts & Tweedie (1996), *Exponential convergence of Langevin distributions and
    their discrete approximations*, Bernoulli 2(4).
    Durmus & Moulines (2017), https://arxiv.org/abs/1507.05021

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> kernel = ula(0.1)
    >>> logdensity = lambda x: -0.5 * jnp.sum(x**2)
    >>> state = kernel.init(jnp.zeros(2), logdensity)
    >>> state, info = kernel.step(jax.random.key(0), state, logdensity)
    """
    check_positive("step_size", step_size)
    check_positive("temperature", temperature)
    return Kernel(
        name="ula",
        init_fn=ula_init,
        kernel_fn=ula_kernel,
        parameters={
            "step_size": jnp.asarray(step_size, dtype=jnp.result_type(float)),
            "temperature": jnp.asarray(temperature, dtype=jnp.result_type(float)),
        },
        exact=False,  # no accept/reject: its stationary law is biased by the step size
    )
