r"""NumPyro's mass-matrix layout on ebm_ppl's flat inverse mass matrix.

NumPyro's HMC/NUTS take ``dense_mass`` as a bool or a list of site groups and report
``adapt_state.inverse_mass_matrix`` as a dict keyed by tuples of site names:
``dense_mass=[("x", "y")]`` gives a dense block over ``x`` and ``y`` (in that order)
and a diagonal over the other sites, sorted by name. ebm_ppl keeps one flat matrix of
the raveled position (sites in sorted order, as :func:`jax.flatten_util.ravel_pytree`
lays a dict out) with zeros outside the blocks (``Kernel.mass_blocks``); this module
translates between the two.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ebm_ppl._types import Array, ArrayTree

__all__ = ["MassLayout", "mass_layout", "mass_matrix_views"]


class MassLayout:
    """Site groups of a dict position and their flat indices.

    Attributes
    ----------
    dense_groups
        Site-name tuples with a dense block each (NumPyro's order within a group).
    diagonal_groups
        Site-name tuples with a diagonal each: the groups named only by a dict
        ``inverse_mass_matrix``, then the remaining sites, sorted.
    indices
        Flat indices of each site (sorted-name layout of ``ravel_pytree``).
    """

    def __init__(self, dense_groups: tuple, diagonal_groups: tuple, indices: dict) -> None:
        self.dense_groups = dense_groups
        self.diagonal_groups = diagonal_groups
        self.indices = indices

    def flat(self, group: Sequence[str]) -> np.ndarray:
        """Flat indices of a group of sites, in the group's order."""
        return np.concatenate([self.indices[name] for name in group]).astype(int)

    @property
    def blocks(self) -> tuple:
        """``Kernel.mass_blocks``: the dense groups' flat indices (empty when one
        dense group covers every site, which needs no mask)."""
        if not self.dense_groups or (len(self.dense_groups) == 1 and not self.diagonal_groups):
            return ()
        return tuple(tuple(int(i) for i in self.flat(g)) for g in self.dense_groups)

    def inverse_mass_matrix(self, given: dict, dtype: Any) -> Array:
        """The flat inverse mass matrix of a dict keyed by site-name tuples (NumPyro's
        ``inverse_mass_matrix={("x",): ...}``); sites not named keep the identity."""
        size = sum(len(v) for v in self.indices.values())
        dense = bool(self.dense_groups)
        imm = np.eye(size) if dense else np.ones(size)
        for key, value in given.items():
            names = (key,) if isinstance(key, str) else tuple(key)
            unknown = [n for n in names if n not in self.indices]
            if unknown:
                raise ValueError(f"inverse_mass_matrix names unknown sites {unknown}; "
                                 f"the model's sites are {sorted(self.indices)}")
            idx = self.flat(names)
            value = np.asarray(value, float)
            if value.shape not in ((idx.size,), (idx.size, idx.size)):
                raise ValueError(
                    f"inverse_mass_matrix[{key!r}] must have shape ({idx.size},) or "
                    f"({idx.size}, {idx.size}), got {value.shape}")
            if value.ndim == 2 and not dense:
                raise ValueError(f"inverse_mass_matrix[{key!r}] is 2-D but dense_mass is "
                                 "False: pass the diagonal, or dense_mass for these sites")
            if dense:
                imm[np.ix_(idx, idx)] = np.diag(value) if value.ndim == 1 else value
            else:
                imm[idx] = value
        return jnp.asarray(imm, dtype)


def mass_layout(dense_mass: bool | Sequence, position: dict,
                inverse_mass_matrix: Any = None) -> MassLayout:
    """The :class:`MassLayout` of NumPyro's ``dense_mass`` (and the keys of a dict
    ``inverse_mass_matrix``) for one chain's dict position.

    Raises
    ------
    ValueError
        If a group names a site that the model does not have, or a site twice.
    """
    sizes = {name: int(np.size(position[name])) for name in sorted(position)}
    offsets = np.cumsum([0] + list(sizes.values()))
    indices = {name: np.arange(offsets[i], offsets[i + 1]) for i, name in enumerate(sizes)}
    sites = tuple(sizes)
    if dense_mass is True:
        return MassLayout((sites,), (), indices)
    groups = () if dense_mass is False else \
        tuple((g,) if isinstance(g, str) else tuple(g) for g in dense_mass)
    dense_named = {n for g in groups for n in g}
    keys = inverse_mass_matrix.keys() if isinstance(inverse_mass_matrix, dict) else ()
    diagonal = tuple(k for k in ((k,) if isinstance(k, str) else tuple(k) for k in keys)
                     if not set(k) & dense_named)
    named = [n for g in groups + diagonal for n in g]
    unknown = sorted(set(named) - set(sites))
    if unknown:
        raise ValueError(f"dense_mass names sites {unknown} that the model does not "
                         f"have; its sites are {list(sites)}")
    if len(named) != len(set(named)):
        raise ValueError(f"dense_mass names a site in two groups: {list(groups)}")
    rest = tuple(n for n in sites if n not in set(named))
    return MassLayout(groups, diagonal + ((rest,) if rest else ()), indices)


def mass_matrix_views(inverse_mass_matrix: Array, position: ArrayTree,
                      layout: MassLayout | None = None) -> tuple:
    r"""``(M^{-1}, M^{1/2}, M^{-1/2})`` in NumPyro's layout: a dict keyed by site-name
    tuples for a dict position (one entry per dense group, one for the diagonal rest),
    arrays otherwise. :math:`M^{1/2} (M^{1/2})^\top = M`,
    :math:`M^{-1/2} (M^{-1/2})^\top = M^{-1}`."""
    if not isinstance(position, dict):
        return _factors(inverse_mass_matrix)
    if layout is None:
        layout = mass_layout(jnp.ndim(inverse_mass_matrix) == 2, position)
    views: tuple[dict, dict, dict] = ({}, {}, {})
    dense = jnp.ndim(inverse_mass_matrix) == 2
    for group in layout.dense_groups:
        idx = layout.flat(group)
        block = inverse_mass_matrix[np.ix_(idx, idx)]
        for view, value in zip(views, _factors(block)):
            view[group] = value
    for group in layout.diagonal_groups:
        idx = layout.flat(group)
        diagonal = jnp.diagonal(inverse_mass_matrix)[idx] if dense else inverse_mass_matrix[idx]
        for view, value in zip(views, _factors(diagonal)):
            view[group] = value
    return views


def _factors(inverse_mass_matrix: Array) -> tuple:
    if jnp.ndim(inverse_mass_matrix) == 2:
        sqrt_inv = jnp.linalg.cholesky(inverse_mass_matrix)
        eye = jnp.eye(inverse_mass_matrix.shape[0], dtype=inverse_mass_matrix.dtype)
        sqrt = jax.scipy.linalg.solve_triangular(sqrt_inv, eye, lower=True).T
    else:
        sqrt_inv = jnp.sqrt(inverse_mass_matrix)
        sqrt = 1.0 / sqrt_inv
    return inverse_mass_matrix, sqrt, sqrt_inv
