r"""End-of-run checks of :func:`ebm_ppl.sample`: a :class:`~ebm_ppl.SamplingWarning` for
each way a finished run can be wrong without failing, naming the chains and the fix (as
Stan and NumPyro print after sampling).

Checks (all on the kept draws):

* **blown-up chains** — a draw that is not finite or has :math:`|x| > 10^{10}`
  (:data:`HUGE`; ULA with a too-large step from a far start freezes near
  :math:`10^{11}`, where its next step overflows);
* **stuck chains** — a chain whose position never changed over at least
  :data:`MIN_DRAWS_STUCK` kept draws (every proposal rejected or every step divergent);
* **divergences** — more than :data:`MAX_DIVERGENT_FRACTION` (1 %) of the kept
  transitions divergent;
* **R-hat** — ArviZ's rank-normalised split :math:`\hat R` above :data:`MAX_RHAT`
  (1.05) for some element of the first :data:`MAX_RHAT_CHAINS` (64) chains, with at least 2 chains of at least :data:`MIN_DRAWS_RHAT`
  draws (shorter runs give an :math:`\hat R` too noisy to judge);
* **short window warm-up** — :func:`warn_short_warmup`: window adaptation with fewer
  than :data:`~ebm_ppl.adaptation.MIN_WINDOW_WARMUP` (150) warm-up steps, Stan's
  75 + 25 + 50 default windows (shorter warm-ups squeeze the windows, and under 20
  steps the mass matrix is not adapted at all).

Silence them with ``warnings.simplefilter("ignore", ebm_ppl.SamplingWarning)``.
"""

from __future__ import annotations

import warnings

import arviz as az
import numpy as np
import xarray as xr

from ebm_ppl.adaptation import MIN_WINDOW_WARMUP
from ebm_ppl.errors import SamplingWarning

__all__ = [
    "HUGE",
    "MAX_DIVERGENT_FRACTION",
    "MAX_RHAT",
    "MAX_RHAT_CHAINS",
    "MIN_DRAWS_RHAT",
    "MIN_DRAWS_STUCK",
    "run_problems",
    "warn_run_problems",
    "warn_short_warmup",
]

#: Largest credible magnitude of a draw (float32 overflows near 3e38; a chain this far
#: out has blown up).
HUGE = 1e10
#: Fewest kept draws for an unmoved chain to count as stuck: random-walk MH at its
#: optimal acceptance 0.234 stays put 50 times in a row with probability 0.766**50 ≈ 2e-6.
MIN_DRAWS_STUCK = 50
#: Largest tolerated fraction of divergent transitions.
MAX_DIVERGENT_FRACTION = 0.01
#: Largest tolerated R-hat (Vehtari et al. 2021 recommend 1.01 for final results; 1.05
#: flags runs that have clearly not mixed).
MAX_RHAT = 1.05
#: Fewest draws per chain for the R-hat check.
MIN_DRAWS_RHAT = 100
#: Chains used by the R-hat check (the first ones): rank-normalised R-hat sorts every
#: value, so on 1000 chains it would dominate the fixed cost of a call
#: (benchmarks/profile_fixed_cost.py); 64 chains judge mixing just as well.
MAX_RHAT_CHAINS = 64


def _per_chain(posterior: xr.Dataset, fn) -> np.ndarray:
    """``fn(values (chain, draw, k)) -> (chain,)`` combined with ``|`` over variables."""
    out = np.zeros(posterior.sizes["chain"], bool)
    for var in posterior.data_vars.values():
        values = np.asarray(var.values)
        if not np.issubdtype(values.dtype, np.number):
            continue
        out |= fn(values.reshape(values.shape[0], values.shape[1], -1))
    return out


