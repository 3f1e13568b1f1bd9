"""Adapters over BlackJAX's MALA, HMC, NUTS and Barker kernels.

The transitions are BlackJAX's own; the adapters only bind hyper-parameters into the
ebm_ppl :class:`~ebm_ppl.kernels.base.Kernel` interface and normalise the info:
``acceptance_rate`` and ``is_divergent`` are always present, and a proposal whose log
density or gradient is NaN/inf (BlackJAX then silently rejects it, reporting a NaN or zero
acceptance) is reported as divergent with acceptance 0.
"""

from __future__ import annotations

import blackjax
import blackjax.mcmc.diffusions as diffusions
import blackjax.mcmc.proposal as proposal
import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from ebm_ppl import adaptation
from ebm_ppl._tree import tree_all_finite
from ebm_ppl._types import Array, ArrayLike, LogDensityFn, PRNGKey
from ebm_ppl._validation import check_int, check_positive, check_probability
from ebm_ppl.kernels.base import Kernel
from ebm_ppl.kernels.info import GradientInfo, HMCInfo, NUTSInfo

__all__ = ["mala", "hmc", "nuts", "barker", "GradientInfo", "HMCInfo", "NUTSInfo"]

_BARKER = blackjax.mcmc.barker.build_kernel()
_HMC = blackjax.mcmc.hmc.build_kernel()
_NUTS = blackjax.mcmc.nuts.build_kernel()


def _safe_rate(rate: Array) -> tuple[Array, Array]:
    """Acceptance rate in [0, 1] (NUTS' trajectory average can exceed 1 by rounding)
    and whether it was non-finite."""
    finite = jnp.isfinite(rate)
    return jnp.clip(jnp.where(finite, rate, 0.0), 0.0, 1.0), ~finite


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


def _preconditioned_mala_kernel(
    rng_key: PRNGKey, state, logdensity_fn: LogDensityFn, step_size: Array, inverse_mass_matrix
):
    r"""MALA preconditioned by :math:`C` = ``inverse_mass_matrix`` (diagonal or dense):

    .. math::

        x' = x + h C \nabla \log p(x) + \sqrt{2h}\, C^{1/2} \xi, \qquad
        \log \frac{q(x \mid x')}{q(x' \mid x)} =
        \frac{\lVert \xi \rVert^2}{2} - \frac{1}{4h}
        \lVert C^{-1/2} (x - x' - h C \nabla \log p(x')) \rVert^2,

    with :math:`C^{1/2}` the Cholesky factor (dense) or the elementwise root (diagonal);
    then the Metropolis–Hastings accept/reject. A proposal with a non-finite log
    density or gradient is reported as divergent, as in :func:`_mala_kernel`.
    """
    key_noise, key_rmh = jax.random.split(rng_key)
    flat, unravel = ravel_pytree(state.position)
    grad, _ = ravel_pytree(state.logdensity_grad)
    if jnp.ndim(inverse_mass_matrix) == 2:
        root = jnp.linalg.cholesky(inverse_mass_matrix)

        def apply(v):
            return inverse_mass_matrix @ v

        def scale(z):
            return root @ z

        def whiten(d):
            return jax.scipy.linalg.solve_triangular(root, d, lower=True)
    else:
        root = jnp.sqrt(inverse_mass_matrix)

        def apply(v):
            return inverse_mass_matrix * v

        def scale(z):
            return root * z

        def whiten(d):
            return d / root
    noise = jax.random.normal(key_noise, flat.shape, flat.dtype)
    new_flat = flat + step_size * apply(grad) + jnp.sqrt(2 * step_size) * scale(noise)
    new_position = unravel(new_flat)
    logdensity, new_grad = jax.value_and_grad(logdensity_fn)(new_position)
    new_state = blackjax.mcmc.mala.MALAState(new_position, logdensity, new_grad)
    back = whiten(flat - new_flat - step_size * apply(ravel_pytree(new_grad)[0]))
    log_ratio = (logdensity - state.logdensity + 0.5 * jnp.sum(noise * noise)
                 - jnp.sum(back * back) / (4 * step_size))
    bad = ~jnp.isfinite(logdensity) | ~tree_all_finite(new_grad)
    log_p_accept = jnp.where(bad | jnp.isnan(log_ratio), -jnp.inf, log_ratio)
    state, (is_accepted, rate, _) = proposal.static_binomial_sampling(
        key_rmh, log_p_accept, state, new_state
    )
    return state, GradientInfo(rate, is_accepted, bad)


