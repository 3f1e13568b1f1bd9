r"""Annealed importance sampling (AIS) estimate of the log normaliser :math:`\log Z`.

For an unnormalised density :math:`\tilde p(x) = \exp(\text{logdensity}(x))` (that is
:math:`\exp(-E(x)/T)`), :math:`Z = \int \tilde p(x)\,dx`. AIS anneals from a normalised base
:math:`p_0` along the geometric path

.. math::

    \log \pi_\beta(x) = (1 - \beta) \log p_0(x) + \beta \log \tilde p(x),
    \qquad 0 = \beta_0 < \beta_1 < \dots < \beta_K = 1,

and each chain carries the weight
:math:`\log w = \sum_{k=1}^K (\beta_k - \beta_{k-1}) [\log\tilde p(x_{k-1}) - \log p_0(x_{k-1})]`,
where :math:`x_k` follows an MCMC transition leaving :math:`\pi_{\beta_k}` invariant.
:math:`\mathbb E[w] = Z` exactly, whatever the mixing of the transitions (Neal 2001).
"""

from __future__ import annotations

import math
import warnings
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist

from ebm_ppl._types import Array, PRNGKey
from ebm_ppl._validation import as_key, check_int
from ebm_ppl.diagnostics._samples import position_shape
from ebm_ppl.errors import SamplingWarning
from ebm_ppl.kernels.base import Kernel
from ebm_ppl.kernels.blackjax import hmc
from ebm_ppl.kernels.chains import run_chains
from ebm_ppl.kernels.registry import REGISTRY, make_kernel
from ebm_ppl.potential import Potential

__all__ = ["AISResult", "ais_log_z", "annealing_schedule", "SCHEDULES"]

#: Built-in temperature schedules (or pass an increasing array from 0 to 1).
SCHEDULES = ("sigmoid", "linear", "geometric")
#: Steepness δ of the sigmoid schedule (Grosse, Maddison & Salakhutdinov 2013 use 4):
#: more temperatures near β = 0 and 1, where the weights change fastest.
_SIGMOID_DELTA = 4.0
#: Smallest positive β of the geometric schedule.
_GEOMETRIC_START = 1e-4


class AISResult(NamedTuple):
    r"""AIS estimate.

    Attributes
    ----------
    log_z
        :math:`\log \hat Z = \log \tfrac1N \sum_i w_i` (log-mean-exp of the weights).
    stderr
        Standard error of ``log_z`` (delta method
        :math:`\mathrm{sd}(w)/(\sqrt N\,\bar w)`, or bootstrap).
    log_weights
        ``(num_chains,)`` log weights.
    ess
        Importance-sampling effective sample size :math:`(\sum w)^2 / \sum w^2`.
    acceptance_rate
        Mean acceptance rate of the transitions at each temperature, ``(num_temps,)``.
    betas
        The inverse temperatures :math:`\beta_0 = 0, \dots, \beta_K = 1`.
    positions
        Final positions (approximate draws from the target), ``(num_chains, ...)``.
    num_dropped
        Particles whose log weight was not finite (NaN/inf energy along the path): they
        get weight 0 and are left out of ``log_z`` (a warning says how many).
    """

    log_z: float
    stderr: float
    log_weights: np.ndarray
    ess: float
    acceptance_rate: np.ndarray
    betas: np.ndarray
    positions: Array
    num_dropped: int = 0

    def __str__(self) -> str:
        dropped = f", {self.num_dropped} dropped" if self.num_dropped else ""
        return (
            f"AIS log Z = {self.log_z:.4f} ± {self.stderr:.4f} "
            f"(ESS {self.ess:.0f}/{self.log_weights.shape[0]}, {len(self.betas) - 1} temps"
            f"{dropped})"
        )


def annealing_schedule(num_temps: int, schedule: str = "sigmoid") -> np.ndarray:
    r"""Inverse temperatures :math:`0 = \beta_0 < \dots < \beta_K = 1` (``K = num_temps``).

    * ``"linear"``: :math:`\beta_k = k/K`;
    * ``"geometric"``: :math:`\beta_k = 10^{-4 (K-k)/(K-1)}` for :math:`k \ge 1`;
    * ``"sigmoid"``: :math:`\tilde\beta_k = \sigma(\delta(2k/K - 1))` rescaled to
      :math:`[0, 1]`, :math:`\delta = 4` (Grosse et al. 2013).
    """
    num_temps = check_int("num_temps", num_temps, 1)
    k = np.arange(num_temps + 1, dtype=float)
    if schedule == "linear":
        return k / num_temps
    if schedule == "geometric":
        if num_temps == 1:
            return np.array([0.0, 1.0])
        return np.concatenate([[0.0], np.geomspace(_GEOMETRIC_START, 1.0, num_temps)])
    if schedule == "sigmoid":
        s = 1.0 / (1.0 + np.exp(-_SIGMOID_DELTA * (2.0 * k / num_temps - 1.0)))
        return (s - s[0]) / (s[-1] - s[0])
    raise ValueError(f"schedule must be one of {SCHEDULES} or an array, got {schedule!r}")


