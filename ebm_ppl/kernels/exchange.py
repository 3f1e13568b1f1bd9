r"""The exchange algorithm for doubly-intractable posteriors (own code).

An energy whose parameters :math:`\theta` are unknown gives the likelihood
:math:`p(x \mid \theta) = f_\theta(x) / Z(\theta)`, :math:`f_\theta = e^{-E_\theta}`, with
an intractable normaliser that depends on :math:`\theta`: the posterior
:math:`\pi(\theta) \prod_i f_\theta(x_i) / Z(\theta)^n` cannot be evaluated, so ordinary
MCMC on :math:`\theta` is wrong. The exchange algorithm (Murray, Ghahramani & MacKay
2006) proposes :math:`\theta' \sim q(\cdot \mid \theta)`, draws auxiliary data
:math:`y \sim p_{\theta'}` of the observed data's shape, and accepts with

.. math::

    \alpha = \min\Big(1, \frac{\pi(\theta')\, q(\theta \mid \theta')\, f_{\theta'}(x)\,
    f_\theta(y)}{\pi(\theta)\, q(\theta' \mid \theta)\, f_\theta(x)\, f_{\theta'}(y)}\Big),

in which every :math:`Z` cancels; with exact auxiliary draws the chain leaves the exact
posterior invariant. Exact draws are rarely available: the practical form draws ``y``
by ``inner_steps`` steps of an MCMC kernel targeting :math:`f_{\theta'}` started from the
observed data (Liang 2010's *double Metropolis–Hastings*), one chain per data point,
vectorised. Its bias vanishes as ``inner_steps`` grows;
:func:`~ebm_ppl.diagnostics.inner_steps_check` tests whether it is small next
to the Monte-Carlo error.

The log density a kernel receives (``logdensity_fn`` of :func:`ebm_ppl.sample`) is the
posterior *without* the normaliser, :math:`\log \pi(\theta) - \sum_i E_\theta(x_i)`
(:meth:`ebm_ppl.Potential.from_energy_family` builds it); the kernel supplies the
missing :math:`-n \log Z` through the auxiliary term.

References
----------
Murray, Ghahramani & MacKay (2006), *MCMC for doubly-intractable distributions*, UAI,
https://arxiv.org/abs/1206.6848.
Liang (2010), *A double Metropolis–Hastings sampler for spatial models with intractable
normalizing constants*, J. Stat. Comput. Simul. 80(9).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ebm_ppl import adaptation
from ebm_ppl._tree import pytree_dataclass
from ebm_ppl._types import Array, ArrayTree, LogDensityFn, PRNGKey
from ebm_ppl._validation import check_int, check_positive, check_probability
from ebm_ppl.kernels.base import Kernel
from ebm_ppl.kernels.blackjax import mala
from ebm_ppl.kernels.chains import run_chains
from ebm_ppl.kernels.mh import Proposal, random_walk
from ebm_ppl.potential import Potential

__all__ = [
    "Auxiliary",
    "ExchangeInfo",
    "ExchangeState",
    "curvature_step_size",
    "default_inner_step_size",
    "exchange",
    "exchange_init",
    "exchange_kernel",
    "inner_draws",
    "inner_steps_of",
    "with_inner_steps",
]


class ExchangeState(NamedTuple):
    """Position :math:`\\theta` with its cached unnormalised log posterior."""

    position: ArrayTree
    logdensity: Array


class ExchangeInfo(NamedTuple):
    """``acceptance_rate`` is ``min(1, ratio)``; ``inner_acceptance_rate`` the mean
    acceptance of the inner chains that drew the auxiliary data (1 for exact draws);
    ``is_divergent`` flags a proposal inside the prior's support whose auxiliary term
    was not finite (an inner chain blew up)."""

    acceptance_rate: Array
    is_accepted: Array
    is_divergent: Array
    inner_acceptance_rate: Array


@pytree_dataclass
class Auxiliary:
    """How the auxiliary data are drawn and scored.

    Attributes
    ----------
    draw_fn
        ``draw_fn(rng_key, theta, params) -> (y, inner_acceptance_rate)``: auxiliary data
        drawn (approximately) from :math:`p_\\theta`.
    logdensity_fn
        ``logdensity_fn(theta, y, params) -> log f_theta(y)`` summed over the data points.
    params
        Numeric leaves both use (observed data, inner kernel), traced.
    """

    draw_fn: Callable = dataclasses.field(metadata=dict(static=True))
    logdensity_fn: Callable = dataclasses.field(metadata=dict(static=True))
    params: Any = None


def exchange_init(position: ArrayTree, logdensity_fn: LogDensityFn) -> ExchangeState:
    """State at ``position``."""
    return ExchangeState(position, logdensity_fn(position))


def exchange_kernel(
    rng_key: PRNGKey, state: ExchangeState, logdensity_fn: LogDensityFn,
    proposal: Proposal, auxiliary: Auxiliary,
) -> tuple[ExchangeState, ExchangeInfo]:
    """One exchange transition; see :func:`exchange`."""
    key_propose, key_auxiliary, key_accept = jax.random.split(rng_key, 3)
    theta, params = state.position, auxiliary.params
    new_theta = proposal.sample_fn(key_propose, theta, proposal.params)
    new_logdensity = logdensity_fn(new_theta)
    y, inner_rate = auxiliary.draw_fn(key_auxiliary, new_theta, params)
    swap = auxiliary.logdensity_fn(theta, y, params) - auxiliary.logdensity_fn(new_theta, y, params)
    log_ratio = new_logdensity - state.logdensity + swap
    if not proposal.symmetric:
        log_ratio = (
            log_ratio
            + proposal.log_prob_fn(theta, new_theta, proposal.params)
            - proposal.log_prob_fn(new_theta, theta, proposal.params)
        )
    in_support = jnp.isfinite(new_logdensity)
    finite = in_support & jnp.isfinite(swap) & ~jnp.isnan(log_ratio)
    log_ratio = jnp.where(finite, log_ratio, -jnp.inf)
    acceptance_rate = jnp.exp(jnp.minimum(log_ratio, 0.0))
    uniform = jax.random.uniform(key_accept, dtype=jnp.result_type(log_ratio))
    accept = jnp.log(uniform) < log_ratio
    new_state = jax.tree.map(
        lambda new, old: jnp.where(accept, new, old),
        ExchangeState(new_theta, new_logdensity), state,
    )
    info = ExchangeInfo(acceptance_rate, accept, in_support & ~finite,
                        jnp.where(in_support, inner_rate, jnp.nan))
    return new_state, info


# ---------------------------------------------------------------------- energy families
def curvature_step_size(
    rng_key: PRNGKey, logdensity_fn: LogDensityFn, points: Array, fallback: Array
) -> Array:
    r"""MALA step size matched to the curvature of ``logdensity_fn`` at ``points``.

    .. math::

        h = \frac{1}{4\, d^{1/3}\, \bar\lambda}, \qquad
        \bar\lambda = \frac{1}{n d} \sum_i \big| v_i^\top \nabla^2 \log p(x_i)\, v_i \big|,

    :math:`v_i` Rademacher vectors (Hutchinson's trace estimator: :math:`\bar\lambda`
    is the mean curvature), :math:`d` the size of one point. For
    :math:`\mathcal N(\mu, \sigma^2 I)` it gives :math:`h = \sigma^2 / (4 d^{1/3})`
    whatever :math:`\sigma`, so inner chains stay tuned when the proposed parameters
    change the energy's scale. ``fallback`` when the estimate is not a finite positive
    number (a linear energy, a proposal outside the support).
    """
    d = points[0].size
    signs = jax.random.rademacher(rng_key, points.shape, dtype=points.dtype)
    grad = jax.grad(logdensity_fn)
    hvp = jax.vmap(lambda x, v: jax.jvp(grad, (x,), (v,))[1])(points, signs)
    curvature = jnp.mean(jnp.abs(jnp.sum((signs * hvp).reshape(points.shape[0], -1), axis=1)))
    curvature = curvature / d
    ok = jnp.isfinite(curvature) & (curvature > 0)
    return jnp.where(ok, 1.0 / (4.0 * d ** (1.0 / 3.0) * jnp.where(ok, curvature, 1.0)),
                     fallback)


def inner_draws(
    rng_key: PRNGKey, logdensity_fn: LogDensityFn, data: Array, inner_kernel: Kernel | None,
    inner_steps: int, fallback_step_size: Array | None = None,
) -> tuple[Array, Array]:
    """``inner_steps`` steps of ``inner_kernel`` on ``logdensity_fn`` from every data point
    (leading axis of ``data``), all chains vectorised: Liang's double-MH auxiliary draw.

    ``inner_kernel=None`` is MALA with :func:`curvature_step_size` (``fallback_step_size``
    when the curvature is unusable). Returns the final positions (shaped like ``data``)
    and the mean inner acceptance rate.
    """
    key_step, key_chains = jax.random.split(rng_key)
    if inner_kernel is None:
        fallback = 1.0 if fallback_step_size is None else fallback_step_size
        inner_kernel = mala(curvature_step_size(key_step, logdensity_fn, data, fallback))
    keys = jax.random.split(key_chains, inner_steps)
    states, infos = run_chains(inner_kernel, logdensity_fn, data, keys)
    return states.position, jnp.mean(infos.acceptance_rate)


@dataclasses.dataclass(frozen=True)
class _FamilyLogDensity:
    """``log f_theta(y) = sum_i -E_theta(y_i)``, one energy per data point."""

    energy_fn: Callable

    def point(self, theta: ArrayTree) -> LogDensityFn:
        return Potential.from_energy(self.energy_fn, theta).logdensity_fn

    def __call__(self, theta: ArrayTree, y: ArrayTree, params: dict) -> Array:
        return jnp.sum(jax.vmap(self.point(theta))(y))


@dataclasses.dataclass(frozen=True)
class _FamilyDraw:
    """Auxiliary data by inner MCMC from the observed data, or by an exact sampler."""

    energy_fn: Callable
    inner_steps: int
    exact_sampler: Callable | None = None

    def __call__(self, rng_key: PRNGKey, theta: ArrayTree, params: dict):
        data = params["data"]
        if self.exact_sampler is not None:
            num = jax.tree.leaves(data)[0].shape[0]
            keys = jax.random.split(rng_key, num)
            y = jax.vmap(lambda k: self.exact_sampler(k, theta))(keys)
            return y, jnp.ones((), jnp.result_type(float))
        logdensity = _FamilyLogDensity(self.energy_fn).point(theta)
        return inner_draws(rng_key, logdensity, data, params["inner_kernel"], self.inner_steps,
                           params["fallback_step_size"])


def default_inner_step_size(data: ArrayTree) -> float:
    r"""Fallback MALA step size for inner chains, from the scale of the observed data.

    :math:`h = s^2 / (4\, d^{1/3})`, with :math:`s` the standard deviation of all data
    coordinates pooled (the data show the scale of :math:`p_\theta` near the posterior)
    and :math:`d` the size of one data point (MALA's step shrinks like
    :math:`d^{-1/3}`); the MALA proposal's standard deviation is then
    :math:`s / \sqrt{2}` in one dimension.
    """
    leaves = [np.asarray(leaf, dtype=np.float64) for leaf in jax.tree.leaves(data)]
    flat = np.concatenate([leaf.reshape(leaf.shape[0], -1) for leaf in leaves], axis=1)
    sd = float(np.std(flat)) if flat.size > 1 else 0.0
    if not np.isfinite(sd) or sd <= 0:
        sd = 1.0
    return sd**2 / (4.0 * flat.shape[1] ** (1.0 / 3.0))


def _as_proposal(proposal: Any, scale: float) -> Proposal:
    if proposal is None:
        check_positive("scale", scale)
        return random_walk(scale).parameters["proposal"]
    if isinstance(proposal, Kernel) and isinstance(proposal.parameters.get("proposal"), Proposal):
        return proposal.parameters["proposal"]
    if isinstance(proposal, Proposal):
        return proposal
    raise TypeError(
        "proposal must be an ebm_ppl.kernels.Proposal or an MH kernel (random_walk(s), "
        f"independent(d)), got {type(proposal).__name__}"
    )


def exchange(
    energy_fn: Callable[[ArrayTree, ArrayTree], Array],
    data: ArrayTree,
    scale: float = 0.1,
    *,
    proposal: Proposal | Kernel | None = None,
    inner_kernel: Kernel | None = None,
    inner_steps: int = 20,
    exact_sampler: Callable[[PRNGKey, ArrayTree], ArrayTree] | None = None,
    adapt_scale: bool | None = None,
    target_acceptance_rate: float = 0.3,
) -> Kernel:
    r"""The exchange algorithm on the parameters :math:`\theta` of an energy.

    Run it with :func:`ebm_ppl.sample` on the posterior without its normaliser,
    ``Potential.from_energy_family(energy_fn, data, log_prior_fn)``:

    .. math::

        \log \alpha = \log \pi(\theta') - \log \pi(\theta)
        - \sum_i \big[E_{\theta'}(x_i) - E_\theta(x_i)\big]
        + \sum_i \big[E_{\theta'}(y_i) - E_\theta(y_i)\big]
        + \log \frac{q(\theta \mid \theta')}{q(\theta' \mid \theta)},
        \qquad y_i \sim p_{\theta'} .

    Parameters
    ----------
    energy_fn
        ``energy_fn(theta, x) -> scalar``: the energy of *one* data point ``x``
        (temperature included), :math:`p_\theta(x) \propto e^{-E_\theta(x)}`.
    data
        Observed data, leading axis the ``n`` data points (an array or a pytree).
    scale
        Standard deviation of the Gaussian random-walk proposal on :math:`\theta`
        (adapted during warm-up by :func:`ebm_ppl.sample`, Robbins–Monro, towards
        ``target_acceptance_rate``).
    proposal
        Another proposal instead: a :class:`~ebm_ppl.kernels.Proposal` or an MH kernel
        (``random_walk(s)``, ``independent(d)``); the Hastings term is included.
    inner_kernel
        Kernel of the inner chains drawing the auxiliary data (any ebm_ppl kernel; its
        hyper-parameters are used as given). Default: MALA whose step size matches the
        energy's curvature at the data under each proposed :math:`\theta'`
        (:func:`curvature_step_size`; :func:`default_inner_step_size` of the data as
        fallback), so that the inner chains stay tuned when :math:`\theta'` changes the
        energy's scale.
    inner_steps
        Steps of every inner chain, started from the observed data point it replaces.
    exact_sampler
        ``exact_sampler(rng_key, theta) -> x``: one exact draw of :math:`p_\theta`
        (where one exists); replaces the inner chains, and the algorithm is then exact.
    adapt_scale
        Whether warm-up adapts the proposal scale (default: when the proposal has one).
    target_acceptance_rate
        Target of that adaptation: 0.3, between the optimal random-walk rates of one
        (0.44) and many (0.234) dimensions.

    Returns
    -------
    Kernel
        ``name="exchange"``; its info carries ``acceptance_rate``, ``is_divergent`` and
        ``inner_acceptance_rate``.

    Raises
    ------
    ValueError
        For a non-positive ``scale``, ``inner_steps < 1``, data without a leading axis,
        or a target rate outside (0, 1).
    TypeError
        If ``energy_fn`` or ``exact_sampler`` is not callable, or ``inner_kernel`` is
        not an ebm_ppl kernel.

    References
    ----------
    Murray, Ghahramani & MacKay (2006), https://arxiv.org/abs/1206.6848; Liang (2010),
    J. Stat. Comput. Simul. 80(9).

    Examples
    --------
    >>> import jax.numpy as jnp, numpyro.distributions as dist
    >>> from ebm_ppl import Potential
    >>> energy = lambda tau, x: 0.5 * tau * jnp.sum(x**2)
    >>> data = jnp.ones((10, 2))
    >>> log_prior = lambda tau: dist.Gamma(2.0, 1.0).log_prob(tau)
    >>> pot = Potential.from_energy_family(energy, data, log_prior)
    >>> kernel = exchange(energy, data, scale=0.3, inner_steps=10)
    """
    if not callable(energy_fn):
        raise TypeError(f"energy_fn must be callable, got {type(energy_fn).__name__}")
    if exact_sampler is not None and not callable(exact_sampler):
        raise TypeError(f"exact_sampler must be callable, got {type(exact_sampler).__name__}")
    inner_steps = check_int("inner_steps", inner_steps, 1)
    check_probability("target_acceptance_rate", target_acceptance_rate, allow_one=False)
    leaves = jax.tree.leaves(data)
    if not leaves or any(np.ndim(leaf) < 1 for leaf in leaves):
        raise ValueError(
            "data must be an array (or pytree of arrays) whose leading axis indexes the "
            f"data points, got {jax.tree.map(np.shape, data)}"
        )
    data = jax.tree.map(lambda leaf: jnp.asarray(leaf, jnp.result_type(float)), data)
    if inner_kernel is not None and not isinstance(inner_kernel, Kernel):
        raise TypeError(
            f"inner_kernel must be an ebm_ppl kernel (e.g. kernels.mala(0.1)), got "
            f"{type(inner_kernel).__name__}"
        )
    proposal = _as_proposal(proposal, scale)
    if adapt_scale is None:
        adapt_scale = proposal.scale is not None
    if adapt_scale and proposal.scale is None:
        raise ValueError("adapt_scale=True needs a proposal with a 'scale' parameter")
    auxiliary = Auxiliary(
        draw_fn=_FamilyDraw(energy_fn, inner_steps, exact_sampler),
        logdensity_fn=_FamilyLogDensity(energy_fn),
        params={"data": data, "inner_kernel": inner_kernel,
                "fallback_step_size": jnp.asarray(default_inner_step_size(data))},
    )
    return Kernel(
        name="exchange",
        init_fn=exchange_init,
        kernel_fn=exchange_kernel,
        parameters={"proposal": proposal, "auxiliary": auxiliary},
        default_warmup=(adaptation.robbins_monro(float(target_acceptance_rate)) if adapt_scale
                        else adaptation.NoWarmup(float(target_acceptance_rate))),
        gradient_based=False,
    )


def with_inner_steps(kernel: Kernel, inner_steps: int) -> Kernel:
    """The same exchange kernel with another number of inner steps (a new trace)."""
    auxiliary = kernel.parameters.get("auxiliary")
    if kernel.name != "exchange" or not isinstance(getattr(auxiliary, "draw_fn", None),
                                                   _FamilyDraw):
        raise ValueError(f"kernel must be built by kernels.exchange, got {kernel!r}")
    inner_steps = check_int("inner_steps", inner_steps, 1)
    draw = dataclasses.replace(auxiliary.draw_fn, inner_steps=inner_steps)
    auxiliary = dataclasses.replace(auxiliary, draw_fn=draw)
    return dataclasses.replace(kernel, parameters={**kernel.parameters, "auxiliary": auxiliary})


def inner_steps_of(kernel: Kernel) -> int:
    """The number of inner MCMC steps of an exchange kernel with inner MCMC.

    Raises
    ------
    ValueError
        If ``kernel`` was not built by :func:`exchange`, or draws its auxiliary data
        with an ``exact_sampler`` (no inner MCMC).
    """
    auxiliary = kernel.parameters.get("auxiliary") if isinstance(kernel, Kernel) else None
    draw = getattr(auxiliary, "draw_fn", None)
    if not isinstance(draw, _FamilyDraw) or draw.exact_sampler is not None:
        raise ValueError("kernel must be built by kernels.exchange with inner MCMC (no "
                         f"exact_sampler), got {kernel!r}")
    return draw.inner_steps
