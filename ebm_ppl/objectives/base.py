"""The :class:`Objective` interface shared by every training loss of ebm_ppl.

An objective is a pair of pure functions in optax's ``init``/``update`` spirit:

* ``state = objective.init(rng_key, params, data=None)``
* ``value, (metrics, new_state) = objective.loss(params, batch, rng_key, energy_fn, state)``

``energy_fn(params, x)`` returns the scalar energy of *one* example ``x`` (the objectives
``vmap`` it over the batch). Because ``loss`` is a plain function of arrays,
``jax.value_and_grad(objective.loss, has_aux=True)`` differentiates it with respect to
``params`` and ``lax.scan`` can carry its state. Stateless objectives use
:class:`EmptyState`, so :func:`ebm_ppl.fit` has a single code path.

Some objectives train more than the energy's parameters (noise-contrastive estimation
learns ``log Z``). They set :attr:`Objective.to_trainable` (energy parameters ->
trainable parameters) and :attr:`Objective.to_energy_params` (trainable -> energy
parameters); both are the identity for the others.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from ebm_ppl._types import Array, ArrayTree, Metrics, Params, PRNGKey

__all__ = [
    "Objective",
    "EmptyState",
    "ObjectiveState",
    "empty_init",
    "batch_energy",
    "flat_energy",
    "check_batch",
]

ObjectiveState = Any


class EmptyState(NamedTuple):
    """State of a stateless objective (an empty pytree)."""


def _identity(params: Params) -> Params:
    return params


class Objective(NamedTuple):
    """A training objective: ``init`` and a pure ``loss``.

    Attributes
    ----------
    init
        ``init(rng_key, params, data=None) -> state``. ``params`` are the *trainable*
        parameters (``to_trainable(energy_params)``); ``data`` is an optional data set or
        batch used by data-dependent objectives (replay-buffer shape and noise range of
        contrastive divergence, the Gaussian noise of NCE).
    loss
        ``loss(params, batch, rng_key, energy_fn, state=None) -> (value, (metrics,
        new_state))``; ``metrics`` is a dict of scalars. ``state=None`` is the stateless
        convenience form (allowed for every objective but persistent CD).
    to_trainable
        ``to_trainable(energy_params) -> trainable_params``: the parameters the optimizer
        trains, built from the energy's (identity by default; NCE adds ``log_z``).
    to_energy_params
        ``to_energy_params(trainable_params) -> energy_params``: the energy's parameters
        inside the trainable ones (identity by default).
    name
        Short name used in progress bars and checkpoints manifests.
    """

    init: Callable[..., ObjectiveState]
    loss: Callable[..., tuple[Array, tuple[Metrics, ObjectiveState]]]
    to_trainable: Callable[[Params], Params] = _identity
    to_energy_params: Callable[[Params], Params] = _identity
    name: str = "objective"


def empty_init(rng_key: PRNGKey, params: Params, data: ArrayTree | None = None) -> EmptyState:
    """``init`` of a stateless objective: the :class:`EmptyState`."""
    del rng_key, params, data
    return EmptyState()


def batch_energy(energy_fn: Callable[..., Array], params: Params, batch: Array, *args) -> Array:
    """Energies of a batch, ``vmap`` of ``energy_fn(params, x, *args)`` over axis 0."""
    in_axes = (None, 0) + (0,) * len(args)
    return jax.vmap(energy_fn, in_axes=in_axes)(params, batch, *args)


def flat_energy(
    energy_fn: Callable[..., Array], params: Params, shape: tuple[int, ...], *args
) -> Callable[[Array], Array]:
    """``x_flat -> energy_fn(params, x_flat.reshape(shape), *args)`` for one example."""

    def fn(x_flat: Array) -> Array:
        return energy_fn(params, jnp.reshape(x_flat, shape), *args)

    return fn


def check_batch(batch: ArrayTree, name: str = "batch") -> Array:
    """Return ``batch`` as an array of shape ``(batch_size, *event_shape)``."""
    batch = jnp.asarray(batch)
    if batch.ndim < 1:
        raise ValueError(f"{name} must have a leading batch axis, got a scalar")
    if not jnp.issubdtype(batch.dtype, jnp.floating):
        batch = batch.astype(jnp.result_type(float))
    return batch
