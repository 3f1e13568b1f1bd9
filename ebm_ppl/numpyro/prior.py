r"""Prior and prior predictive draws of NumPyro models whose priors are learned energies.

:class:`~ebm_ppl.numpyro.EnergyDistribution` cannot be sampled directly (its density
:math:`e^{-E(x)/T}` is unnormalised), so NumPyro's ``Predictive(model, num_samples=...)``
raises on it. :func:`sample_prior` splits the prior:

.. math::

    p(z_E, z_O, y) = p_E(z_E)\; p(z_O \mid z_E)\; p(y \mid z_E, z_O),

where :math:`z_E` are the EnergyDistribution sites (their ``params`` and ``temperature``
do not depend on latent sites: checked, otherwise :math:`Z` would vary and the model
needs the exchange algorithm), drawn jointly by MCMC (:func:`ebm_ppl.sample` on a
model made of these sites only), and :math:`z_O, y` the ordinary latent sites and the
observations, drawn ancestrally given each MCMC draw
(:class:`numpyro.infer.Predictive` with the observations released). Observed
EnergyDistribution sites are drawn by the same MCMC (their law is fixed).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import arviz as az
import jax
import numpy as np
import numpyro
from numpyro.handlers import seed as seed_handler
from numpyro.handlers import substitute, trace
from numpyro.infer import Predictive, init_to_uniform

from ebm_ppl._types import PRNGKey
from ebm_ppl._validation import as_key, check_int
from ebm_ppl.kernels import nuts
from ebm_ppl.kernels.base import Kernel
from ebm_ppl.model.distribution import check_normalisers, energy_sites
from ebm_ppl.model.groups import dataset_of, model_dims, release_observations
from ebm_ppl.potential import Potential
from ebm_ppl.sampling import sample

__all__ = ["sample_prior"]

#: Initial step size of the default NUTS kernel (adapted during warm-up).
_DEFAULT_STEP_SIZE = 0.1


def _default_kernel() -> Kernel:
    return nuts(_DEFAULT_STEP_SIZE)


def _energy_prior(site_fns: dict[str, Any]) -> Callable[[], None]:
    """A model made of the EnergyDistribution sites alone (their joint prior)."""

    def energy_prior() -> None:
        for name, fn in site_fns.items():
            numpyro.sample(name, fn)

    return energy_prior


def _energy_draws(
    site_fns: dict[str, Any], kernel: Kernel, rng_key: PRNGKey, **options: Any
) -> tuple[dict[str, np.ndarray], Any]:
    """MCMC draws ``{site: (chain, draw, ...)}`` of the energy sites, and the run's stats."""
    pot = Potential.from_model(_energy_prior(site_fns))
    idata = sample(pot, kernel, seed=rng_key, **options)
    draws = {name: np.asarray(idata.posterior[name].values) for name in site_fns}
    return draws, idata.sample_stats


