"""The sampler state stored in an InferenceData for ``sample(..., resume=idata)``:
writing it (:func:`sampler_state_dataset`) and reading it back (:func:`restore_state`).

The ``sampler_state`` group is a netCDF-safe :class:`xarray.Dataset`: the leaves of the
kernel states and of the per-chain tuned kernels, each named by its path in its pytree
(``state.position``, ``state.logdensity``, ``state.position.a`` for a dict position,
``parameter.parameters.step_size``...) and with a leading ``chain`` dimension; the random key of the
sampling phase as its raw key data (``key_data``, ``uint32``, from
:func:`jax.random.key_data`, repeated along ``chain`` so that ``arviz.concat(...,
dim="chain")`` works; the key implementation is the ``key_impl`` attribute);
the next global step and the kernel name as attributes. The pytree structures are not
stored: they are rebuilt from the kernel and the potential, and checked against the
stored leaves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from ebm_ppl._types import Array, ArrayTree, PRNGKey
from ebm_ppl.kernels.base import Kernel
from ebm_ppl.potential import Potential
from ebm_ppl.sampling.driver import per_chain_kernels

if TYPE_CHECKING:
    import arviz as az

__all__ = ["RestoredState", "leaf_names", "sampler_state_dataset", "restore_state",
           "SAMPLER_STATE"]

#: Name of the InferenceData group holding the final sampler state.
SAMPLER_STATE = "sampler_state"


def _key_name(key: Any) -> str:
    for attr in ("name", "key", "idx"):
        if hasattr(key, attr):
            return str(getattr(key, attr))
    return str(key)


def leaf_names(prefix: str, tree: Any) -> list[str]:
    """``prefix.path.to.leaf`` for every leaf of ``tree``, in flattening order (netCDF-safe
    variable names: attribute, dict-key and index parts joined by dots)."""
    paths, _ = jax.tree_util.tree_flatten_with_path(tree)
    return [".".join([prefix, *(_key_name(k) for k in path)]) for path, _ in paths]


class RestoredState(NamedTuple):
    """What :func:`restore_state` returns: the chains' kernel states and per-chain tuned
    kernels, the sampling phase's key, the next global step and the number of chains."""

    states: Any
    kernels: Kernel
    key: PRNGKey
    next_step: int
    num_chains: int


def sampler_state_dataset(
    states: Any, kernels: Kernel, key: PRNGKey, next_step: int, kernel_name: str
) -> xr.Dataset:
    """Final sampler state as an xarray Dataset (netCDF-safe) for ``resume``."""
    variables = {}
    for prefix, tree in (("state", states), ("parameter", kernels)):
        for name, leaf in zip(leaf_names(prefix, tree), jax.tree.leaves(tree)):
            arr = np.asarray(leaf)
            dims = ("chain", *[f"{name}_dim_{j}" for j in range(arr.ndim - 1)])
            variables[name] = (dims, arr)
    num_chains = jax.tree.leaves(states)[0].shape[0]
    key_data = np.asarray(jax.random.key_data(key), np.uint32)
    key_data = np.broadcast_to(key_data, (num_chains, *key_data.shape))  # concat-able
    variables["key_data"] = (("chain", *[f"key_data_dim_{j}" for j in range(key_data.ndim - 1)]),
                             key_data)
    attrs = {
        "key_impl": str(jax.random.key_impl(key)),
        "next_step": int(next_step),
        "kernel": kernel_name,
    }
    return xr.Dataset(variables, attrs=attrs)


def _named_leaves(ds: xr.Dataset, names: list[str]) -> list[Array]:
    missing = [name for name in names if name not in ds.data_vars]
    if missing:
        raise ValueError(f"resume's sampler state does not match this potential and kernel "
                         f"(no {missing[0]!r}; it was sampled from another target or by an "
                         "older ebm_ppl: sample again)")
    return [jnp.asarray(ds[name].values) for name in names]


def _first_position(ds: xr.Dataset, pot: Potential) -> ArrayTree:
    """One chain's position, from the stored ``state.position...`` leaves."""
    if pot.example is not None:
        names = leaf_names("state.position", pot.example)
        leaves = _named_leaves(ds, names)
        return jax.tree.unflatten(jax.tree.structure(pot.example), [x[0] for x in leaves])
    return _named_leaves(ds, ["state.position"])[0][0]


def restore_state(
    idata: az.InferenceData, pot: Potential, kernel: Kernel
) -> RestoredState:
    """Inverse of :func:`sampler_state_dataset`, checked against ``pot`` and ``kernel``.

    Returns
    -------
    RestoredState

    Raises
    ------
    ValueError
        When ``idata`` has no sampler state, was sampled with another kernel, or its
        stored leaves do not match this potential and kernel.
    """
    if not hasattr(idata, SAMPLER_STATE):
        raise ValueError(
            "resume must be an InferenceData returned by ebm_ppl.sample (it has no "
            f"{SAMPLER_STATE!r} group)"
        )
    ds = getattr(idata, SAMPLER_STATE)
    if ds.attrs.get("kernel") != kernel.name:
        raise ValueError(
            f"resume was sampled with kernel {ds.attrs.get('kernel')!r}, got {kernel.name!r}"
        )
    if "key_data" not in ds.data_vars:
        raise ValueError("resume's sampler state has no 'key_data' (written by an older "
                         "ebm_ppl); sample again instead of resuming")
    # rebuild the pytree structures from the kernel on the stored position's shape, and
    # read every leaf by its path name
    first = _first_position(ds, pot)
    state_struct = jax.eval_shape(lambda: kernel.init(first, pot.logdensity_fn))
    state_leaves = _named_leaves(ds, leaf_names("state", state_struct))
    states = jax.tree.unflatten(jax.tree.structure(state_struct), state_leaves)
    num_chains = state_leaves[0].shape[0]
    kernel_struct = per_chain_kernels(kernel, first, num_chains)
    param_leaves = _named_leaves(ds, leaf_names("parameter", kernel_struct))
    kernels = jax.tree.unflatten(jax.tree.structure(kernel_struct), param_leaves)
    key_data = np.asarray(ds["key_data"].values, np.uint32)
    if not np.all(key_data == key_data[:1]):
        raise ValueError("resume holds chains joined from separate runs (their random keys "
                         "differ); resume each run on its own and join the results")
    key = jax.random.wrap_key_data(jnp.asarray(key_data[0]),
                                   impl=ds.attrs.get("key_impl", "threefry2x32"))
    return RestoredState(states, kernels, key, int(ds.attrs["next_step"]), num_chains)
