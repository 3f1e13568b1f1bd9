r"""Adaptive tempered sequential Monte Carlo (SMC): draws from and :math:`\log Z` of a target.

For an unnormalised density :math:`\tilde p(x) = \exp(\text{logdensity}(x))` (that is
:math:`\exp(-E(x)/T)`), :math:`Z = \int \tilde p(x)\,dx`. A population of :math:`N`
particles moves from a normalised base :math:`p_0` to the target along the geometric path

.. math::

    \log \pi_\beta(x) = (1 - \beta) \log p_0(x) + \beta \log \tilde p(x),
    \qquad 0 = \beta_0 < \beta_1 < \dots < \beta_K = 1,

where each :math:`\beta_t` is chosen on the fly so that the incremental weights keep a
fixed effective sample size; at every stage the particles are reweighted, resampled and
moved by an :mod:`ebm_ppl.kernels` kernel that leaves :math:`\pi_{\beta_t}` invariant.
Unlike annealed importance sampling (:mod:`ebm_ppl.diagnostics.ais`), resampling keeps
the particles on the modes that carry the mass, so the final particles are (equally
weighted) draws from the target, modes in the right proportions, as well as a
:math:`\log Z` estimate.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, NamedTuple

import arviz
import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist

from ebm_ppl._types import Array, PRNGKey
from ebm_ppl._validation import as_key, check_int, check_positive
from ebm_ppl.diagnostics._samples import position_shape
from ebm_ppl.diagnostics.smc_run import SMCRun, tempered_smc
from ebm_ppl.errors import SamplingWarning
from ebm_ppl.inference_data import run_attrs, to_inference_data
from ebm_ppl.kernels.base import Kernel
from ebm_ppl.kernels.blackjax import mala
from ebm_ppl.potential import Potential

__all__ = ["SMCResult", "SMCRun", "smc_log_z", "tempered_smc", "DEFAULT_BASE_SCALE"]

#: Standard deviation of the default base ``Normal(0, 5)`` on every coordinate: wide
#: enough to cover targets of scale a few units around the origin; the adaptive
#: schedule spends more stages on a base that is too wide, never fails for one that
#: is wide, while a base that misses a mode can never find it.
DEFAULT_BASE_SCALE = 5.0


class SMCResult(NamedTuple):
    r"""Tempered SMC estimate of :math:`\log Z` and draws, over ``num_runs`` runs.

    Attributes
    ----------
    log_z
        :math:`\log \tfrac1R \sum_r \hat Z_r` (log-mean-exp of the runs' estimates, the
        log of an unbiased estimate of :math:`Z`); NaN when a run did not reach
        :math:`\beta = 1` within ``max_stages``.
    log_z_se
        Standard error of ``log_z`` from the independent runs:
        :math:`\mathrm{sd}_r(\log \hat Z_r) / \sqrt R` (``ddof=1``, so it has
        :math:`R - 1` degrees of freedom: use Student-t quantiles for intervals).
    particles
        Final particles ``(num_runs, num_particles, *shape)``.
    logdensity
        ``logdensity`` of the final particles ``(num_runs, num_particles)``.
    betas
        Temperature paths ``(num_runs, max(num_stages) + 1)``, NaN-padded after a
        shorter run's end.
    ess
        ESS (a count) of each stage's incremental weights,
        ``(num_runs, max(num_stages))``, NaN-padded.
    acceptance
        Mean acceptance rate of each stage's mutation steps, NaN-padded as ``ess``.
    num_stages
        Number of stages of each run, ``(num_runs,)``.
    log_z_runs
        :math:`\log \hat Z_r` of each run, ``(num_runs,)``.
    num_dropped
        Particle-stages, over all runs, with a NaN or :math:`+\infty` log density ratio
        (given weight 0; a warning says how many).
    """

    log_z: float
    log_z_se: float
    particles: Array
    logdensity: np.ndarray
    betas: np.ndarray
    ess: np.ndarray
    acceptance: np.ndarray
    num_stages: np.ndarray
    log_z_runs: np.ndarray
    num_dropped: int = 0

    @property
    def stderr(self) -> float:
        """Alias of :attr:`log_z_se` (the name :class:`~ebm_ppl.diagnostics.AISResult` uses)."""
        return self.log_z_se

    def to_inference_data(self) -> arviz.InferenceData:
        """The final particles as ``arviz.InferenceData``: ``posterior["x"]`` with dims
        ``(chain, draw, x_dim_0, ...)``, chain = run and draw = particle, and
        ``sample_stats["lp"]`` their log density (what ``arviz.from_dict`` builds).

        Particles of one run are correlated through resampling, so ArviZ's ESS of a
        chain is not a within-run ESS; between-run statistics (R-hat) are meaningful.
        """
        config = {
            "method": "tempered_smc",
            "log_z": self.log_z,
            "log_z_se": self.log_z_se,
            "num_stages": self.num_stages.tolist(),
        }
        return to_inference_data(
            posterior={"x": np.asarray(self.particles)},
            sample_stats={"lp": np.asarray(self.logdensity)},
            attrs=run_attrs(config),
        )

    def __str__(self) -> str:
        dropped = f", {self.num_dropped} dropped" if self.num_dropped else ""
        runs, particles = self.logdensity.shape
        return (
            f"SMC log Z = {self.log_z:.4f} ± {self.log_z_se:.4f} ({runs} runs x "
            f"{particles} particles, {int(self.num_stages.min())}-"
            f"{int(self.num_stages.max())} stages{dropped})"
        )


@jax.jit(static_argnames=("num_particles", "shape", "num_mcmc_steps", "max_stages"))
def _run_many(pot: Potential, base: Any, kernel: Kernel, keys: PRNGKey, target_ess: Array,
              num_particles: int, shape: tuple[int, ...], num_mcmc_steps: int,
              max_stages: int) -> SMCRun:
    """``num_runs`` independent runs (one per key) under ``vmap``, compiled once per
    static configuration; ``target_ess`` is traced, so changing it does not retrace."""
    def one(key: PRNGKey) -> SMCRun:
        return tempered_smc(key, pot.logdensity_fn, base, kernel, num_particles=num_particles,
                            shape=shape, target_ess=target_ess, num_mcmc_steps=num_mcmc_steps,
                            max_stages=max_stages)

    return jax.vmap(one)(keys)


def _resolve_kernel(kernel: str | Kernel, step_size: float) -> Kernel:
    if isinstance(kernel, Kernel):
        if not kernel.exact:
            warnings.warn(
                f"kernel {kernel.name!r} has no Metropolis correction, so it does not leave "
                "each tempered target invariant and the SMC estimate of log Z is biased by "
                "its step size; use 'mala' or another Metropolis-adjusted kernel",
                SamplingWarning,
                stacklevel=3,
            )
        return kernel
    if kernel == "mala":
        return mala(check_positive("step_size", step_size))
    raise ValueError(f"kernel must be 'mala' or an ebm_ppl.kernels kernel, got {kernel!r}")


def _check_target_ess(value: Any) -> float:
    message = f"target_ess must be a number in (0, 1), got {value!r}"
    if isinstance(value, (bool, str, bytes)):
        raise ValueError(message)
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(message) from None
    if not 0.0 < v < 1.0:  # also refuses NaN
        raise ValueError(message)
    return v


def _pad(path: np.ndarray, width: int) -> np.ndarray:
    return np.asarray(path[:, :width], dtype=float)


def smc_log_z(
    pot: Potential,
    base: Any = None,
    *,
    num_particles: int = 1000,
    kernel: str | Kernel = "mala",
    step_size: float = 0.1,
    seed: int | PRNGKey = 0,
    target_ess: float = 0.5,
    num_mcmc_steps: int = 10,
    num_runs: int = 4,
    max_stages: int = 500,
    shape: tuple[int, ...] | None = None,
) -> SMCResult:
    r"""Estimate :math:`\log Z` of ``pot`` and draw from it by adaptive tempered SMC.

    :math:`Z = \int \exp(\text{logdensity}(x))\,dx = \int e^{-E(x)/T} dx` (the normaliser
    of the potential's log density, temperature included). ``num_runs`` independent runs
    (``vmap``) give the estimate and its standard error.

    Parameters
    ----------
    pot
        Target potential (array positions).
    base
        Normalised NumPyro distribution :math:`p_0` that covers the target, of shape
        ``()`` (broadcast) or the position's; default ``Normal(0, 5)`` on every
        coordinate (:data:`DEFAULT_BASE_SCALE`). Its ``log_prob`` is summed over the
        position's elements.
    num_particles
        Number :math:`N` of particles per run.
    kernel
        ``"mala"`` or any :mod:`ebm_ppl.kernels` kernel: the mutation step, applied to
        the tempered log density :math:`\log \pi_{\beta_t}` with fixed hyper-parameters.
    step_size
        Step size of the built-in ``"mala"`` kernel (ignored for a kernel object).
    seed
        Integer seed or key.
    target_ess
        Fraction :math:`\rho` of :math:`N` that the ESS of each stage's incremental
        weights is held at; larger means more, smaller stages.
    num_mcmc_steps
        Kernel steps per particle and stage.
    num_runs
        Number :math:`R \ge 2` of independent runs (the standard error needs two).
    max_stages
        Size of the buffers that record the path; a run still below :math:`\beta = 1`
        after this many stages stops, and ``log_z`` is NaN (with a warning).
    shape
        Position shape, when neither ``pot.example`` nor ``base`` gives it.

    Returns
    -------
    SMCResult
        ``log_z``, ``log_z_se``, the final ``particles`` (``to_inference_data()``
        converts them), and the paths of :math:`\beta`, ESS and acceptance.

    Raises
    ------
    TypeError
        If ``pot`` is not a :class:`~ebm_ppl.Potential` or ``base`` not a distribution.
    ValueError
        For any other invalid argument.

    Warns
    -----
    SamplingWarning
        When a run hits ``max_stages``, when particles had a NaN log density, or for a
        kernel without a Metropolis correction.

    Notes
    -----
    Stage :math:`t` picks :math:`\beta_t = \beta_{t-1} + \delta_t` by bisection on

    .. math::

        \mathrm{ESS}_t(\delta) = \frac{\left(\sum_i w_t^{(i)}\right)^2}
        {\sum_i \left(w_t^{(i)}\right)^2} = \rho N, \qquad
        w_t^{(i)} = \frac{\pi_{\beta_t}(x^{(i)})}{\pi_{\beta_{t-1}}(x^{(i)})}
        = \exp\!\big(\delta\,[\log \tilde p(x^{(i)}) - \log p_0(x^{(i)})]\big)

    (Jasra et al. 2011; :math:`\delta = 1 - \beta_{t-1}` when that already keeps the ESS
    above :math:`\rho N`), then resamples systematically and applies ``num_mcmc_steps``
    transitions leaving :math:`\pi_{\beta_t}` invariant. As the particles are resampled
    at every stage, each stage starts from equal weights and

    .. math::

        \hat Z = \prod_{t=1}^K \frac1N \sum_{i=1}^N w_t^{(i)}

    is an unbiased estimate of :math:`Z` (Del Moral, Doucet & Jasra 2006) for a fixed
    schedule; the adaptive schedule adds a bias that vanishes as :math:`N \to \infty`
    (Beskos et al. 2016). :math:`\log \hat Z` is biased downwards by about half its
    variance (Jensen). The final particles are equally weighted, approximately
    :math:`\tilde p / Z`-distributed draws; modes the MCMC kernel cannot cross still get
    the right mass, through the weights, as long as the base puts particles on each.

    The standard error is the between-run :math:`\mathrm{sd}(\log \hat Z_r)/\sqrt R`;
    with the default :math:`R = 4` it is itself rough (3 degrees of freedom). The
    kernel's hyper-parameters are not adapted across stages: a step size that suits the
    target (:math:`\beta = 1`) is usually also accepted at the wider early stages.

    References
    ----------
    Del Moral, Doucet & Jasra (2006), *Sequential Monte Carlo samplers*, JRSS B 68,
    https://arxiv.org/abs/cond-mat/0212648
    Jasra, Stephens, Doucet & Tsagaris (2011), *Inference for Lévy-driven stochastic
    volatility models via adaptive sequential Monte Carlo*, Scand. J. Stat. 38,
    https://doi.org/10.1111/j.1467-9469.2010.00723.x
    Beskos, Jasra, Kantas & Thiery (2016), *On the convergence of adaptive sequential
    Monte Carlo methods*, Ann. Appl. Probab. 26, https://arxiv.org/abs/1306.6462

    Examples
    --------
    >>> import jax.numpy as jnp, ebm_ppl
    >>> pot = ebm_ppl.Potential.from_energy(lambda x: 0.5 * jnp.sum(x**2), example=jnp.zeros(2))
    >>> res = smc_log_z(pot, num_particles=200, step_size=0.5, num_mcmc_steps=2)
    >>> bool(abs(res.log_z - jnp.log(2 * jnp.pi)) < 0.2), res.particles.shape
    (True, (4, 200, 2))
    >>> res.to_inference_data().posterior["x"].dims
    ('chain', 'draw', 'x_dim_0')
    """
    if not isinstance(pot, Potential):
        raise TypeError(f"pot must be an ebm_ppl.Potential, got {type(pot).__name__}")
    if base is not None and not isinstance(base, dist.Distribution):
        raise TypeError(f"base must be a NumPyro distribution, got {type(base).__name__}")
    num_particles = check_int("num_particles", num_particles, 2)
    num_mcmc_steps = check_int("num_mcmc_steps", num_mcmc_steps, 1)
    num_runs = check_int("num_runs", num_runs, 2)
    max_stages = check_int("max_stages", max_stages, 1)
    target_ess = _check_target_ess(target_ess)
    shape = position_shape(pot, base, shape, "smc_log_z")
    base = dist.Normal(0.0, DEFAULT_BASE_SCALE) if base is None else base
    dist_shape = tuple(base.batch_shape) + tuple(base.event_shape)
    if dist_shape not in ((), shape):
        raise ValueError(f"base has shape {dist_shape}, expected () or the position shape {shape}")
    mcmc = _resolve_kernel(kernel, step_size)
    keys = jax.random.split(as_key(seed), num_runs)
    out = _run_many(pot, base, mcmc, keys, jnp.asarray(target_ess), num_particles, shape,
                    num_mcmc_steps, max_stages)
    num_stages = np.asarray(out.num_stages)
    final_beta = np.asarray(out.betas)[np.arange(num_runs), num_stages]
    num_dropped = int(np.sum(out.num_dropped))
    if num_dropped:
        warnings.warn(
            f"{num_dropped} SMC particle-stages had a NaN or +inf log density ratio "
            "(a failure of the energy) and were given weight 0; check the energy and "
            "the base distribution",
            SamplingWarning,
            stacklevel=2,
        )
    log_z_runs = np.asarray(out.log_z, dtype=float)
    if np.any(final_beta < 1.0):
        warnings.warn(
            f"{int(np.sum(final_beta < 1.0))} of {num_runs} SMC runs stopped below beta = 1 "
            f"(lowest {float(final_beta.min()):.3g}) after max_stages={max_stages} stages, so "
            "log Z is unavailable (NaN); raise max_stages or lower target_ess",
            SamplingWarning,
            stacklevel=2,
        )
        log_z, log_z_se = math.nan, math.nan
    else:
        log_z = float(np.logaddexp.reduce(log_z_runs) - math.log(num_runs))
        log_z_se = float(np.std(log_z_runs, ddof=1) / math.sqrt(num_runs))
    width = int(num_stages.max())
    return SMCResult(
        log_z=log_z,
        log_z_se=log_z_se,
        particles=out.particles,
        logdensity=np.asarray(out.logdensity),
        betas=_pad(np.asarray(out.betas), width + 1),
        ess=_pad(np.asarray(out.ess), width),
        acceptance=_pad(np.asarray(out.acceptance), width),
        num_stages=num_stages,
        log_z_runs=log_z_runs,
        num_dropped=num_dropped,
    )