def sample_prior(
    model: Callable,
    *model_args: Any,
    kernel: Kernel | None = None,
    num_samples: int = 1000,
    seed: int | PRNGKey = 0,
    num_warmup: int = 1000,
    num_chains: int = 4,
    constant_data: Mapping[str, Any] | None = None,
    coords: Mapping[str, Any] | None = None,
    dims: Mapping[str, list[str]] | None = None,
    progress: bool = False,
    **model_kwargs: Any,
) -> Any:
    r"""Draw the prior and the prior predictive of a NumPyro model into ArviZ groups.

    EnergyDistribution sites are drawn by MCMC (``kernel``), every other site
    ancestrally given them (module docstring):

    .. math:: z_E \sim_{\text{MCMC}} p_E, \quad z_O \sim p(z_O \mid z_E), \quad
              \tilde y \sim p(y \mid z_E, z_O).

    Parameters
    ----------
    model
        A NumPyro model.
    *model_args, **model_kwargs
        Its arguments. Sites observed in this call (``obs=`` not None) make the prior
        predictive; pass the data to get ``observed_data`` for
        ``az.plot_ppc(idata, group="prior")``.
    kernel
        An :mod:`ebm_ppl.kernels` kernel for the EnergyDistribution sites; default
        ``nuts(0.1)`` (step size and mass matrix adapted during warm-up).
    num_samples
        Draws per chain (MCMC) or in all (a model without EnergyDistribution sites).
    seed
        Integer seed or ``jax.random`` key.
    num_warmup, num_chains, progress
        Passed to :func:`ebm_ppl.sample` for the MCMC part (not to the model).
    constant_data, coords, dims
        As in :func:`arviz.from_numpyro`; ``dims`` defaults to the model's plates.

    Returns
    -------
    arviz.InferenceData
        ``prior`` (latent and deterministic sites), ``prior_predictive`` (observed
        sites), ``observed_data``, ``constant_data`` when given, and
        ``sample_stats_prior`` (the MCMC run's stats) when MCMC was used. Dims are
        ``(chain, draw, ...)``: ``(num_chains, num_samples)`` with MCMC, ``(1,
        num_samples)`` otherwise (as ``az.from_numpyro(prior=...)``).

    Raises
    ------
    ebm_ppl.IntractableNormaliserError
        If an EnergyDistribution site's ``params`` or ``temperature`` depend on latent
        sites (its prior has no fixed normaliser).
    ValueError
        For invalid counts.

    Examples
    --------
    >>> # def model(y=None):
    >>> #     z = numpyro.sample("z", EnergyDistribution(energy, params, event_shape=(2,)))
    >>> #     numpyro.sample("y", dist.Normal(z, 1).to_event(1), obs=y)
    >>> # idata = ebm_ppl.sample_prior(model, y_observed)
    >>> # az.plot_ppc(idata, group="prior")
    """
    if not callable(model):
        raise TypeError(f"model must be callable, got {type(model).__name__}")
    num_samples = check_int("num_samples", num_samples, 1)
    num_chains = check_int("num_chains", num_chains, 1)
    key_trace, key_mcmc, key_draw = jax.random.split(as_key(seed, "seed"), 3)
    check_normalisers(model, model_args, model_kwargs, rng_key=key_trace)
    model_trace = trace(
        substitute(seed_handler(model, key_trace), substitute_fn=init_to_uniform)
    ).get_trace(*model_args, **model_kwargs)
    sites = {
        name: site for name, site in model_trace.items()
        if site["type"] in ("sample", "deterministic")
    }
    observed = {n for n, s in sites.items() if s["type"] == "sample" and s["is_observed"]}
    energies = set(energy_sites(model_trace))
    stats = None
    if energies:
        site_fns = {name: model_trace[name]["fn"] for name in sorted(energies)}
        draws, stats = _energy_draws(
            site_fns, kernel or _default_kernel(), key_mcmc, num_samples=num_samples,
            num_warmup=num_warmup, num_chains=num_chains, progress=progress,
        )
        predictive = Predictive(
            release_observations(model, frozenset(observed - energies)),
            posterior_samples=draws, return_sites=list(sites), batch_ndims=2, parallel=True,
        )
    else:
        predictive = Predictive(
            release_observations(model, frozenset(observed)), num_samples=num_samples,
            return_sites=list(sites), parallel=True,
        )
    # one compiled program (eager, each primitive of the model would compile on its own)
    draw = jax.jit(lambda key: predictive(key, *model_args, **model_kwargs))
    values = {k: np.asarray(v) for k, v in draw(key_draw).items()}
    if not energies:
        values = {k: v[None] for k, v in values.items()}
    return _prior_groups(
        model, model_args, model_kwargs, values, observed, model_trace, stats,
        constant_data=constant_data, coords=coords, dims=dims,
    )


def _prior_groups(
    model: Callable, args: tuple, kwargs: dict, values: dict[str, np.ndarray],
    observed: set[str], model_trace: dict, stats: Any, *, constant_data: Any, coords: Any,
    dims: Any,
) -> Any:
    """``prior`` / ``prior_predictive`` / ``observed_data`` ... as an InferenceData."""
    latent = {k: v for k, v in values.items() if k not in observed}
    first = {k: v[0, 0] for k, v in latent.items()}
    dims = dict(dims) if dims is not None else model_dims(model, args, kwargs, first)
    coords = dict(coords) if coords is not None else None
    groups = {"prior": dataset_of(latent, dims, coords)}
    if observed:
        groups["prior_predictive"] = dataset_of(
            {k: values[k] for k in sorted(observed)}, dims, coords
        )
        groups["observed_data"] = dataset_of(
            {k: model_trace[k]["value"] for k in sorted(observed)}, dims, coords,
            default_dims=[],
        )
    if constant_data is not None:
        groups["constant_data"] = dataset_of(constant_data, dims, coords, default_dims=[])
    if stats is not None:
        groups["sample_stats_prior"] = stats
    return az.InferenceData(**groups)
