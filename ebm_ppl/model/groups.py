r"""The ArviZ groups of a NumPyro model's posterior, as :func:`arviz.from_numpyro` builds them.

:func:`ebm_ppl.sample` on a ``Potential.from_model`` potential stores the constrained
sample sites and the deterministic sites in ``posterior``. :func:`add_model_groups` adds
what ``az.from_numpyro(mcmc)`` adds, with the same variable names, dims and coords:

* ``log_likelihood``: :math:`\log p(y_i \mid \theta_s)` per observed site, pointwise, per
  draw (:func:`numpyro.infer.util.log_likelihood`), so ``az.loo`` and ``az.waic`` work;
* ``observed_data`` (the observed sites' values) and ``constant_data`` (when given);
* ``posterior_predictive`` on request (:func:`add_posterior_predictive`):
  :math:`\tilde y_s \sim p(y \mid \theta_s)` for each draw :math:`\theta_s`
  (:class:`numpyro.infer.Predictive` on the model with its observations released), so
  ``az.plot_ppc`` works.

Dims follow the model's plates (ArviZ's own ``infer_dims``); the posterior is re-labelled
with them. Observed :class:`~ebm_ppl.numpyro.EnergyDistribution` sites have an
unnormalised ``log_prob``: their pointwise log likelihood is off by the constant
:math:`\log Z` (PSIS weights and ``loo`` standard errors are unaffected; ``elpd`` values
compared across models are not), and they cannot be drawn ancestrally, so the
posterior predictive leaves them out with a warning.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any

import arviz as az
import jax
import numpy as np
from numpyro.handlers import seed, substitute, trace
from numpyro.infer import Predictive
from numpyro.infer.util import log_likelihood, unconstrain_fn
from numpyro.primitives import Messenger

from ebm_ppl._types import PRNGKey
from ebm_ppl._validation import as_key
from ebm_ppl.errors import SamplingWarning
from ebm_ppl.model.distribution import energy_sites
from ebm_ppl.potential import Potential

__all__ = [
    "add_model_groups",
    "add_posterior_predictive",
    "dataset_of",
    "model_dims",
    "model_parts",
    "release_observations",
    "unconstrained_posterior",
]


# ----------------------------------------------------------------------- the model
def model_parts(pot: Potential) -> tuple[Callable, tuple, dict]:
    """``(model, model_args, model_kwargs)`` of a ``Potential.from_model`` potential.

    Works on a traced potential too (inside ``jit`` the data are tracers).

    Raises
    ------
    ValueError
        If ``pot`` was not built with :meth:`~ebm_ppl.Potential.from_model`.
    """
    if not isinstance(pot, Potential) or pot.kind != "model":
        kind = pot.kind if isinstance(pot, Potential) else type(pot).__name__
        raise ValueError(
            f"pot must be a Potential built with Potential.from_model(model, ...), got {kind!r}"
        )
    return pot.model, pot.model_args, pot.model_kwargs


class release_observations(Messenger):  # noqa: N801 - a NumPyro handler, named like them
    """NumPyro handler: the observed sample sites named in ``names`` (all observed sites
    when ``names`` is None) are drawn from their distribution instead of observed."""

    def __init__(self, fn: Callable | None = None, names: frozenset | None = None) -> None:
        self.names = names
        super().__init__(fn)

    def process_message(self, msg: dict) -> None:
        if msg["type"] == "sample" and msg["is_observed"] and (
            self.names is None or msg["name"] in self.names
        ):
            msg["value"] = None
            msg["is_observed"] = False


def trace_at(model: Callable, args: tuple, kwargs: dict, values: Mapping[str, Any]) -> dict:
    """The model's trace with its latent sites at ``values`` (one draw; never calls an
    EnergyDistribution's ``sample`` when ``values`` holds its site)."""
    return trace(substitute(seed(model, 0), data=dict(values))).get_trace(*args, **kwargs)


def model_dims(
    model: Callable, args: tuple, kwargs: dict, values: Mapping[str, Any]
) -> dict[str, list[str]]:
    """Dims from the model's plates and ``infer={"event_dims": ...}``, as
    :func:`arviz.from_numpyro` infers them (its own ``infer_dims``), traced at ``values``
    (so EnergyDistribution sites, which cannot be sampled, are never drawn)."""
    from arviz.data.io_numpyro import infer_dims

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # init_to_median skipping set sites
        return infer_dims(substitute(model, data=dict(values)), tuple(args), dict(kwargs))