def _resolve_kernel(kernel: str | Kernel, step_size: float, num_integration_steps: int) -> Kernel:
    if kernel == "hmc":
        kernel = hmc(step_size, num_integration_steps)
    elif isinstance(kernel, str) and kernel in REGISTRY:
        kernel = make_kernel(kernel, step_size)
    if isinstance(kernel, Kernel):
        if not kernel.exact:  # a fact of the kernel (ULA, MCLMC, SGLD...), not its name
            warnings.warn(
                f"kernel {kernel.name!r} has no Metropolis correction, so it does not leave "
                "each tempered target invariant and the AIS estimate of log Z is biased by "
                "its step size; use 'mala' or 'hmc' (exact for any step size)",
                SamplingWarning,
                stacklevel=3,
            )
        return kernel
    raise ValueError(f"kernel must be one of {tuple(REGISTRY)} or an ebm_ppl.kernels kernel, "
                     f"got {kernel!r}")


def _log_mean_exp(log_w: Array) -> Array:
    return jax.scipy.special.logsumexp(log_w) - jnp.log(log_w.shape[0])


def ais_log_z(
    pot: Potential,
    base: Any = None,
    num_temps: int = 100,
    *,
    num_chains: int = 1000,
    kernel: str | Kernel = "mala",
    step_size: float = 0.1,
    num_integration_steps: int = 5,
    num_steps_per_temp: int = 1,
    schedule: str | Any = "sigmoid",
    shape: tuple[int, ...] | None = None,
    seed: int | PRNGKey = 0,
    stderr_method: str = "delta",
    num_bootstrap: int = 1000,
) -> AISResult:
    r"""Estimate :math:`\log Z` of ``pot`` by annealed importance sampling.

    :math:`Z = \int \exp(\text{logdensity}(x))\,dx = \int e^{-E(x)/T} dx` (the normaliser
    of the potential's log density, temperature included).

    Parameters
    ----------
    pot
        Target potential (array positions).
    base
        Normalised NumPyro distribution :math:`p_0` that covers the target; default
        ``Normal(0, 1)`` on every coordinate. Its ``log_prob`` is summed over
        the position's elements.
    num_temps
        Number :math:`K` of annealing steps.
    num_chains
        Number :math:`N` of AIS chains, run in parallel under ``vmap``.
    kernel
        a kernel name of :data:`~ebm_ppl.kernels.registry.REGISTRY` (``"mala"``, ``"hmc"``
        with ``num_integration_steps``...) or an :mod:`ebm_ppl.kernels` kernel (its ``step`` is
        applied to the tempered log density :math:`\log \pi_{\beta_k}`).
    step_size, num_integration_steps
        Parameters of the built-in kernels (fixed across temperatures).
    num_steps_per_temp
        Transitions per temperature.
    schedule
        ``"sigmoid"``, ``"linear"``, ``"geometric"`` or an increasing array of
        :math:`\beta` from 0 to 1 (then ``num_temps`` is ignored).
    shape
        Position shape, when neither ``pot.example`` nor ``base`` gives it.
    seed
        Integer seed or key.
    stderr_method
        ``"delta"`` (:math:`\widehat{\mathrm{se}} = \mathrm{sd}(w)/(\sqrt N \bar w)`) or
        ``"bootstrap"`` (sd of the log-mean-exp over ``num_bootstrap`` resamples of the
        weights).

    Returns
    -------
    AISResult

    Raises
    ------
    ValueError
        For invalid arguments.

    Notes
    -----
    :math:`\hat Z` is unbiased; :math:`\log \hat Z` is biased downwards by about
    :math:`\mathrm{se}^2/2` (Jensen), negligible when the stderr is small. The standard
    error is only trustworthy when the ESS is not tiny; heavy-tailed weights (poor
    schedule, base too narrow) make both the estimate and its error unreliable. This is
    the cross-check of the log normaliser learned by noise-contrastive estimation.

    References
    ----------
    Neal (2001), *Annealed importance sampling*, Statistics and Computing 11,
    https://arxiv.org/abs/physics/9803008
    Grosse, Maddison & Salakhutdinov (2013), *Annealing between distributions by
    averaging moments*, NeurIPS.

    Examples
    --------
    >>> import jax.numpy as jnp, ebm_ppl
    >>> pot = ebm_ppl.Potential.from_energy(lambda x: 0.5 * jnp.sum(x**2), example=jnp.zeros(2))
    >>> res = ais_log_z(pot, num_temps=50, num_chains=500)
    >>> abs(res.log_z - jnp.log(2 * jnp.pi)) < 5 * res.stderr + 0.01
    Array(True, dtype=bool)
    """
    if not isinstance(pot, Potential):
        raise TypeError(f"pot must be an ebm_ppl.Potential, got {type(pot).__name__}")
    betas = _betas(schedule, num_temps)
    num_chains = check_int("num_chains", num_chains, 1)
    num_steps_per_temp = check_int("num_steps_per_temp", num_steps_per_temp, 1)
    num_bootstrap = check_int("num_bootstrap", num_bootstrap, 1)
    if stderr_method not in ("delta", "bootstrap"):
        raise ValueError(f"stderr_method must be 'delta' or 'bootstrap', got {stderr_method!r}")
    shape = position_shape(pot, base, shape, "ais_log_z")
    base = dist.Normal(0.0, 1.0) if base is None else base
    dist_shape = tuple(base.batch_shape) + tuple(base.event_shape)
    if dist_shape == shape:
        sample_shape = (num_chains,)
    elif dist_shape == ():
        sample_shape = (num_chains, *shape)
    else:
        raise ValueError(f"base has shape {dist_shape}, expected () or the position shape {shape}")
    mcmc = _resolve_kernel(kernel, step_size, num_integration_steps)
    key_base, key_anneal, key_boot = jax.random.split(as_key(seed), 3)
    x0 = base.sample(key_base, sample_shape)
    positions, log_w, acc = _anneal(pot, base, mcmc, x0, jnp.asarray(betas, x0.dtype),
                                    key_anneal, num_steps_per_temp)
    finite = jnp.isfinite(log_w)
    num_dropped = int(num_chains - jnp.sum(finite))
    if num_dropped:
        warnings.warn(
            f"{num_dropped} of {num_chains} AIS particles had a non-finite log weight "
            "(NaN/inf energy or a divergent transition along the path) and were dropped; "
            "check the energy, the base distribution and the kernel's step size",
            SamplingWarning,
            stacklevel=2,
        )
    log_w = jnp.where(finite, log_w, -jnp.inf)
    log_z = _log_mean_exp(log_w)
    rel = jnp.exp(log_w - jax.scipy.special.logsumexp(log_w)) * num_chains  # w / mean(w)
    ess = float(jnp.sum(rel) ** 2 / jnp.sum(rel**2))
    if stderr_method == "delta":
        stderr = float(jnp.std(rel, ddof=1) / math.sqrt(num_chains))
    else:
        idx = jax.random.randint(key_boot, (num_bootstrap, num_chains), 0, num_chains)
        stderr = float(jnp.std(jax.vmap(_log_mean_exp)(log_w[idx]), ddof=1))
    return AISResult(
        log_z=float(log_z),
        stderr=stderr,
        log_weights=np.asarray(log_w),
        ess=ess,
        acceptance_rate=np.asarray(acc),
        betas=np.asarray(betas),
        positions=positions,
        num_dropped=num_dropped,
    )


