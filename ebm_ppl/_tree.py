"""Small pytree utilities shared by kernels, the sampler and the training loop."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar, dataclass_transform

import jax
import jax.numpy as jnp

from ebm_ppl._types import Array, ArrayTree, PRNGKey

__all__ = ["pytree_dataclass", "tree_all_finite", "tree_normal_like", "tree_first"]

_C = TypeVar("_C", bound=type)


@dataclass_transform(frozen_default=True, eq_default=False,
                     field_specifiers=(dataclasses.field,))
def pytree_dataclass(cls: _C) -> _C:
    """``cls`` as a frozen dataclass compared by identity (``eq=False``), registered as a JAX
    pytree: fields with ``metadata=dict(static=True)`` are static, the others are leaves."""
    return jax.tree_util.register_dataclass(dataclasses.dataclass(frozen=True, eq=False)(cls))


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
