"""Initial positions of :func:`ebm_ppl.sample`: one position (jittered), a batch, or the
model's own init strategy."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ebm_ppl._tree import tree_normal_like
from ebm_ppl._types import Array, ArrayLikeTree, ArrayTree, PRNGKey
from ebm_ppl.potential import Potential

__all__ = ["initial_positions"]


def _to_float(tree: ArrayLikeTree, name: str) -> ArrayTree:
    """Leaves as float arrays (integers and booleans promoted); lists are arrays."""
    if isinstance(tree, list):  # a (nested) list of numbers is an array, not a pytree
        try:
            tree = np.asarray(tree, dtype=float)
        except (TypeError, ValueError):
            raise ValueError(f"{name} given as a list must be a rectangular list of "
                             "numbers; use a dict or tuple for a pytree position") from None

    def convert(leaf: Any) -> Array:
        arr = jnp.asarray(leaf)
        if jnp.issubdtype(arr.dtype, jnp.floating):
            return arr
        if jnp.issubdtype(arr.dtype, jnp.integer) or arr.dtype == jnp.bool_:
            return arr.astype(jnp.result_type(float))
        raise ValueError(f"{name} must hold real numbers, got dtype {arr.dtype}")

    try:
        return jax.tree.map(convert, tree)
    except TypeError as err:
        raise ValueError(f"{name} must be an array or a pytree of arrays ({err})") from None


def _is_batch(pot: Potential, init: ArrayTree, num_chains: int) -> bool:
    """Whether ``init`` already has a leading axis of ``num_chains`` positions.

    With an example position (``pot.example``) the shapes decide. Without one, the rule
    is: ``init`` is a batch when every leaf is at least 2-D with leading axis
    ``num_chains``; it is one position when every leaf is at most 1-D; anything else
    (a leaf of 2 or more dimensions whose leading axis is not ``num_chains``, or a mix)
    would decide the target's dimension by a guess, so it raises.
    """
    leaves = jax.tree.leaves(init)
    leading = {np.shape(leaf)[0] if np.ndim(leaf) else None for leaf in leaves}
    if pot.example is not None:
        if leading != {num_chains}:
            return False
        batched = [(num_chains, *s.shape) for s in jax.tree.leaves(pot.example)]
        return [np.shape(leaf) for leaf in leaves] == batched
    ndims = [np.ndim(leaf) for leaf in leaves]
    if leading == {num_chains} and all(n >= 2 for n in ndims):
        return True
    if all(n <= 1 for n in ndims):
        return False
    shapes = jax.tree.map(np.shape, init)
    raise ValueError(
        f"init of shape {shapes} is ambiguous with num_chains={num_chains}: without an "
        "example position, a batch of starts needs a leading axis of num_chains on every "
        "leaf; pass init with that leading axis, or build the potential with "
        "example=<one position> (e.g. Potential.from_energy(E, example=jnp.zeros(d)))"
    )


def initial_positions(
    pot: Potential, init: ArrayLikeTree | None, num_chains: int, key: PRNGKey, jitter: float
) -> ArrayTree:
    """A batch of ``num_chains`` positions.

    ``init`` None draws from the model's init strategy (``pot.init_fn``); a batch is
    used as given; one position is broadcast with i.i.d. Gaussian jitter of standard
    deviation ``jitter`` on every element.
    """
    if init is None:
        if pot.init_fn is None:
            raise ValueError(
                "init is required for a potential built from an energy or a log density "
                "(pass one position, or a batch of num_chains positions); only "
                "Potential.from_model can draw initial positions itself"
            )
        return pot.init_fn(key, num_chains)
    init = _to_float(init, "init")
    if _is_batch(pot, init, num_chains):
        return init
    batch = jax.tree.map(lambda x: jnp.broadcast_to(x, (num_chains, *jnp.shape(x))), init)
    if jitter == 0:
        return batch
    noise = tree_normal_like(key, batch)
    return jax.tree.map(lambda x, z: x + jitter * z, batch, noise)