def _first_draw(dataset: Any) -> dict[str, np.ndarray]:
    return {name: np.asarray(dataset[name].values[0, 0]) for name in dataset.data_vars}


def dataset_of(data: Mapping[str, Any], dims: dict, coords: dict | None, **kwargs: Any) -> Any:
    """An xarray Dataset of ``data`` labelled with the model's dims (ArviZ's converter)."""
    from arviz.data.base import dict_to_dataset

    return dict_to_dataset(
        {k: np.asarray(v) for k, v in data.items()}, library=None, coords=coords, dims=dims,
        index_origin=0, **kwargs,
    )


def _relabel(dataset: Any, dims: dict, coords: dict | None) -> Any:
    """The ``(chain, draw, ...)`` dataset with the model's dims (attrs kept)."""
    keep = {"chain": dataset["chain"].values, "draw": dataset["draw"].values, **(coords or {})}
    out = dataset_of({k: dataset[k].values for k in dataset.data_vars}, dims, keep)
    out.attrs = dict(dataset.attrs)
    return out


# ----------------------------------------------------------------------- compiled maps
@jax.jit
def _log_likelihood(pot: Potential, samples: dict) -> dict:
    model, args, kwargs = model_parts(pot)
    return log_likelihood(model, samples, *args, parallel=True, batch_ndims=2, **kwargs)


def _predict(pot: Potential, samples: dict, rng_key: PRNGKey, sites: tuple) -> dict:
    model, args, kwargs = model_parts(pot)
    predictive = Predictive(
        release_observations(model, frozenset(sites)), posterior_samples=samples,
        return_sites=list(sites), batch_ndims=2, parallel=True,
    )
    return predictive(rng_key, *args, **kwargs)


_predict_jit = jax.jit(_predict, static_argnums=3)


@jax.jit
def _unconstrain(pot: Potential, samples: dict) -> dict:
    model, args, kwargs = model_parts(pot)
    return jax.vmap(jax.vmap(lambda p: unconstrain_fn(model, args, kwargs, p)))(samples)


def _check_latent(dataset: Any, pot: Potential, group: str = "posterior") -> None:
    names = sorted(pot.example)
    missing = [n for n in names if n not in dataset.data_vars]
    if missing:
        raise ValueError(
            f"idata.{group} must hold the model's latent sites {names}, missing {missing}"
        )


def unconstrained_posterior(idata: Any, pot: Potential, group: str = "posterior") -> dict:
    """The latent sites of ``idata[group]`` mapped back to the potential's unconstrained
    space: ``{site: (chain, draw, ...)}``, the positions ``pot.score`` takes.

    Raises
    ------
    ValueError
        If a latent site of the potential is missing from the group.
    """
    dataset = getattr(idata, group)
    _check_latent(dataset, pot, group)
    samples = {n: np.asarray(dataset[n].values) for n in pot.example}
    return {k: np.asarray(v) for k, v in _unconstrain(pot, samples).items()}


# ----------------------------------------------------------------------- public
def _observed(model_trace: dict) -> dict[str, Any]:
    return {
        name: site["value"] for name, site in model_trace.items()
        if site["type"] == "sample" and site["is_observed"]
    }


