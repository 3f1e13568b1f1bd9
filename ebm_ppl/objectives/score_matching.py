r"""Score-matching objectives: exact (Hyvärinen), denoising and sliced.

Sign convention (see :mod:`ebm_ppl.potential`): the energy :math:`E_\theta` defines
:math:`p_\theta(x) \propto e^{-E_\theta(x)}`, so the model score is
:math:`s_\theta(x) = \nabla_x \log p_\theta(x) = -\nabla_x E_\theta(x)`. Every loss below is
written in terms of :math:`\nabla_x E` with that sign already applied.

Second derivatives are never formed as a dense Hessian function: the Laplacian and the
projections :math:`v^\top \nabla^2 E\, v` are Hessian-vector products, computed
forward-over-reverse (``jax.jvp`` of ``jax.grad``), ``vmap``-ed over basis vectors or
random projections.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ebm_ppl._types import Array
from ebm_ppl._validation import check_int, check_nonnegative
from ebm_ppl.objectives.base import (
    EmptyState,
    Objective,
    check_batch,
    empty_init,
    flat_energy,
)

__all__ = [
    "score_matching",
    "denoising_score_matching",
    "sliced_score_matching",
    "PROJECTIONS",
]

#: Distributions of the random projections of sliced score matching.
PROJECTIONS = ("gaussian", "rademacher")


def _state_or_empty(state):
    return EmptyState() if state is None else state


def _perturbed(batch: Array, sigma: float, rng_key: Array) -> tuple[Array, Array]:
    """``(batch + sigma z, key left for the loss)``; the batch and key unchanged when
    ``sigma`` is 0, so exact score matching draws nothing."""
    if sigma == 0.0:
        return batch, rng_key
    key_noise, rng_key = jax.random.split(rng_key)
    return batch + sigma * jax.random.normal(key_noise, batch.shape, batch.dtype), rng_key


def _grad_and_hvp(fn: Callable[[Array], Array], x: Array, v: Array) -> tuple[Array, Array]:
    """``(∇f(x), ∇²f(x) v)`` by forward-over-reverse differentiation."""
    return jax.jvp(jax.grad(fn), (x,), (v,))


# --------------------------------------------------------------------------- exact SM
def score_matching(*, sigma: float = 0.0) -> Objective:
    r"""Exact (Hyvärinen) score matching, of the data or of the data smoothed by noise.

    .. math::

        J(\theta) = \mathbb E_{x \sim p_\text{data}}\Big[\tfrac12 \|\nabla_x E_\theta(x)\|^2
        - \Delta_x E_\theta(x)\Big],
        \qquad \Delta_x E = \operatorname{tr} \nabla_x^2 E
        = \sum_{i=1}^d e_i^\top \nabla_x^2 E\, e_i .

    This is Hyvärinen's :math:`\mathbb E[\operatorname{tr}\nabla s + \tfrac12\|s\|^2]`
    with :math:`s = -\nabla_x E`. The trace costs :math:`d` Hessian-vector products
    (``jvp`` of ``grad`` ``vmap``-ed over the basis vectors :math:`e_i`), so it suits
    low-dimensional data; prefer :func:`sliced_score_matching` or
    :func:`denoising_score_matching` for images.

    With ``sigma`` :math:`= \sigma > 0` the expectation is over :math:`\tilde x = x +
    \sigma z`, :math:`z \sim \mathcal N(0, I)` (fresh noise at every step): the loss is
    then the score-matching loss of the smoothed law :math:`p_\sigma = p_\text{data} *
    \mathcal N(0, \sigma^2 I)`, whose minimiser is the same as that of
    :func:`denoising_score_matching` at the same :math:`\sigma` (Vincent 2011); on
    Gaussian data of variance :math:`s^2` a Gaussian energy learns the variance
    :math:`s^2 + \sigma^2`. The local score carries no information about the relative
    mass of regions the data never join; the noise joins them, so with well-separated
    modes (the rings of :mod:`ebm_ppl.datasets`) a small :math:`\sigma` brings the
    learned mode weights close to the data's, at the price of blur: the model is
    :math:`p_\sigma`, not :math:`p_\text{data}` (``examples/README.md``, table 09;
    ``ebm-ppl train`` uses ``--sigma`` 0.2).

    Parameters
    ----------
    sigma
        Standard deviation of the Gaussian noise added to each example (keyword only);
        0 (default) is exact score matching of the data.

    Returns
    -------
    Objective
        Stateless; metrics ``score_norm`` (mean :math:`\tfrac12\|\nabla E\|^2`) and
        ``laplacian`` (mean :math:`\Delta E`).

    Raises
    ------
    ValueError
        If ``sigma`` is not a finite number >= 0.

    References
    ----------
    Hyvärinen (2005), *Estimation of non-normalized statistical models by score
    matching*, JMLR 6.
    Vincent (2011), *A connection between score matching and denoising autoencoders*,
    Neural Computation 23(7).

    Examples
    --------
    A hand-written optax loop (what :func:`ebm_ppl.fit` does, without the extras):

    >>> import jax, jax.numpy as jnp, optax
    >>> energy_fn = lambda p, x: 0.5 * jnp.sum(jnp.exp(p["log_prec"]) * (x - p["mu"]) ** 2)
    >>> params = {"mu": jnp.zeros(2), "log_prec": jnp.zeros(2)}
    >>> objective = score_matching()
    >>> optimizer = optax.adam(1e-2)
    >>> opt_state, state = optimizer.init(params), objective.init(jax.random.key(0), params)
    >>> data = 2.0 + jax.random.normal(jax.random.key(1), (512, 2))
    >>> @jax.jit
    ... def step(params, opt_state, state, key):
    ...     grad_fn = jax.value_and_grad(objective.loss, has_aux=True)
    ...     (value, (metrics, state)), grads = grad_fn(params, data, key, energy_fn, state)
    ...     updates, opt_state = optimizer.update(grads, opt_state, params)
    ...     return optax.apply_updates(params, updates), opt_state, state, value
    >>> for i in range(3):
    ...     params, opt_state, state, value = step(params, opt_state, state, jax.random.key(i))
    """
    sigma = check_nonnegative("sigma", sigma)

    def loss(params, batch, rng_key, energy_fn, state=None):
        batch, _ = _perturbed(check_batch(batch), sigma, rng_key)
        event_shape = batch.shape[1:]
        dim = int(np.prod(event_shape))
        basis = jnp.eye(dim, dtype=batch.dtype)

        def per_example(x):
            fn = flat_energy(energy_fn, params, event_shape)
            x_flat = jnp.reshape(x, (dim,))
            grads, hvps = jax.vmap(lambda v: _grad_and_hvp(fn, x_flat, v))(basis)
            grad = grads[0]
            laplacian = jnp.trace(hvps)  # (H e_i)_i summed over i
            return 0.5 * jnp.sum(grad**2), laplacian

        half_sq, lap = jax.vmap(per_example)(batch)
        value = jnp.mean(half_sq - lap)
        metrics = {"score_norm": jnp.mean(half_sq), "laplacian": jnp.mean(lap)}
        return value, (metrics, _state_or_empty(state))

    return Objective(init=empty_init, loss=loss, name="score_matching")


# --------------------------------------------------------------------------- DSM
class _DSMConfig(NamedTuple):
    sigmas: tuple[float, ...]
    multi_scale: bool
    noise_conditional: bool


def denoising_score_matching(
    sigma: float | Sequence[float], *, noise_conditional: bool = False
) -> Objective:
    r"""Denoising score matching, single- or multi-scale.

    Single noise level :math:`\sigma`: with :math:`\tilde x = x + \sigma z`,
    :math:`z \sim \mathcal N(0, I)`, the score of the Gaussian corruption kernel is
    :math:`\nabla_{\tilde x} \log q_\sigma(\tilde x \mid x) = -z/\sigma` and the model
    score is :math:`-\nabla E_\theta(\tilde x)`, so

    .. math::

        J_\sigma(\theta) = \tfrac12\, \mathbb E_{x, z}
        \big\|\nabla_x E_\theta(x + \sigma z) - z/\sigma\big\|^2 .

    Its minimiser is the score of the *noisy* data law :math:`p_\text{data} * \mathcal
    N(0, \sigma^2 I)`: on Gaussian data of variance :math:`s^2` a Gaussian energy learns
    the precision :math:`1/(s^2 + \sigma^2)`.

    Multi-scale (``sigma`` a sequence :math:`\sigma_1, \dots, \sigma_L`, Song & Ermon
    2019): each example draws one level :math:`\ell` uniformly and the level's loss is
    weighted by :math:`\sigma_\ell^2`,

    .. math::

        J(\theta) = \frac1L \sum_\ell \tfrac12 \sigma_\ell^2\,
        \mathbb E \big\|\nabla_x E_\theta(x + \sigma_\ell z, \sigma_\ell) - z/\sigma_\ell
        \big\|^2
        = \frac1L \sum_\ell \tfrac12\, \mathbb E \big\|\sigma_\ell
        \nabla_x E_\theta(\cdot) - z\big\|^2 .

    Parameters
    ----------
    sigma
        A noise level :math:`\sigma > 0`, or a non-empty sequence of them (multi-scale).
    noise_conditional
        If True the energy takes the noise level as third argument,
        ``energy_fn(params, x, sigma)`` (a noise-conditional energy, NCSN style); the
        level passed is a scalar array. If False (default) it is called as
        ``energy_fn(params, x)`` and one energy serves all levels.

    Returns
    -------
    Objective
        Stateless; metric ``sigma`` (mean noise level of the batch).

    Raises
    ------
    ValueError
        If a noise level is not a finite number > 0.

    References
    ----------
    Vincent (2011), *A connection between score matching and denoising autoencoders*,
    Neural Computation 23(7).
    Song & Ermon (2019), https://arxiv.org/abs/1907.05600

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> energy_fn = lambda p, x: 0.5 * p * jnp.sum(x**2)
    >>> objective = denoising_score_matching(0.1)
    >>> data = jax.random.normal(jax.random.key(0), (64, 2))
    >>> value, (metrics, state) = objective.loss(1.0, data, jax.random.key(1), energy_fn)
    """
    multi = not np.isscalar(sigma) and np.ndim(sigma) > 0
    sigmas = tuple(np.atleast_1d(np.asarray(sigma, dtype=float)).tolist()) if multi else None
    if multi:
        if len(sigmas) == 0:
            raise ValueError("sigma must be a number > 0 or a non-empty sequence, got []")
        values = sigmas
    else:
        try:
            values = (float(sigma),)
        except (TypeError, ValueError):
            raise ValueError(
                f"sigma must be a number > 0 or a sequence of them, got {sigma!r}"
            ) from None
    for value in values:
        if not np.isfinite(value) or value <= 0:
            raise ValueError(f"sigma must be finite and > 0, got {sigma!r}")
    config = _DSMConfig(tuple(values), multi, bool(noise_conditional))

    def loss(params, batch, rng_key, energy_fn, state=None):
        batch = check_batch(batch)
        event_shape = batch.shape[1:]
        key_noise, key_level = jax.random.split(rng_key)
        noise = jax.random.normal(key_noise, batch.shape, batch.dtype)
        levels = jnp.asarray(config.sigmas, dtype=batch.dtype)
        if config.multi_scale:
            idx = jax.random.randint(key_level, (batch.shape[0],), 0, len(config.sigmas))
            sig = levels[idx]
        else:
            sig = jnp.full((batch.shape[0],), levels[0])

        def per_example(x, z, s):
            args = (s,) if config.noise_conditional else ()
            fn = flat_energy(energy_fn, params, event_shape, *args)
            x_noisy = jnp.reshape(x + s * z, (-1,))
            grad = jax.grad(fn)(x_noisy)
            residual = grad - jnp.reshape(z, (-1,)) / s
            weight = s**2 if config.multi_scale else 1.0
            return 0.5 * weight * jnp.sum(residual**2)

        values_ = jax.vmap(per_example)(batch, noise, sig)
        value = jnp.mean(values_)
        return value, ({"sigma": jnp.mean(sig)}, _state_or_empty(state))

    name = "denoising_score_matching" + ("_multiscale" if multi else "")
    return Objective(init=empty_init, loss=loss, name=name)


# --------------------------------------------------------------------------- SSM
def sliced_score_matching(
    num_projections: int = 1,
    variance_reduced: bool = True,
    *,
    projection: str = "gaussian",
    sigma: float = 0.0,
) -> Objective:
    r"""Sliced score matching with random projections :math:`v` (:math:`\mathbb E[vv^\top] = I`).

    Variance-reduced form (default), with :math:`\|\nabla E\|^2` computed exactly:

    .. math::

        J(\theta) = \mathbb E_{x, v}\Big[\tfrac12 \|\nabla_x E_\theta(x)\|^2
        - v^\top \nabla_x^2 E_\theta(x)\, v\Big].

    Plain form (``variance_reduced=False``):

    .. math::

        J(\theta) = \mathbb E_{x, v}\Big[\tfrac12 \big(v^\top \nabla_x E_\theta(x)\big)^2
        - v^\top \nabla_x^2 E_\theta(x)\, v\Big].

    Both follow from Song et al.'s :math:`\mathbb E[v^\top \nabla_x s\, v + \tfrac12
    (v^\top s)^2]` with :math:`s = -\nabla_x E` (so :math:`v^\top \nabla_x(v^\top s) =
    -v^\top \nabla^2 E\, v`: written with the score :math:`s`, the Hessian term enters
    with a *plus* sign). Their expectation over :math:`v` is the exact score-matching
    loss of :func:`score_matching`. Each projection costs one Hessian-vector product
    (``jvp`` of ``grad``), independent of the dimension.

    Parameters
    ----------
    num_projections
        Number :math:`M \geq 1` of projections per example (losses averaged).
    variance_reduced
        Use the variance-reduced form (exact :math:`\|\nabla E\|^2`).
    projection
        ``"gaussian"`` (:math:`v \sim \mathcal N(0, I)`) or ``"rademacher"``
        (independent :math:`\pm 1` entries, lower variance).
    sigma
        Standard deviation of Gaussian noise added to each example (0: none), as in
        :func:`score_matching`: the loss is then that of the smoothed law
        :math:`p_\text{data} * \mathcal N(0, \sigma^2 I)`.

    Returns
    -------
    Objective
        Stateless; metrics ``score_norm`` and ``hessian_projection`` (batch means of
        :math:`\tfrac12\|\nabla E\|^2` and :math:`v^\top \nabla^2 E\, v`).

    References
    ----------
    Song, Garg, Shi & Ermon (2019), *Sliced score matching*,
    https://arxiv.org/abs/1905.07088

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> energy_fn = lambda p, x: 0.5 * p * jnp.sum(x**2)
    >>> objective = sliced_score_matching(num_projections=4, projection="rademacher")
    >>> data = jax.random.normal(jax.random.key(0), (64, 2))
    >>> value, (metrics, _) = objective.loss(1.0, data, jax.random.key(1), energy_fn)
    """
    num_projections = check_int("num_projections", num_projections, 1)
    if projection not in PROJECTIONS:
        raise ValueError(f"projection must be one of {PROJECTIONS}, got {projection!r}")
    variance_reduced = bool(variance_reduced)
    sigma = check_nonnegative("sigma", sigma)

    def loss(params, batch, rng_key, energy_fn, state=None):
        batch, rng_key = _perturbed(check_batch(batch), sigma, rng_key)
        event_shape = batch.shape[1:]
        dim = int(np.prod(event_shape))
        shape = (batch.shape[0], num_projections, dim)
        if projection == "gaussian":
            v = jax.random.normal(rng_key, shape, batch.dtype)
        else:
            v = jax.random.rademacher(rng_key, shape, batch.dtype)

        def per_example(x, vs):
            fn = flat_energy(energy_fn, params, event_shape)
            x_flat = jnp.reshape(x, (dim,))
            grads, hvps = jax.vmap(lambda u: _grad_and_hvp(fn, x_flat, u))(vs)
            quad = jnp.sum(vs * hvps, axis=-1)  # v^T H v per projection
            half_sq = 0.5 * jnp.sum(grads[0] ** 2)
            if variance_reduced:
                first = half_sq
            else:
                first = jnp.mean(0.5 * jnp.sum(vs * grads, axis=-1) ** 2)
            return first - jnp.mean(quad), half_sq, jnp.mean(quad)

        values, half_sq, quad = jax.vmap(per_example)(batch, v)
        metrics = {"score_norm": jnp.mean(half_sq), "hessian_projection": jnp.mean(quad)}
        return jnp.mean(values), (metrics, _state_or_empty(state))

    return Objective(init=empty_init, loss=loss, name="sliced_score_matching")