def _blown_up(values: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return ~np.all(np.isfinite(values) & (np.abs(values) <= HUGE), axis=(1, 2))


def _stuck(values: np.ndarray) -> np.ndarray:
    return np.all(values == values[:, :1], axis=(1, 2))


def _rhat_problem(posterior: xr.Dataset) -> str | None:
    """Message for the worst element with R-hat above the limit, or None (on the first
    :data:`MAX_RHAT_CHAINS` chains)."""
    posterior = posterior.isel(chain=slice(0, MAX_RHAT_CHAINS))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rhat = az.rhat(posterior)
    worst_name, worst_value, worst_index = None, MAX_RHAT, 0
    for name, values in rhat.data_vars.items():
        flat = np.ravel(np.asarray(values, dtype=float))
        if flat.size and np.nanmax(flat, initial=-np.inf) > worst_value:
            worst_name, worst_index = name, int(np.nanargmax(flat))
            worst_value = float(flat[worst_index])
    if worst_name is None:
        return None
    draws = np.asarray(posterior[worst_name].values, dtype=float)
    element = draws.reshape(draws.shape[0], draws.shape[1], -1)[:, :, worst_index]
    means = element.mean(axis=1)
    outlier = int(np.argmax(np.abs(means - np.median(means))))
    return (
        f"R-hat is {worst_value:.3g} (> {MAX_RHAT}) for {worst_name!r}: the chains disagree "
        f"(chain {outlier} most, mean {means[outlier]:.3g} against the median "
        f"{np.median(means):.3g}); run a longer warm-up and more draws, start the chains "
        "elsewhere, or use a better-mixing kernel (the target may be multimodal)"
    )


def run_problems(posterior: xr.Dataset, sample_stats: xr.Dataset) -> list[str]:
    """One message per problem found in a finished run (empty for a healthy run)."""
    problems = []
    num_chains, num_draws = posterior.sizes["chain"], posterior.sizes["draw"]
    blown = np.flatnonzero(_per_chain(posterior, _blown_up)).tolist()
    if blown:
        problems.append(
            f"chain(s) {blown} blew up: draws are not finite or exceed |x| > {HUGE:g}; "
            "use a smaller step size (ULA is unstable above 2/λ_max), start closer to the "
            "mode, or check that the energy is bounded below"
        )
    if num_draws >= MIN_DRAWS_STUCK:
        unmoved = ~_per_chain(posterior, lambda v: ~_stuck(v))
        stuck = [c for c in np.flatnonzero(unmoved).tolist() if c not in blown]
        if stuck:
            problems.append(
                f"chain(s) {stuck} never moved over their {num_draws} draws (every "
                "proposal rejected or divergent); use a smaller step size or proposal "
                "scale, adapt it during warm-up, or start inside the bulk of the target"
            )
    if "diverging" in sample_stats:
        diverging = np.asarray(sample_stats["diverging"].values, bool)
        fraction = float(diverging.mean())
        if fraction > MAX_DIVERGENT_FRACTION:
            counts = diverging.sum(axis=1)
            which = {c: int(n) for c, n in enumerate(counts) if n}
            problems.append(
                f"{100 * fraction:.3g} % of the transitions diverged (> "
                f"{100 * MAX_DIVERGENT_FRACTION:g} %; per chain {which}); the estimates may "
                "be biased: reduce the step size (or raise target_acceptance_rate), "
                "reparameterise, or check the energy for NaN/inf regions"
            )
    if num_chains >= 2 and num_draws >= MIN_DRAWS_RHAT and not blown:
        message = _rhat_problem(posterior)
        if message is not None:
            problems.append(message)
    return problems


def warn_run_problems(posterior: xr.Dataset, sample_stats: xr.Dataset,
                      stacklevel: int = 3) -> None:
    """Issue one :class:`~ebm_ppl.SamplingWarning` per problem of :func:`run_problems`."""
    for message in run_problems(posterior, sample_stats):
        warnings.warn(message, SamplingWarning, stacklevel=stacklevel)


def warn_short_warmup(scheme: str, num_warmup: int, stacklevel: int = 3) -> None:
    """Warn when window adaptation gets fewer than ``MIN_WINDOW_WARMUP`` warm-up steps."""
    if scheme == "window" and 0 < num_warmup < MIN_WINDOW_WARMUP:
        warnings.warn(
            f"num_warmup={num_warmup} is too short for window adaptation of the step size "
            f"and mass matrix (Stan's windows need {MIN_WINDOW_WARMUP}: 75 + 25 + 50 "
            "steps; shorter warm-ups squeeze them, and under 20 steps the mass matrix is "
            f"not adapted); use num_warmup >= {MIN_WINDOW_WARMUP}",
            SamplingWarning,
            stacklevel=stacklevel,
        )
