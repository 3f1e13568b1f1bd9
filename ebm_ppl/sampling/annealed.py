r"""Annealed Langevin dynamics: draws of a noise-conditional energy, from the largest
noise level down to the smallest (Song & Ermon 2019).

A noise-conditional energy :math:`E_\theta(x, \sigma)` trained by multi-scale denoising
score matching (``objectives.denoising_score_matching(sigmas, noise_conditional=True)``)
learns the score of the data smoothed by :math:`\mathcal N(0, \sigma^2 I)` at each level.
At a small σ each level only sees data near it, so the relative mass of separated regions
is learned poorly there; sampling one small-σ slice with a correct MCMC kernel then
reproduces that error (in 2-D toy runs the draws drift into one region). Annealing runs
unadjusted Langevin at each level in turn, so the large levels place the mass and the
small ones sharpen the shape.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from functools import partial

import arviz
import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from ebm_ppl._types import Array, Params
from ebm_ppl._validation import as_key, check_int, check_positive
from ebm_ppl.errors import SamplingWarning
from ebm_ppl.inference_data import run_attrs, to_inference_data
from ebm_ppl.kernels.chains import run_chains
from ebm_ppl.kernels.ula import ula

__all__ = ["annealed_langevin"]


def _check_sigmas(sigmas: Sequence[float]) -> tuple[float, ...]:
    try:
        values = tuple(float(s) for s in sigmas)
    except (TypeError, ValueError):
        raise ValueError(f"sigmas must be a sequence of numbers, got {sigmas!r}") from None
    if not values or not all(math.isfinite(s) and s > 0 for s in values):
        raise ValueError(f"sigmas must be a non-empty sequence of finite numbers > 0, got "
                         f"{values!r}")
    if any(b >= a for a, b in zip(values, values[1:], strict=False)):
        raise ValueError(f"sigmas must be strictly decreasing (largest noise first), got "
                         f"{values!r}")
    return values


@partial(jax.jit, static_argnames=("energy_fn", "steps_per_level"))
def _anneal(energy_fn: Callable, params: Params, sigmas: Array, init: Array, key: Array,
            step_scale: Array, steps_per_level: int) -> tuple[Array, Array]:
    """Final positions and the number of rejected (non-finite) steps of each chain: one
    :func:`~ebm_ppl.kernels.run_chains` of :func:`~ebm_ppl.kernels.ula` per level."""
    kernel = ula(1.0)

    def level(carry, inputs):
        positions, rejected = carry
        sigma, level_key = inputs
        states, infos = run_chains(kernel.replace(step_size=step_scale * sigma**2),
                                   lambda x: -energy_fn(params, x, sigma), positions,
                                   jax.random.split(level_key, steps_per_level))
        return (states.position, rejected + jnp.sum(infos.is_divergent, axis=0)), None

    keys = jax.random.split(key, sigmas.shape[0])
    zeros = jnp.zeros((init.shape[0],), jnp.int32)
    (positions, rejected), _ = jax.lax.scan(level, (init, zeros), (sigmas, keys))
    return positions, rejected


def annealed_langevin(
    energy_fn: Callable[[Params, Array, Array], Array],
    params: Params,
    sigmas: Sequence[float],
    init: ArrayLike,
    *,
    steps_per_level: int = 100,
    step_scale: float = 0.1,
    seed: int | Array = 0,
    num_chains: int = 1,
) -> arviz.InferenceData:
    r"""Draws of a noise-conditional energy by annealed Langevin dynamics.

    For each level :math:`\sigma_1 > \dots > \sigma_L` in turn, every chain takes
    ``steps_per_level`` unadjusted Langevin steps on :math:`E(\cdot, \sigma_\ell)`,

    .. math::

        x \leftarrow x - \alpha_\ell \nabla_x E_\theta(x, \sigma_\ell)
        + \sqrt{2\alpha_\ell}\, \xi, \qquad \alpha_\ell = s\, \sigma_\ell^2 ,

    starting where the previous level stopped; the chain's final position is one draw.
    The step is a fixed fraction ``s = step_scale`` of each level's noise variance (the
    NCSN rule :math:`\alpha_\ell = \varepsilon\, \sigma_\ell^2 / \sigma_L^2` with
    :math:`\varepsilon = s\,\sigma_L^2`): the smoothed density at level ℓ has no feature
    narrower than :math:`\sigma_\ell`, so the step stays stable at every level.

    The draws are *biased*: Langevin without a Metropolis correction, a finite number of
    steps per level, and the final law is the model smoothed at :math:`\sigma_L`, not
    the data law. On a Gaussian level of variance :math:`v` the ULA recursion of the
    variance is exactly :math:`V \leftarrow (1 - \alpha/v)^2 V + 2\alpha`
    (``tests/sampling/test_annealed_langevin.py`` checks the draws against it).

    Parameters
    ----------
    energy_fn
        ``energy_fn(params, x, sigma)`` for one position ``x`` of shape ``(d,)`` and a
        scalar ``sigma`` — the convention of
        ``objectives.denoising_score_matching(..., noise_conditional=True)`` and of
        :class:`ebm_ppl.nn.NoiseConditionalMLPEnergy`. Hashable (a module-level function
        or an ``nn`` model), so repeated calls reuse the compiled sampler.
    params
        The energy's parameters.
    sigmas
        Noise levels, strictly decreasing (usually the training levels).
    init
        ``(num_draws, d)`` starting positions, e.g.
        ``sigmas[0] * jax.random.normal(key, (n, d))`` or uniform over the data range.
    steps_per_level
        Langevin steps at each level (100 in Song & Ermon).
    step_scale
        :math:`s > 0`: the step at level ℓ is :math:`s\sigma_\ell^2`.
    seed
        Integer seed or ``jax.random`` key.
    num_chains
        How many ArviZ chains the draws are split into (it must divide ``num_draws``);
        every draw is an independent annealing run either way, so this only shapes the
        result (``ebm-ppl sample`` uses ``--chains`` × ``--samples``).

    Returns
    -------
    arviz.InferenceData
        ``posterior["x"]`` with dims ``(chain, draw, x_dim_0)`` =
        ``(num_chains, num_draws // num_chains, d)``: the draws are independent, so
        ArviZ's ESS is about ``num_draws``;
        ``sample_stats["rejected"]`` counts each chain's steps that produced a non-finite
        position, energy or gradient (the chain then kept its position). The run's
        settings are in ``attrs``.

    Raises
    ------
    ValueError
        If ``sigmas`` is empty, not strictly decreasing or has a value that is not a
        finite number > 0; if ``init`` is not a finite ``(n, d)`` array; for
        ``steps_per_level < 1``, ``step_scale <= 0``, or a ``num_chains`` that does not
        divide ``n``.

    Warns
    -----
    SamplingWarning
        When any step was rejected or a final position is not finite (lower
        ``step_scale``).

    References
    ----------
    Song & Ermon (2019), *Generative modeling by estimating gradients of the data
    distribution*, https://arxiv.org/abs/1907.05600

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> energy_fn = lambda p, x, s: 0.5 * jnp.sum(x**2) / (1.0 + s**2)
    >>> init = jax.random.normal(jax.random.key(0), (500, 2))
    >>> idata = annealed_langevin(energy_fn, None, [1.0, 0.3, 0.1], init, seed=1)
    >>> idata.posterior["x"].shape
    (1, 500, 2)
    """
    levels = _check_sigmas(sigmas)
    steps_per_level = check_int("steps_per_level", steps_per_level, 1)
    step_scale = check_positive("step_scale", step_scale)
    num_chains = check_int("num_chains", num_chains, 1)
    init = jnp.asarray(init)
    if init.ndim != 2 or not jnp.issubdtype(init.dtype, jnp.floating):
        raise ValueError(f"init must be a floating (num_draws, d) array, got shape "
                         f"{init.shape} and dtype {init.dtype}")
    if init.shape[0] % num_chains:
        raise ValueError(f"num_chains={num_chains} must divide the number of draws "
                         f"{init.shape[0]} (the rows of init)")
    if not bool(jnp.all(jnp.isfinite(init))):
        raise ValueError("init has non-finite entries; start every chain at a finite point")
    key = as_key(seed)
    positions, rejected = _anneal(energy_fn, params, jnp.asarray(levels, init.dtype), init,
                                  key, jnp.asarray(step_scale, init.dtype), steps_per_level)
    draws, rejected = np.asarray(positions), np.asarray(rejected)
    bad = int(np.sum(~np.all(np.isfinite(draws), axis=1)))
    if bad or rejected.any():
        warnings.warn(
            f"annealed Langevin: {int((rejected > 0).sum())} of {len(draws)} chains had "
            f"non-finite steps (rejected, {int(rejected.sum())} in all) and {bad} ended "
            f"non-finite; lower step_scale (now {step_scale:g})",
            SamplingWarning, stacklevel=2)
    attrs = run_attrs({"sampler": "annealed_langevin", "sigmas": list(levels),
                       "steps_per_level": steps_per_level, "step_scale": float(step_scale),
                       "num_draws": int(draws.shape[0])})
    shape = (num_chains, draws.shape[0] // num_chains)
    return to_inference_data({"x": draws.reshape(*shape, -1)},
                             {"rejected": rejected.reshape(shape)}, attrs=attrs)