def barker_metric_argument(inverse_mass_matrix: Array) -> Array:
    r"""The matrix to pass as ``inverse_mass_matrix`` to BlackJAX 1.7's Barker kernel so
    that it preconditions with :math:`M^{-1}` = ``inverse_mass_matrix``.

    BlackJAX's ``barker_proposal`` scales its proposal as if its argument were the mass
    matrix :math:`M`, not :math:`M^{-1}` (measured: on :math:`\mathcal N(0, \Sigma)` it
    mixes as on a standard normal when given :math:`\Sigma^{-1}`, and worse than with the
    identity when given :math:`\Sigma`; HMC and NUTS follow the documented convention).
    The chain is exact either way (MH correction); only the preconditioning is at stake,
    and window adaptation, which estimates :math:`M^{-1} \approx \Sigma`, made it
    twice as bad. So the inverse is passed: ``1 / v`` for a diagonal, ``inv`` for a
    dense matrix.
    """
    if jnp.ndim(inverse_mass_matrix) == 2:
        return jnp.linalg.inv(inverse_mass_matrix)
    return 1.0 / inverse_mass_matrix


def _barker_kernel(
    rng_key: PRNGKey, state, logdensity_fn: LogDensityFn, step_size: Array, inverse_mass_matrix
):
    state, info = _BARKER(rng_key, state, logdensity_fn, step_size,
                          barker_metric_argument(inverse_mass_matrix))
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
    state, info = _HMC(rng_key, state, logdensity_fn, step_size, inverse_mass_matrix,
                       num_integration_steps)
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
    state, info = _NUTS(
        rng_key, state, logdensity_fn, step_size, inverse_mass_matrix,
        max_num_doublings=max_num_doublings,
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


def mala(
    step_size: float,
    *,
    inverse_mass_matrix: ArrayLike | None = None,
    dense_mass: bool = False,
    adapt_mass_matrix: bool | None = None,
    target_acceptance_rate: float = 0.574,
) -> Kernel:
    r"""Metropolis-adjusted Langevin (BlackJAX ``blackjax.mala``), optionally
    preconditioned.

    .. math:: x' = x + h C \nabla \log p(x) + \sqrt{2h}\, C^{1/2} \xi,
        \text{ then MH accept/reject}

    with :math:`C = I` (BlackJAX's MALA, the default) or :math:`C` the inverse mass
    matrix. Exact for any :math:`h` and :math:`C`; warm-up adapts :math:`h` by dual
    averaging towards ``target_acceptance_rate`` (0.574 is optimal in high dimension,
    Roberts & Rosenthal 1998), and, when preconditioned, :math:`C` by Stan's window
    adaptation as for :func:`hmc` (NumPyro's ``BarkerMH`` does the same for Barker).

    Parameters
    ----------
    step_size
        Step size :math:`h > 0`.
    inverse_mass_matrix
        Diagonal ``(d,)`` or dense ``(d, d)`` preconditioner :math:`C`; with
        adaptation it is the warm-up's starting point.
    dense_mass
        Adapt a dense :math:`C` (implied by a 2-D ``inverse_mass_matrix``).
    adapt_mass_matrix
        Whether warm-up adapts :math:`C`. None (default): yes when ``dense_mass`` or
        ``inverse_mass_matrix`` is given, otherwise plain MALA with :math:`C = I` and
        only the step size adapted.
    target_acceptance_rate
        Target of the step-size adaptation.
    """
    check_positive("step_size", step_size)
    if adapt_mass_matrix is None:
        adapt_mass_matrix = bool(dense_mass) or inverse_mass_matrix is not None
    if adapt_mass_matrix or dense_mass or inverse_mass_matrix is not None:
        return _with_mass_matrix("mala", blackjax.mcmc.mala.init, _preconditioned_mala_kernel,
                                 step_size, (), inverse_mass_matrix, dense_mass,
                                 adapt_mass_matrix, target_acceptance_rate)
    check_probability("target_acceptance_rate", target_acceptance_rate)
    return Kernel(
        name="mala",
        init_fn=blackjax.mcmc.mala.init,
        kernel_fn=_mala_kernel,
        parameters={"step_size": _float(step_size)},
        default_warmup=adaptation.dual_averaging(target_acceptance_rate),
    )


def barker(
    step_size: float,
    *,
    inverse_mass_matrix: ArrayLike | None = None,
    dense_mass: bool = False,
    adapt_mass_matrix: bool = True,
    target_acceptance_rate: float = 0.574,
) -> Kernel:
    """Barker's proposal with MH correction (BlackJAX ``blackjax.barker``).

    Mass-matrix options as in :func:`hmc`; warm-up tunes the step size towards
    ``target_acceptance_rate`` (0.574, as MALA).

    References
    ----------
    Livingstone & Zanella (2022), https://arxiv.org/abs/1908.11812
    """
    return _with_mass_matrix("barker", blackjax.mcmc.barker.init, _barker_kernel, step_size,
                             (), inverse_mass_matrix, dense_mass, adapt_mass_matrix,
                             target_acceptance_rate)


def hmc(
    step_size: float,
    num_integration_steps: int,
    *,
    inverse_mass_matrix: ArrayLike | None = None,
    dense_mass: bool = False,
    adapt_mass_matrix: bool = True,
    target_acceptance_rate: float = 0.8,
) -> Kernel:
    r"""Hamiltonian Monte Carlo with a fixed number of leapfrog steps (BlackJAX).

    Warm-up (in :func:`ebm_ppl.sample`) adapts the step size and the inverse mass matrix
    with Stan's window adaptation (:mod:`ebm_ppl.adaptation`).

    Parameters
    ----------
    step_size
        Leapfrog step size :math:`\epsilon > 0`.
    num_integration_steps
        Number of leapfrog steps :math:`L \geq 1` per transition.
    inverse_mass_matrix
        Diagonal (1-D, ``(d,)``) or dense (2-D, ``(d, d)``) inverse mass matrix
        :math:`M^{-1}` (kinetic energy :math:`p^\top M^{-1} p / 2`); the identity when
        None. With adaptation it is the starting point of the warm-up.
    dense_mass
        Adapt (and default to) a dense inverse mass matrix instead of a diagonal one, as
        NumPyro's ``dense_mass=True``. Implied by a 2-D ``inverse_mass_matrix``.
    adapt_mass_matrix
        Whether warm-up adapts the inverse mass matrix; when False only the step size
        is adapted (dual averaging) and ``inverse_mass_matrix`` is used unchanged.
    target_acceptance_rate
        Target of the step-size adaptation.
    """
    static = ("num_integration_steps", check_int("num_integration_steps", num_integration_steps, 1))
    return _with_mass_matrix("hmc", blackjax.mcmc.hmc.init, _hmc_kernel, step_size, (static,),
                             inverse_mass_matrix, dense_mass, adapt_mass_matrix,
                             target_acceptance_rate)


def nuts(
    step_size: float,
    *,
    max_num_doublings: int = 10,
    inverse_mass_matrix: ArrayLike | None = None,
    dense_mass: bool = False,
    adapt_mass_matrix: bool = True,
    target_acceptance_rate: float = 0.8,
) -> Kernel:
    """The No-U-Turn sampler (BlackJAX's iterative multinomial NUTS).

    Parameters
    ----------
    step_size
        Leapfrog step size > 0 (adapted during warm-up by :func:`ebm_ppl.sample`).
    max_num_doublings
        Maximum tree depth (trajectory of at most ``2**max_num_doublings - 1`` steps).
    inverse_mass_matrix, dense_mass, adapt_mass_matrix, target_acceptance_rate
        As in :func:`hmc`.

    References
    ----------
    Hoffman & Gelman (2014), https://arxiv.org/abs/1111.4246
    """
    static = ("max_num_doublings", check_int("max_num_doublings", max_num_doublings, 1))
    return _with_mass_matrix("nuts", blackjax.mcmc.hmc.init, _nuts_kernel, step_size,
                             (static,), inverse_mass_matrix, dense_mass, adapt_mass_matrix,
                             target_acceptance_rate)


def _check_inverse_mass_matrix(inverse_mass_matrix: ArrayLike | None) -> Array | None:
    if inverse_mass_matrix is None:
        return None
    imm = jnp.asarray(inverse_mass_matrix, dtype=jnp.result_type(float))
    square = imm.ndim == 2 and imm.shape[0] == imm.shape[1]
    if not (imm.ndim == 1 or square) or imm.size == 0:
        raise ValueError(
            "inverse_mass_matrix must be a 1-D diagonal (d,) or a square 2-D (d, d) "
            f"array, got shape {imm.shape}"
        )
    return imm


def _with_mass_matrix(
    name: str, init_fn, kernel_fn, step_size: float, static: tuple,
    inverse_mass_matrix: ArrayLike | None, dense_mass: bool, adapt_mass_matrix: bool,
    target_acceptance_rate: float,
) -> Kernel:
    """A kernel with a step size and an inverse mass matrix (HMC, NUTS, Barker): window
    adaptation of both, or of the step size only with ``adapt_mass_matrix=False``."""
    check_positive("step_size", step_size)
    check_probability("target_acceptance_rate", target_acceptance_rate)
    imm = _check_inverse_mass_matrix(inverse_mass_matrix)
    warmup = (adaptation.window(target_acceptance_rate) if adapt_mass_matrix
              else adaptation.dual_averaging(target_acceptance_rate))
    return Kernel(
        name=name,
        init_fn=init_fn,
        kernel_fn=kernel_fn,
        parameters={"step_size": _float(step_size), "inverse_mass_matrix": imm},
        static_parameters=static,
        default_warmup=warmup,
        dense_mass=bool(dense_mass) or (imm is not None and imm.ndim == 2),
    )
