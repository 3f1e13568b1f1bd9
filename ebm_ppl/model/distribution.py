r"""An energy function as a NumPyro distribution (unnormalised ``log_prob = -E/T``), and the
guard that keeps its missing normaliser from silently biasing a posterior.

:math:`\log Z_\theta = \log \int e^{-E_\theta(x)/T} dx` is absent from :meth:`log_prob`.
That is harmless while ``params`` and ``temperature`` are fixed (a trained energy used as
a prior, or parameters computed from data only): the constant cancels in every MCMC
acceptance ratio. When they depend on latent sample sites, :math:`Z` changes with them
and every sampler targeting the model's density samples a wrong posterior. Two checks
stop that case (:class:`~ebm_ppl.errors.IntractableNormaliserError`):

* :func:`check_normalisers` traces the model once and finds, by forward-mode
  differentiation with symbolic zeros (no compute), the EnergyDistribution sites whose
  parameters depend on latent sites; :meth:`ebm_ppl.Potential.from_model` (hence every
  ebm_ppl kernel, gradient-free MH included) calls it;
* :meth:`EnergyDistribution.log_prob` passes the parameters through a
  :func:`jax.custom_jvp` identity whose derivative rule raises when a non-zero tangent
  reaches it; only latent-dependent parameters carry one, so NumPyro's own NUTS and HMC
  stop at their first gradient (model initialisation).

The guard itself lives in :mod:`ebm_ppl._normaliser`, below :mod:`ebm_ppl.potential`
(whose ``from_model`` calls it); this module re-exports its public functions.

:class:`ebm_ppl.numpyro.Exchange` samples such models correctly (exchange algorithm).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike
from numpyro.distributions import constraints

from ebm_ppl._normaliser import (
    UnnormalisedDistribution,
    check_normalisers,
    energy_sites,
    guard_normaliser,
    intractable_sites,
)
from ebm_ppl._types import Array, ArrayLikeTree, PRNGKey
from ebm_ppl.potential import Potential, logdensity_from_energy

__all__ = ["EnergyDistribution", "check_normalisers", "energy_sites", "intractable_sites"]


def _check_event_shape(event_shape: Any) -> tuple[int, ...]:
    if isinstance(event_shape, (int, np.integer)) and not isinstance(event_shape, bool):
        event_shape = (int(event_shape),)
    try:
        shape = tuple(event_shape)
    except TypeError:
        raise ValueError(
            f"event_shape must be a tuple of positive integers (e.g. (d,)), got {event_shape!r}"
        ) from None
    if not all(
        isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n > 0 for n in shape
    ):
        raise ValueError(
            f"event_shape must be a tuple of positive integers (e.g. (d,)), got {event_shape!r}"
        )
    return tuple(int(n) for n in shape)


#: ``event_shape`` not given (a Potential's example position then sets it).
_UNSET: Any = type("_Unset", (), {"__repr__": lambda self: "(1,)"})()


def _from_potential(
    pot: Potential, params: Any, temperature: Any, event_shape: Any
) -> tuple[Callable[..., Array], Any, Any, Any]:
    """(energy_fn, params, temperature, event_shape) of a ``Potential.from_energy``."""
    if pot.kind != "energy":
        raise ValueError(
            f"EnergyDistribution needs a potential built from an energy (Potential.from_energy "
            f"or ebm_ppl.load), got one built from a {pot.kind}"
        )
    if params is not None or not (isinstance(temperature, (int, float)) and temperature == 1.0):
        raise ValueError(
            "params and temperature come from the Potential; pass EnergyDistribution(pot) "
            "alone, or EnergyDistribution(pot.fn, params, temperature=...) to change them"
        )
    if event_shape is _UNSET and pot.example is not None:
        leaves = jax.tree.leaves(pot.example)
        if len(leaves) != 1:
            raise ValueError(
                "EnergyDistribution draws one array; this potential's position is a pytree of "
                f"{len(leaves)} arrays"
            )
        event_shape = tuple(leaves[0].shape)
    return pot.fn, pot.energy_params if pot.has_params else None, pot.temperature, event_shape


class EnergyDistribution(UnnormalisedDistribution):
    r"""An energy-based density usable at any ``numpyro.sample`` site.

    .. math::

        \log p(x) = -E_\theta(x) / T \quad (\text{up to the unknown } \log Z_\theta)

    :meth:`log_prob` is the *unnormalised* log density. With fixed ``params`` and
    ``temperature`` (a trained energy as a prior, the normal use; or parameters
    computed from data only) that is all NumPyro's samplers (``NUTS``, ``HMC``) and this
    package's kernels need: :math:`\log Z_\theta` is a constant that cancels.
    Quantities that need :math:`Z_\theta` (the model evidence, ``log_likelihood``
    comparisons across models) are off by it.

    **As a likelihood with unknown parameters** (``params`` or ``temperature``
    depending on latent sample sites, e.g. ``s ~ HalfNormal(3)``,
    ``x ~ EnergyDistribution(E, params=s)`` observed) the missing
    :math:`-n \log Z_\theta` changes with the latent sites and ordinary MCMC samples
    a wrong posterior. That case raises
    :class:`~ebm_ppl.errors.IntractableNormaliserError` (at the first gradient in
    NumPyro's NUTS/HMC, in :meth:`ebm_ppl.Potential.from_model` and in the
    ``ebm_ppl.numpyro`` kernels); sample it with :class:`ebm_ppl.numpyro.Exchange`.
    Differentiating :meth:`log_prob` with respect to ``params`` (training) raises for
    the same reason: train with :func:`ebm_ppl.fit`.

    Parameters
    ----------
    energy_fn
        JAX-traceable ``energy_fn(x) -> scalar`` (``params is None``) or
        ``energy_fn(params, x) -> scalar``, with ``x`` of shape ``event_shape``.
    params
        Parameters pytree of the energy (a Flax ``variables`` dict, an array...); ``None``
        means ``energy_fn`` takes ``x`` only.
    event_shape
        Shape of one draw ``x``, e.g. ``(d,)``; an integer ``d`` means ``(d,)``. Default:
        the potential's example position when ``energy_fn`` is a ``Potential`` that has
        one (a model folder of ``ebm-ppl train``), otherwise ``(1,)``.
    support
        Support of ``x`` (a NumPyro constraint, ``constraints.real`` by default). NumPyro
        samplers work on the unconstrained image under ``biject_to(support)``; the
        energy is always evaluated on the constrained value. A support with fewer event
        dimensions than ``event_shape`` is made ``constraints.independent``.
    temperature
        :math:`T > 0`; ``log_prob = -E / T``.
    validate_args
        NumPyro's ``validate_args``.

    Raises
    ------
    TypeError
        If ``energy_fn`` is not callable or ``support`` is not a NumPyro constraint.
    ValueError
        If ``energy_fn`` is a ``Potential`` not built from an energy, or is given with
        ``params`` or a ``temperature`` of its own (they come from the potential).
    ValueError
        If ``event_shape`` is not a tuple of positive integers, ``temperature`` is not
        positive, or the energy does not return a real scalar on an ``x`` of shape
        ``event_shape`` (checked once with :func:`jax.eval_shape`, no compute).

    Notes
    -----
    :meth:`sample` raises ``NotImplementedError``: drawing exactly from an unnormalised
    energy is what MCMC is for. NumPyro's default ``init_to_uniform`` (and
    ``init_to_median``, which falls back to it) never call :meth:`sample`, so MCMC runs
    as is; prior predictive checks (``Predictive`` without posterior samples) and
    ``init_to_sample`` do call it and raise.

    Leading batch dimensions of ``value`` in :meth:`log_prob` are mapped over with
    :func:`jax.vmap`; ``batch_shape`` is ``()`` (one energy shared by all draws).

    Examples
    --------
    >>> import jax.numpy as jnp, numpyro, numpyro.distributions as dist
    >>> energy = lambda x: 0.5 * jnp.sum((x - 1.0) ** 2) / 0.25
    >>> def model(y):
    ...     mu = numpyro.sample("mu", EnergyDistribution(energy, event_shape=(1,)))
    ...     numpyro.sample("y", dist.Normal(mu, 1.0), obs=y)
    >>> d = EnergyDistribution(energy, event_shape=(1,))
    >>> float(d.log_prob(jnp.array([1.0])))
    -0.0

    A trained model (``ebm_ppl.load("model")`` or any ``Potential.from_energy``) goes in
    as it is, parameters, temperature and event shape included:

    >>> from ebm_ppl import Potential
    >>> pot = Potential.from_energy(energy, example=jnp.zeros(1))
    >>> float(EnergyDistribution(pot).log_prob(jnp.array([1.0])))
    -0.0
    """

    pytree_data_fields = ("params", "temperature")
    pytree_aux_fields = ("energy_fn", "_support", "has_params")

    def __init__(
        self,
        energy_fn: Callable[..., Array] | Potential,
        params: ArrayLikeTree | None = None,
        event_shape: tuple[int, ...] | int = _UNSET,
        support: constraints.Constraint = constraints.real,
        temperature: float = 1.0,
        *,
        validate_args: bool | None = None,
    ) -> None:
        if isinstance(energy_fn, Potential):
            energy_fn, params, temperature, event_shape = _from_potential(
                energy_fn, params, temperature, event_shape)
        if event_shape is _UNSET:
            event_shape = (1,)
        if not callable(energy_fn):
            raise TypeError(f"energy_fn must be callable, got {type(energy_fn).__name__}")
        event_shape = _check_event_shape(event_shape)
        if not isinstance(support, constraints.Constraint):
            raise TypeError(
                f"support must be a numpyro.distributions.constraints.Constraint, "
                f"got {type(support).__name__}"
            )
        if support.event_dim > len(event_shape):
            raise ValueError(
                f"support has event_dim {support.event_dim} > len(event_shape) = "
                f"{len(event_shape)}; give an event_shape with at least that many dims"
            )
        if support.event_dim < len(event_shape):
            support = constraints.independent(support, len(event_shape) - support.event_dim)
        self.energy_fn = energy_fn
        self.params = params
        self.has_params = params is not None
        self.temperature = temperature
        self._support = support
        # temperature and energy validated once by Potential (jax.eval_shape, no compute)
        Potential.from_energy(
            energy_fn, params, temperature,
            example=jax.ShapeDtypeStruct(event_shape, jnp.result_type(float)),
        )
        super().__init__(batch_shape=(), event_shape=event_shape, validate_args=validate_args)

    # -------------------------------------------------------------- helpers
    def _energy(self, params: Any, x: Array) -> Array:
        return self.energy_fn(params, x) if self.has_params else self.energy_fn(x)

    @property
    def potential(self) -> Potential:
        """The energy as a :class:`~ebm_ppl.Potential` of one draw ``x`` (unguarded: the
        exchange kernels evaluate it at proposed parameter values)."""
        return Potential.from_energy(
            self.energy_fn, self.params if self.has_params else None, self.temperature
        )

    # -------------------------------------------------------------- Distribution API
    @constraints.dependent_property(is_discrete=False)
    def support(self) -> constraints.Constraint:
        """The support given at construction (made ``independent`` over the event)."""
        return self._support

    def log_prob(self, value: ArrayLike) -> Array:
        r"""Unnormalised log density :math:`-E(x)/T`, mapped over leading batch dims.

        Parameters
        ----------
        value
            Array of shape ``sample_shape + event_shape``.

        Returns
        -------
        jax.Array
            Shape ``sample_shape``.
        """
        value = jnp.asarray(value)
        event_shape = self.event_shape
        n_event = len(event_shape)
        if value.ndim < n_event or value.shape[value.ndim - n_event :] != event_shape:
            raise ValueError(
                f"value must have trailing dimensions equal to event_shape {event_shape}, "
                f"got shape {value.shape}"
            )
        params, temperature = guard_normaliser(self, (self.params, self.temperature))
        batch_shape = value.shape[: value.ndim - n_event]
        if not batch_shape:
            energy = self._energy(params, value)
        else:
            flat = value.reshape((math.prod(batch_shape),) + event_shape)
            energy = jax.vmap(lambda x: self._energy(params, x))(flat).reshape(batch_shape)
        return logdensity_from_energy(energy, temperature)

    def sample(self, key: PRNGKey, sample_shape: tuple[int, ...] = ()) -> Array:
        """Not available: an unnormalised energy cannot be sampled directly.

        Raises
        ------
        NotImplementedError
            Always, with the alternatives.
        """
        raise NotImplementedError(
            "EnergyDistribution cannot be sampled directly: its density exp(-E/T) is "
            "unnormalised. Draw from it with MCMC (numpyro.infer.NUTS or "
            "ebm_ppl.numpyro.ULA/MH/BlackJAXKernel); initialise MCMC with "
            "init_to_uniform (the default), init_to_median (falls back to uniform) or "
            "init_to_value(values={...}); prior predictive checks (Predictive without "
            "posterior samples) and init_to_sample are not supported."
        )