def _betas(schedule: str | Any, num_temps: int) -> np.ndarray:
    if isinstance(schedule, str):
        return annealing_schedule(num_temps, schedule)
    betas = np.asarray(schedule, dtype=float)
    if betas.ndim != 1 or betas.size < 2 or betas[0] != 0.0 or betas[-1] != 1.0 \
            or np.any(np.diff(betas) <= 0):
        raise ValueError("schedule array must increase strictly from 0 to 1")
    return betas


@jax.jit(static_argnames=("num_steps_per_temp",))
def _anneal(pot: Potential, base: Any, mcmc: Kernel, x0: Array, betas: Array,
            rng_key: PRNGKey, num_steps_per_temp: int) -> tuple[Array, Array, Array]:
    """Run the particles along the path; returns final positions, log weights and the
    mean acceptance rate at each temperature."""
    num_chains = x0.shape[0]

    def log_base(x: Array) -> Array:
        return jnp.sum(base.log_prob(x))

    def log_ratio(x: Array) -> Array:
        return pot.logdensity_fn(x) - log_base(x)

    def body(carry, xs):
        x, log_w = carry
        beta_prev, beta, key = xs
        log_w = log_w + (beta - beta_prev) * jax.vmap(log_ratio)(x)

        def tempered(y: Array) -> Array:
            return log_base(y) + beta * log_ratio(y)

        states, infos = run_chains(mcmc, tempered, x, jax.random.split(key, num_steps_per_temp))
        return (states.position, log_w), jnp.mean(infos.acceptance_rate)

    keys = jax.random.split(rng_key, betas.shape[0] - 1)
    init = (x0, jnp.zeros(num_chains, x0.dtype))
    (x, log_w), acc = jax.lax.scan(body, init, (betas[:-1], betas[1:], keys))
    return x, log_w, acc
