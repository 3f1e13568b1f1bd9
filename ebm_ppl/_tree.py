"""Small pytree utilities shared by kernels, the sampler and the training loop."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from ebm_ppl._types import Array, ArrayTree, PRNGKey

__all__ = ["tree_all_finite", "tree_normal_like", "tree_first"]


def tree_all_finite(tree: ArrayTree) -> Array:
    """True when every element of every leaf is finite."""
    leaves = jax.tree.leaves(tree)
    if not leaves:
        return jnp.asarray(True)
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in leaves]))


def tree_normal_like(rng_key: PRNGKey, tree: ArrayTree) -> ArrayTree:
    """Standard normal noise with the structure, shapes and dtypes of ``tree``
    (one independent subkey per leaf)."""
    leaves, treedef = jax.tree.flatten(tree)
    keys = jax.random.split(rng_key, len(leaves))
    noise = [jax.random.normal(k, jnp.shape(x), jnp.result_type(x)) for k, x in zip(keys, leaves)]
    return jax.tree.unflatten(treedef, noise)


def tree_first(tree: Any) -> Any:
    """The first element along the leading axis of every leaf."""
    return jax.tree.map(lambda x: x[0], tree)
