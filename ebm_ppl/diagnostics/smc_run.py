r"""One run of adaptive tempered SMC (:func:`tempered_smc`), the engine of
:func:`ebm_ppl.diagnostics.smc_log_z`: bisection of the next inverse temperature on the
ESS of the incremental weights, systematic resampling (BlackJAX), and our kernels as the
mutation step, in one ``lax.while_loop`` with fixed-size buffers.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from blackjax.smc import resampling, solver
from blackjax.smc.ess import ess_solver, log_ess

from ebm_ppl._types import Array, LogDensityFn, PRNGKey
from ebm_ppl.kernels.base import Kernel
from ebm_ppl.kernels.chains import run_chains

__all__ = ["SMCRun", "tempered_smc"]

#: Tolerance of the bisection on :math:`\log \mathrm{ESS}(\delta) - \log(\rho N)` (the
#: BlackJAX default of ``blackjax.smc.solver.dichotomy``): the ESS reached is within
#: 0.01 % of the target.
_BISECTION_TOL = 1e-4


class SMCRun(NamedTuple):
    r"""One adaptive tempered SMC run, all arrays (the output of :func:`tempered_smc`).

    Attributes
    ----------
    particles
        Final particles ``(num_particles, *shape)``, equally weighted draws of the target.
    logdensity
        ``logdensity`` of the final particles, ``(num_particles,)``.
    log_z
        :math:`\log \hat Z = \sum_t \log \tfrac1N \sum_i w_t^{(i)}`.
    betas
        ``(max_stages + 1,)`` inverse temperatures, ``betas[0] = 0``; entries after
        ``num_stages`` are NaN.
    ess
        ``(max_stages,)`` effective sample size (a count, not a fraction) of the
        incremental weights of each stage; NaN after ``num_stages``.
    acceptance
        ``(max_stages,)`` mean acceptance rate of the mutation steps of each stage.
    num_stages
        Number :math:`K` of stages run.
    num_dropped
        Particle-stages whose log density ratio was NaN or :math:`+\infty` (weight 0).
    """

    particles: Array
    logdensity: Array
    log_z: Array
    betas: Array
    ess: Array
    acceptance: Array
    num_stages: Array
    num_dropped: Array


def _sum_log_prob(base: Any, x: Array) -> Array:
    return jnp.sum(base.log_prob(x))


def tempered_smc(
    rng_key: PRNGKey,
    logdensity_fn: LogDensityFn,
    base: Any,
    kernel: Kernel,
    *,
    num_particles: int,
    shape: tuple[int, ...],
    target_ess: float = 0.5,
    num_mcmc_steps: int = 10,
    max_stages: int = 500,
) -> SMCRun:
    r"""One adaptive tempered SMC run; pure and traceable (``jit``/``vmap`` it freely).

    The unvalidated core of :func:`smc_log_z`. Each stage :math:`t = 1, \dots, K`:

    1. :math:`\delta_t = \beta_t - \beta_{t-1}` solves
       :math:`\mathrm{ESS}(\{e^{\delta \ell(x_i)}\}) = \rho N` by bisection
       (``blackjax.smc.ess.ess_solver``), capped at :math:`1 - \beta_{t-1}`, where
       :math:`\ell = \log \tilde p - \log p_0`;
    2. reweight :math:`\log w_i = \delta_t \ell(x_i)`,
       :math:`\log \hat Z \mathrel{+}= \log \tfrac1N \sum_i w_i`;
    3. resample systematically (``blackjax.smc.resampling.systematic``);
    4. move every particle by ``num_mcmc_steps`` steps of ``kernel`` on
       :math:`\log \pi_{\beta_t}`.

    Stages run in a ``lax.while_loop`` until :math:`\beta = 1` or ``max_stages``.

    Parameters
    ----------
    rng_key
        Key of the run.
    logdensity_fn
        :math:`\log \tilde p` of one position.
    base
        Normalised NumPyro distribution :math:`p_0`; ``log_prob`` summed over elements.
    kernel
        :mod:`ebm_ppl.kernels` kernel used as the mutation step.
    num_particles, shape
        :math:`N` and the shape of one position.
    target_ess, num_mcmc_steps, max_stages
        As in :func:`smc_log_z`.

    Returns
    -------
    SMCRun
    """
    key_init, key_loop = jax.random.split(rng_key)
    dist_shape = tuple(base.batch_shape) + tuple(base.event_shape)
    sample_shape = (num_particles,) if dist_shape == tuple(shape) else (num_particles, *shape)
    x0 = base.sample(key_init, sample_shape)
    dtype = x0.dtype
    nan = jnp.asarray(jnp.nan, dtype)

    def log_ratio(x: Array) -> Array:
        return logdensity_fn(x) - _sum_log_prob(base, x)

    def cond(carry: tuple) -> Array:
        stage, beta = carry[0], carry[1]
        return (stage < max_stages) & (beta < 1.0)

    def body(carry: tuple) -> tuple:
        stage, beta, x, log_z, key, betas, ess_path, acc_path, dropped = carry
        key, key_resample, key_move = jax.random.split(key, 3)
        ell = jax.vmap(log_ratio)(x)
        # -inf (outside the target's support) is a legitimate zero weight; NaN and +inf
        # are failures of the energy, dropped with weight 0 and counted
        bad = jnp.isnan(ell) | (ell == jnp.inf)
        ell = jnp.where(bad, -jnp.inf, ell)
        delta = ess_solver(lambda e: e, ell, target_ess, 1.0 - beta,
                           lambda f, lo, hi: solver.dichotomy(f, lo, hi, eps=_BISECTION_TOL))
        delta = jnp.clip(jnp.nan_to_num(delta), 0.0, 1.0 - beta)
        beta_new = jnp.where(delta >= 1.0 - beta, 1.0, beta + delta).astype(dtype)
        log_w = jnp.where(jnp.isfinite(ell), delta * ell, -jnp.inf)
        log_z = log_z + jax.scipy.special.logsumexp(log_w) - jnp.log(num_particles)
        weights = jax.nn.softmax(log_w)
        idx = resampling.systematic(key_resample, weights, num_particles)
        x = x[idx]

        def tempered(y: Array) -> Array:
            return (1.0 - beta_new) * _sum_log_prob(base, y) + beta_new * logdensity_fn(y)

        states, infos = run_chains(kernel, tempered, x, jax.random.split(key_move, num_mcmc_steps))
        betas = betas.at[stage + 1].set(beta_new)
        ess_path = ess_path.at[stage].set(jnp.exp(log_ess(log_w)))
        acc_path = acc_path.at[stage].set(jnp.mean(infos.acceptance_rate))
        return (stage + 1, beta_new, states.position, log_z, key, betas, ess_path, acc_path,
                dropped + jnp.sum(bad))

    init = (
        jnp.asarray(0),
        jnp.asarray(0.0, dtype),
        x0,
        jnp.asarray(0.0, dtype),
        key_loop,
        jnp.full(max_stages + 1, nan).at[0].set(0.0),
        jnp.full(max_stages, nan),
        jnp.full(max_stages, nan),
        jnp.asarray(0),
    )
    stage, _, x, log_z, _, betas, ess_path, acc_path, dropped = jax.lax.while_loop(
        cond, body, init)
    return SMCRun(
        particles=x,
        logdensity=jax.vmap(logdensity_fn)(x),
        log_z=log_z,
        betas=betas,
        ess=ess_path,
        acceptance=acc_path,
        num_stages=stage,
        num_dropped=dropped,
    )
