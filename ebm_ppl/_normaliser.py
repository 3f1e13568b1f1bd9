r"""The normaliser guard: an unnormalised distribution's missing :math:`\log Z` must not
silently bias a posterior.

A distribution whose ``log_prob`` omits a normaliser :math:`Z(\text{params}, T)`
(:class:`UnnormalisedDistribution`; :class:`ebm_ppl.numpyro.EnergyDistribution` is the
one in this package) is harmless while its ``params`` and ``temperature`` are fixed: the
constant cancels in every MCMC acceptance ratio. When they depend on latent sample sites,
:math:`Z` changes with them and every sampler targeting the model's density samples a
wrong posterior. Two checks stop that case
(:class:`~ebm_ppl.errors.IntractableNormaliserError`):

* :func:`check_normalisers` traces the model once and finds, by forward-mode
  differentiation with symbolic zeros (no compute), the unnormalised sites whose
  parameters depend on latent sites; :meth:`ebm_ppl.Potential.from_model` calls it;
* :func:`guard_normaliser` passes parameters through a :func:`jax.custom_jvp` identity
  whose derivative rule raises when a non-zero tangent reaches it (``log_prob`` uses it,
  so NumPyro's own NUTS and HMC stop at their first gradient).

Lives below :mod:`ebm_ppl.potential` (which calls :func:`check_normalisers`) and below
:mod:`ebm_ppl.model` (whose :class:`~ebm_ppl.model.distribution.EnergyDistribution`
subclasses :class:`UnnormalisedDistribution`): it imports neither.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_derivatives import SymbolicZero
from numpyro.distributions.distribution import Distribution
from numpyro.handlers import seed, substitute, trace
from numpyro.infer import init_to_uniform

from ebm_ppl._types import Array, PRNGKey
from ebm_ppl._validation import as_key
from ebm_ppl.errors import IntractableNormaliserError

__all__ = [
    "UnnormalisedDistribution",
    "check_normalisers",
    "energy_sites",
    "guard_normaliser",
    "intractable_sites",
]


class UnnormalisedDistribution(Distribution):
    """A NumPyro distribution whose ``log_prob`` omits a normaliser that depends on its
    ``params`` and ``temperature`` (the two attributes the guard inspects).

    A marker: :func:`energy_sites` and :func:`intractable_sites` look for its instances
    (under NumPyro's ``expand``/``mask``/``to_event`` wrappers).
    """

    params: Any
    temperature: Any


# ---------------------------------------------------------------------- the guard
def _base(fn: Any) -> Any:
    """The distribution under NumPyro wrappers (``expand``, ``mask``, ``to_event``)."""
    while not isinstance(fn, UnnormalisedDistribution) and hasattr(fn, "base_dist"):
        fn = fn.base_dist
    return fn


def _message(names: list[str]) -> str:
    where = (f"EnergyDistribution site(s) {names}" if names
             else "an EnergyDistribution site (run ebm_ppl.Potential.from_model(model, ...) "
                  "to get its name)")
    return (
        f"{where} has params or temperature that depend on latent sample sites: its "
        "log_prob -E_params(x)/T omits the normaliser log Z(params) = "
        "log ∫ exp(-E_params(x)/T) dx, which then varies with those latent sites, so "
        "NUTS, HMC, MH or ULA would sample a wrong posterior; sample this model with "
        "ebm_ppl.numpyro.Exchange(model, ...) (the exchange algorithm), or fix the "
        "params (a trained energy as a prior, or params computed from data only)"
    )


def _site_name(dist: UnnormalisedDistribution) -> list[str]:
    """Best effort: the name of the site whose ``log_prob`` is being differentiated,
    read from NumPyro's ``compute_log_probs`` frame (empty if not found)."""
    frame = inspect.currentframe()
    try:
        while frame is not None:
            site = frame.f_locals.get("site")
            if isinstance(site, dict) and _base(site.get("fn")) is dist:
                return [str(site.get("name"))]
            frame = frame.f_back
    finally:
        del frame
    return []


def _nonzero_tangent_probe(on_tangent: Callable[[], None]) -> Callable[[Any], Any]:
    """An identity on a pytree whose derivative rule calls ``on_tangent`` when a
    non-zero (not symbolically zero) tangent arrives; array leaves only."""

    @jax.custom_jvp
    def probe(leaves: list[Array]) -> list[Array]:
        return leaves

    def rule(primals: tuple, tangents: tuple) -> tuple:
        (leaves,), (dots,) = primals, tangents
        if any(not isinstance(t, SymbolicZero) for t in dots):
            on_tangent()
        dots = [jnp.zeros_like(p) if isinstance(t, SymbolicZero) else t
                for p, t in zip(leaves, dots)]
        return leaves, dots

    probe.defjvp(rule, symbolic_zeros=True)

    def apply(tree: Any) -> Any:
        leaves, treedef = jax.tree.flatten(tree)
        index = [i for i, leaf in enumerate(leaves)
                 if isinstance(leaf, (jax.Array, np.ndarray, float, int))
                 and not isinstance(leaf, bool)
                 and jnp.issubdtype(jnp.result_type(leaf), jnp.inexact)]
        if not index:
            return tree
        out = probe([jnp.asarray(leaves[i]) for i in index])
        for i, new in zip(index, out):
            leaves[i] = new
        return jax.tree.unflatten(treedef, leaves)

    return apply


def guard_normaliser(dist: UnnormalisedDistribution, tree: Any) -> Any:
    """``tree`` unchanged; differentiating through it raises IntractableNormaliserError."""

    def fail() -> None:
        raise IntractableNormaliserError(_message(_site_name(dist)))

    return _nonzero_tangent_probe(fail)(tree)


# ---------------------------------------------------------------------- model checks
def _trace_at(model: Callable, args: tuple, kwargs: dict, rng_key: PRNGKey,
              values: dict | None = None) -> dict:
    """Trace of the model with latent sites at ``values`` (or drawn like
    ``init_to_uniform``: never calls an EnergyDistribution's ``sample``)."""
    if values is None:
        model = substitute(seed(model, rng_key), substitute_fn=init_to_uniform)
    else:
        model = substitute(seed(model, rng_key), data=values)
    return trace(model).get_trace(*args, **kwargs)


def energy_sites(model_trace: dict) -> dict[str, UnnormalisedDistribution]:
    """The unnormalised distribution (an EnergyDistribution) of every sample site of a
    trace (under NumPyro wrappers)."""
    return {
        name: _base(site["fn"]) for name, site in model_trace.items()
        if site["type"] == "sample" and isinstance(_base(site["fn"]), UnnormalisedDistribution)
    }


def intractable_sites(
    model: Callable, model_args: tuple = (), model_kwargs: dict | None = None, *,
    rng_key: PRNGKey | int = 0,
) -> dict[str, bool]:
    r"""The EnergyDistribution sites whose ``params`` or ``temperature`` depend on latent
    sample sites, each mapped to whether it is observed.

    The model is traced once at an ``init_to_uniform`` point; the parameters of each
    energy site are then pushed forward, under :func:`jax.eval_shape` (no compute),
    along a tangent on every real latent site: a parameter that receives a non-zero
    tangent depends on a latent site. Parameters fixed or computed from data only carry
    a symbolic zero.

    Returns
    -------
    dict
        ``{site name: is_observed}``, empty when every normaliser is constant.
    """
    kwargs = {} if model_kwargs is None else dict(model_kwargs)
    key = as_key(rng_key, "rng_key")
    first = _trace_at(model, model_args, kwargs, key)
    names = list(energy_sites(first))
    latent = {
        name: site["value"] for name, site in first.items()
        if site["type"] == "sample" and not site["is_observed"]
        and jnp.issubdtype(jnp.result_type(site["value"]), jnp.inexact)
    }
    if not names or not latent:
        return {}
    found: dict[str, bool] = {}

    def pushed(values: dict) -> Array:
        sites = energy_sites(_trace_at(model, model_args, kwargs, key, values))
        for name in names:
            def record(name: str = name) -> None:
                found[name] = bool(first[name]["is_observed"])

            _nonzero_tangent_probe(record)((sites[name].params, sites[name].temperature))
        return jnp.zeros(())

    tangents = jax.tree.map(jnp.ones_like, latent)
    jax.eval_shape(lambda v: jax.jvp(pushed, (v,), (tangents,)), latent)
    return found


def check_normalisers(
    model: Callable, model_args: tuple = (), model_kwargs: dict | None = None, *,
    rng_key: PRNGKey | int = 0,
) -> None:
    """Raise IntractableNormaliserError if :func:`intractable_sites` finds any site.

    Raises
    ------
    ebm_ppl.IntractableNormaliserError
        Naming the sites, the missing normaliser and the fix
        (:class:`ebm_ppl.numpyro.Exchange`).
    """
    sites = intractable_sites(model, model_args, model_kwargs, rng_key=rng_key)
    if sites:
        raise IntractableNormaliserError(_message(sorted(sites)))
