"""An energy function as a NumPyro distribution (unnormalised ``log_prob = -E/T``)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike
from numpyro.distributions import constraints
from numpyro.distributions.distribution import Distribution

from ebm_ppl._types import Array, ArrayLikeTree, PRNGKey
from ebm_ppl.potential import Potential

__all__ = ["EnergyDistribution"]


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


class EnergyDistribution(Distribution):
    r"""An energy-based density usable at any ``numpyro.sample`` site.

    .. math::

        \log p(x) = -E_\theta(x) / T \quad (\text{up to the unknown } \log Z_\theta)

    :meth:`log_prob` is the *unnormalised* log density. That is all NumPyro's gradient
    samplers (``NUTS``, ``HMC``) and this package's kernels need, so the distribution can
    serve as a prior, a likelihood factor or a whole model; quantities that need
    :math:`Z_\theta` (the model evidence, ``log_likelihood`` comparisons across
    parameters) are off by :math:`\log Z_\theta`.

    Parameters
    ----------
    energy_fn
        JAX-traceable ``energy_fn(x) -> scalar`` (``params is None``) or
        ``energy_fn(params, x) -> scalar``, with ``x`` of shape ``event_shape``.
    params
        Parameters pytree of the energy (a Flax ``variables`` dict, an array...); ``None``
        means ``energy_fn`` takes ``x`` only.
    event_shape
        Shape of one draw ``x``, e.g. ``(d,)``; an integer ``d`` means ``(d,)``.
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
    """

    pytree_data_fields = ("params", "temperature")
    pytree_aux_fields = ("energy_fn", "_support", "has_params")

    def __init__(
        self,
        energy_fn: Callable[..., Array],
        params: ArrayLikeTree | None = None,
        event_shape: tuple[int, ...] | int = (1,),
        support: constraints.Constraint = constraints.real,
        temperature: float = 1.0,
        *,
        validate_args: bool | None = None,
    ) -> None:
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
    def _energy(self, x: Array) -> Array:
        return self.energy_fn(self.params, x) if self.has_params else self.energy_fn(x)

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
        batch_shape = value.shape[: value.ndim - n_event]
        if not batch_shape:
            energy = self._energy(value)
        else:
            flat = value.reshape((math.prod(batch_shape),) + event_shape)
            energy = jax.vmap(self._energy)(flat).reshape(batch_shape)
        return -energy / self.temperature

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
