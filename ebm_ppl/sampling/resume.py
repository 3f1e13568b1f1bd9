"""The sampler state stored in an InferenceData for ``sample(..., resume=idata)``:
writing it (:func:`sampler_state_dataset`) and reading it back (:func:`restore_state`).

The ``sampler_state`` group is a netCDF-safe :class:`xarray.Dataset`: the leaves of the
kernel states (``state_0``, ``state_1``, ...) and of the per-chain tuned kernels
(``parameter_0``, ...), each with a leading ``chain`` dimension; the random key of the
sampling phase as its raw key data (``key_data``, ``uint32``, from
:func:`jax.random.key_data`, repeated along ``chain`` so that ``arviz.concat(...,
dim="chain")`` works; the key implementation is the ``key_impl`` attribute);
the next global step and the kernel name as attributes. The pytree structures are not
stored: they are rebuilt from the kernel and the potential, and checked against the
stored leaves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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

__all__ = ["sampler_state_dataset", "restore_state", "SAMPLER_STATE"]

#: Name of the InferenceData group holding the final sampler state.
SAMPLER_STATE = "sampler_state"


def sampler_state_dataset(
    states: Any, kernels: Kernel, key: PRNGKey, next_step: int, kernel_name: str
) -> xr.Dataset:
    """Final sampler state as an xarray Dataset (netCDF-safe) for ``resume``."""
    variables = {}
    for prefix, tree in (("state", states), ("parameter", kernels)):
        for i, leaf in enumerate(jax.tree.leaves(tree)):
            arr = np.asarray(leaf)
            name = f"{prefix}_{i}"
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


def _leaves(ds: xr.Dataset, prefix: str) -> list[Array]:
    count = sum(name.startswith(f"{prefix}_") for name in ds.data_vars)
    return [jnp.asarray(ds[f"{prefix}_{i}"].values) for i in range(count)]


def _first_position(state_leaves: list[Array], pot: Potential) -> ArrayTree:
    """One chain's position: the first leaves of the stored state have its structure."""
    if pot.example is not None:
        n = len(jax.tree.leaves(pot.example))
        treedef = jax.tree.structure(pot.example)
        return jax.tree.unflatten(treedef, [leaf[0] for leaf in state_leaves[:n]])
    return state_leaves[0][0]


def restore_state(
    idata: az.InferenceData, pot: Potential, kernel: Kernel
) -> tuple[Any, Kernel, PRNGKey, int, int]:
    """Inverse of :func:`sampler_state_dataset`, checked against ``pot`` and ``kernel``.

    Returns
    -------
    (states, kernels, key, next_step, num_chains)

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
    state_leaves, param_leaves = _leaves(ds, "state"), _leaves(ds, "parameter")
    num_chains = state_leaves[0].shape[0]
    # rebuild the pytree structures from the kernel on the stored position's shape
    state_def = jax.tree.structure(
        jax.eval_shape(lambda: kernel.init(_first_position(state_leaves, pot),
                                           pot.logdensity_fn))
    )
    if state_def.num_leaves != len(state_leaves):
        raise ValueError("resume's sampler state does not match this potential and kernel")
    states = jax.tree.unflatten(state_def, state_leaves)
    one = jax.tree.map(lambda x: x[0], states.position)
    kernel_def = jax.tree.structure(per_chain_kernels(kernel, one, num_chains))
    if kernel_def.num_leaves != len(param_leaves):
        raise ValueError("resume's sampler state does not match this potential and kernel")
    kernels = jax.tree.unflatten(kernel_def, param_leaves)
    key_data = np.asarray(ds["key_data"].values, np.uint32)
    if not np.all(key_data == key_data[:1]):
        raise ValueError("resume holds chains joined from separate runs (their random keys "
                         "differ); resume each run on its own and join the results")
    key = jax.random.wrap_key_data(jnp.asarray(key_data[0]),
                                   impl=ds.attrs.get("key_impl", "threefry2x32"))
    return states, kernels, key, int(ds.attrs["next_step"]), num_chains
