"""Turn draws (arrays or ArviZ InferenceData) and scores into flat ``(chain, draw, d)``
arrays: the common input of the Stein diagnostics."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from ebm_ppl._types import Array
from ebm_ppl.inference_data import position_names
from ebm_ppl.model.groups import unconstrained_posterior
from ebm_ppl.potential import Potential

__all__ = ["as_chains", "batched_scores", "is_inference_data", "position_shape",
           "posterior_array"]


def _float_dtype() -> np.dtype:
    """JAX's default float (float32 unless ``jax_enable_x64``)."""
    return np.dtype(jnp.result_type(float))


def is_inference_data(obj: Any) -> bool:
    """Duck-typed check for an ArviZ ``InferenceData`` (has a ``posterior`` group)."""
    return hasattr(obj, "posterior") and hasattr(obj, "groups")


def posterior_array(idata: Any, pot: Potential | None = None) -> np.ndarray:
    """Posterior draws as one ``(chain, draw, d)`` float array.

    A single variable is used as is (flattened over its trailing dims). Several variables
    are concatenated in the leaf order of ``pot.example`` when the potential knows its
    position structure (the order of :func:`jax.flatten_util.ravel_pytree`), else in the
    order of the posterior's data variables.

    For a potential built with :meth:`~ebm_ppl.Potential.from_model`, the posterior holds
    the constrained sites while the score lives on the unconstrained space: the latent
    sites are mapped back (NumPyro's ``unconstrain_fn``) and flattened in the order of
    :func:`jax.flatten_util.ravel_pytree` on ``pot.example`` (deterministic sites are
    left out).

    Raises
    ------
    ValueError
        If a model's latent site is missing from the posterior.
    """
    post = idata.posterior
    names = list(post.data_vars)
    if pot is not None and pot.kind == "model":
        return _model_posterior_array(idata, pot)
    if pot is not None and pot.example is not None:
        wanted = position_names(pot.example)
        if set(wanted) <= set(names):
            names = wanted
    if not names:
        raise ValueError("idata.posterior has no variables")
    arrays = []
    for name in names:
        values = np.asarray(post[name].values, dtype=_float_dtype())
        arrays.append(values.reshape(values.shape[0], values.shape[1], -1))
    return np.concatenate(arrays, axis=-1)


def _model_posterior_array(idata: Any, pot: Potential) -> np.ndarray:
    """Unconstrained ``(chain, draw, d)`` draws of a model posterior (leaf order)."""
    draws = unconstrained_posterior(idata, pot)
    num_chains, num_draws = next(iter(draws.values())).shape[:2]
    leaves = jax.tree.leaves({name: draws[name] for name in pot.example})
    flat = [np.asarray(leaf, _float_dtype()).reshape(num_chains, num_draws, -1) for leaf in leaves]
    return np.concatenate(flat, axis=-1)


def as_chains(samples: Any, pot: Potential | None = None) -> tuple[np.ndarray, bool]:
    """``(chain, draw, d)`` array and whether the input had a chain axis.

    Accepts ``(n,)`` (one-dimensional draws), ``(n, d)`` (one sample set),
    ``(chain, draw, d)`` arrays and InferenceData.
    """
    if is_inference_data(samples):
        return posterior_array(samples, pot), True
    arr = np.asarray(samples)
    if not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"samples must be a real array or an InferenceData, got dtype {arr.dtype}")
    arr = arr.astype(_float_dtype())
    if arr.ndim == 1:
        return arr[None, :, None], False
    if arr.ndim == 2:
        return arr[None], False
    if arr.ndim == 3:
        return arr, True
    raise ValueError(
        "samples must have shape (n,), (n, d) or (chain, draw, d), or be an InferenceData; "
        f"got shape {arr.shape}"
    )


def _flat_score_of(pot: Potential, x: Array) -> Array:
    if pot.example is None:
        return pot.score(x)
    example = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), pot.example)
    _, unravel = ravel_pytree(example)
    flat, _ = ravel_pytree(pot.score(unravel(x)))
    return flat


@jax.jit
def _potential_scores(pot: Potential, x: Array) -> Array:
    return jax.vmap(partial(_flat_score_of, pot))(x)


@partial(jax.jit, static_argnums=0)
def _function_scores(score_fn: Callable, x: Array) -> Array:
    return jax.vmap(score_fn)(x)


def batched_scores(score_fn: Callable | Potential, x: np.ndarray) -> Array:
    """Scores ``∇ log p`` at the rows of ``x`` (shape ``(n, d)``).

    ``score_fn`` is a :class:`~ebm_ppl.Potential` (its :meth:`~ebm_ppl.Potential.score`,
    jitted with the potential as a traced argument, so new parameter values reuse the
    compiled code) or a callable mapping one flat position ``(d,)`` to its score ``(d,)``.
    """
    xj = jnp.asarray(x)
    if isinstance(score_fn, Potential):
        pot = score_fn
        if pot.example is not None:
            size = sum(int(np.prod(s.shape)) for s in jax.tree.leaves(pot.example))
            if size != xj.shape[-1]:
                raise ValueError(
                    f"samples have dimension {xj.shape[-1]} but the potential's position "
                    f"has {size} elements"
                )
        return _potential_scores(pot, xj)
    if not callable(score_fn):
        raise TypeError(
            f"score_fn must be a callable or an ebm_ppl.Potential, got {type(score_fn).__name__}"
        )
    scores = _function_scores(score_fn, xj)
    if scores.shape != xj.shape:
        raise ValueError(
            f"score_fn must map a position of shape {xj.shape[1:]} to a score of the same "
            f"shape, got {scores.shape[1:]}"
        )
    return scores


def position_shape(pot: Potential, base: Any, shape: Any, caller: str) -> tuple[int, ...]:
    """The shape of one position for the annealing estimators (AIS, SMC): ``shape`` when
    given, else the potential's example (one array leaf), else the base distribution's
    ``batch_shape + event_shape``; ``ValueError`` naming what to pass otherwise."""
    if shape is not None:
        dims = np.atleast_1d(np.asarray(shape))
        if dims.ndim != 1 or not np.issubdtype(dims.dtype, np.integer) or np.any(dims < 1):
            raise ValueError(f"shape must be a tuple of positive integers, got {shape!r}")
        return tuple(int(s) for s in dims)
    if pot.example is not None:
        leaves = jax.tree.leaves(pot.example)
        if len(leaves) != 1:
            raise ValueError(f"{caller} supports array positions only (one leaf), got a pytree")
        return tuple(leaves[0].shape)
    if base is not None and tuple(base.batch_shape) + tuple(base.event_shape):
        return tuple(base.batch_shape) + tuple(base.event_shape)
    raise ValueError(
        "cannot infer the position shape: pass shape=(d,), a base distribution of that "
        "shape, or build the potential with example="
    )