def add_model_groups(
    idata: Any,
    pot: Potential,
    *,
    constant_data: Mapping[str, Any] | None = None,
    coords: Mapping[str, Any] | None = None,
    dims: Mapping[str, list[str]] | None = None,
    log_likelihood: bool = True,
    posterior_predictive: bool = False,
    seed: int | PRNGKey = 0,
) -> Any:
    """Add the groups of :func:`arviz.from_numpyro` to a model posterior from :func:`sample`.

    Parameters
    ----------
    idata
        ``ebm_ppl.sample(pot, ...)`` output: ``posterior`` holds the constrained and
        deterministic sites, ``(chain, draw, ...)``.
    pot
        The ``Potential.from_model(model, *args, **kwargs)`` that was sampled.
    constant_data
        Name -> array stored as ``constant_data`` (as in ``az.from_numpyro``).
    coords, dims
        As in ``az.from_numpyro``; ``dims`` defaults to the model's plates.
    log_likelihood
        Whether to add the pointwise ``log_likelihood`` group.
    posterior_predictive
        Whether to add ``posterior_predictive`` (see :func:`add_posterior_predictive`).
    seed
        Integer seed or key of the posterior predictive draws.

    Returns
    -------
    arviz.InferenceData
        A new InferenceData: ``posterior`` (and ``warmup_posterior``) re-labelled with
        the model's dims, plus ``log_likelihood``, ``observed_data`` (when the model has
        observed sites), ``constant_data`` and ``posterior_predictive`` as asked.

    Examples
    --------
    >>> # idata = add_model_groups(ebm_ppl.sample(pot, kernel), pot)
    >>> # az.loo(idata)
    """
    model, args, kwargs = model_parts(pot)
    _check_latent(idata.posterior, pot)
    first = _first_draw(idata.posterior)
    dims = dict(dims) if dims is not None else model_dims(model, args, kwargs, first)
    coords = dict(coords) if coords is not None else None
    groups = {g: getattr(idata, g) for g in idata.groups()}
    for group in ("posterior", "warmup_posterior"):
        if group in groups:
            groups[group] = _relabel(groups[group], dims, coords)
    observed = _observed(trace_at(model, args, kwargs, first))
    if observed:
        groups["observed_data"] = dataset_of(observed, dims, coords, default_dims=[])
        if log_likelihood:
            samples = {k: np.asarray(v) for k, v in _samples(idata.posterior).items()}
            values = _log_likelihood(pot, samples)
            groups["log_likelihood"] = dataset_of(values, dims, coords, skip_event_dims=True)
    if constant_data is not None:
        groups["constant_data"] = dataset_of(constant_data, dims, coords, default_dims=[])
    out = az.InferenceData(**groups, attrs=dict(idata.attrs))
    if posterior_predictive:
        out = add_posterior_predictive(out, pot, seed, dims=dims, coords=coords)
    return out


def _samples(dataset: Any) -> dict[str, np.ndarray]:
    return {name: dataset[name].values for name in dataset.data_vars}


def add_posterior_predictive(
    idata: Any,
    pot: Potential,
    seed: int | PRNGKey = 0,
    *,
    dims: Mapping[str, list[str]] | None = None,
    coords: Mapping[str, Any] | None = None,
) -> Any:
    r"""Add ``posterior_predictive``: one replicate of each observed site per draw.

    .. math:: \tilde y_{s} \sim p(y \mid \theta_s), \qquad \theta_s \sim p(\theta \mid y)

    drawn with :class:`numpyro.infer.Predictive` on the model whose observations are
    released (:class:`release_observations`), one draw at a time under ``vmap``.

    Parameters
    ----------
    idata
        A model posterior (:func:`ebm_ppl.sample` or :func:`add_model_groups` output).
    pot
        The ``Potential.from_model`` potential that was sampled.
    seed
        Integer seed or ``jax.random`` key.
    dims, coords
        As in ``az.from_numpyro``; ``dims`` defaults to the model's plates.

    Returns
    -------
    arviz.InferenceData
        A new InferenceData with ``posterior_predictive`` (dims ``(chain, draw, ...)``).

    Raises
    ------
    ValueError
        If the model has no observed site that can be drawn ancestrally.

    Warns
    -----
    SamplingWarning
        For observed EnergyDistribution sites, left out (they need MCMC; their law does
        not depend on the posterior when their params are fixed: draw them with
        :func:`ebm_ppl.sample_prior`).
    """
    key = as_key(seed, "seed")
    model, args, kwargs = model_parts(pot)
    _check_latent(idata.posterior, pot)
    first = _first_draw(idata.posterior)
    model_trace = trace_at(model, args, kwargs, first)
    observed = _observed(model_trace)
    energies = sorted(set(observed) & set(energy_sites(model_trace)))
    if energies:
        warnings.warn(
            f"observed EnergyDistribution site(s) {energies} left out of "
            "posterior_predictive: an unnormalised energy cannot be drawn ancestrally",
            SamplingWarning,
            stacklevel=2,
        )
    sites = tuple(sorted(set(observed) - set(energies)))
    if not sites:
        raise ValueError(
            "the model must have an observed site (numpyro.sample(..., obs=...)) with an "
            f"ordinary distribution for a posterior predictive, got observed sites {sorted(observed)}"
        )
    dims = dict(dims) if dims is not None else model_dims(model, args, kwargs, first)
    samples = {k: np.asarray(v) for k, v in _samples(idata.posterior).items()}
    draws = _predict_jit(pot, samples, key, sites)
    groups = {g: getattr(idata, g) for g in idata.groups()}
    groups["posterior_predictive"] = dataset_of(draws, dims, dict(coords) if coords else None)
    return az.InferenceData(**groups, attrs=dict(idata.attrs))
