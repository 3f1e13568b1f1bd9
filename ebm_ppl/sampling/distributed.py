"""Chains across devices and processes: where ``sample``'s chain axis lives.

``sample`` runs its chains under ``jax.vmap``; the driver asks this module to place the
chain axis on a 1-D mesh ``("chains",)`` over **all** devices of the job,
``jax.devices()``, which in a multi-process ``jax.distributed`` job spans every process.
One code path serves three cases:

* one device: nothing is placed (no-op);
* several local devices: each device runs ``num_chains / jax.device_count()`` chains;
* several processes (one per machine, say): every process calls ``sample`` with the same
  arguments; each computes only the chains of its own devices (a contiguous block, see
  :func:`local_share`), and :func:`gather` hands every process all draws, so all return
  the same InferenceData.

Chains never communicate while stepping, so XLA partitions the vmapped step without
collectives; the only cross-process traffic is the all-gather of each chunk's draws and
of the final state (``jax.experimental.multihost_utils.process_allgather``: JAX's own
runtime, gloo or MPI on CPU, NCCL on GPU). Chain ``c`` at step ``s`` uses
``split(fold_in(key, s), num_chains)[c]``, so the draws do not depend on where chains
run: a job reproduces a single-process run with the same devices bitwise.

Functions the driver calls: :func:`shard_chains` (after setting up the chains),
:func:`gather` (on each chunk's draws and on the final state: a collective, so every
process makes the same calls), :func:`local_mean` (the progress bar's acceptance rate,
not a collective) and :func:`run_info` (recorded in the run configuration).
"""

from __future__ import annotations

import warnings
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from ebm_ppl.errors import SamplingWarning

__all__ = ["chain_sharding", "gather", "local_mean", "local_share", "run_info", "shard_chains"]

#: Name of the one mesh axis (the chain axis of every sharded leaf).
CHAIN_AXIS = "chains"


def _devices() -> list[jax.Device]:
    """All devices of the job, grouped by process so each process owns one block."""
    return sorted(jax.devices(), key=lambda d: (d.process_index, d.id))


def chain_sharding(num_chains: int) -> NamedSharding | None:
    """Sharding of a leaf whose leading axis is the ``num_chains`` chains, or None.

    None means "leave the chains where they are": one device, or ``num_chains`` not a
    multiple of the device count. In a multi-process job the latter warns
    (:class:`~ebm_ppl.SamplingWarning`): every process then runs all chains itself
    (same result, no speed-up).

    Parameters
    ----------
    num_chains
        Number of chains (the leading axis length).

    Returns
    -------
    jax.sharding.NamedSharding or None
        ``PartitionSpec("chains")`` on a 1-D mesh over ``jax.devices()``.
    """
    devices = _devices()
    if len(devices) < 2:
        return None
    if num_chains % len(devices):
        if jax.process_count() > 1:
            warnings.warn(
                f"num_chains ({num_chains}) is not a multiple of the {len(devices)} devices "
                f"of this {jax.process_count()}-process job: every process runs all chains "
                "(same draws, no speed-up)",
                SamplingWarning,
                stacklevel=3,
            )
        return None
    return NamedSharding(Mesh(np.asarray(devices), (CHAIN_AXIS,)), PartitionSpec(CHAIN_AXIS))


def local_share(num_chains: int) -> slice:
    """The chains this process computes, ``slice(start, stop)`` of ``range(num_chains)``.

    All chains when they are not sharded (see :func:`chain_sharding`); otherwise process
    ``p`` of ``P`` with ``n`` devices each computes chains ``[p n k, (p + 1) n k)``, where
    ``k = num_chains / (P n)`` (with equal device counts per process).
    """
    sharding = _quiet_sharding(num_chains)
    if sharding is None:
        return slice(0, num_chains)
    index = sharding.addressable_devices_indices_map((num_chains,)).values()
    starts = [i[0].start or 0 for i in index]
    stops = [num_chains if i[0].stop is None else i[0].stop for i in index]
    return slice(min(starts), max(stops))


def _quiet_sharding(num_chains: int) -> NamedSharding | None:
    """:func:`chain_sharding` without its warning (for queries such as :func:`local_share`)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplingWarning)
        return chain_sharding(num_chains)


def shard_chains(tree: Any, num_chains: int) -> Any:
    """Place the chain axis of every array leaf of ``tree`` across the job's devices.

    Leaves whose leading axis is ``num_chains`` are split along it; other array leaves
    are replicated; non-array leaves are kept. Every process must pass the same values
    (they do: ``sample`` derives them from the same seed); in a multi-process job each
    process contributes only its own block (:func:`jax.make_array_from_process_local_data`).
    A no-op when :func:`chain_sharding` is None.
    """
    split = chain_sharding(num_chains)
    if split is None:
        return tree
    replicated = NamedSharding(split.mesh, PartitionSpec())
    share = local_share(num_chains)
    multi = jax.process_count() > 1

    def place(leaf: Any) -> Any:
        if not isinstance(leaf, (jax.Array, np.ndarray)):
            return leaf
        chained = leaf.ndim > 0 and leaf.shape[0] == num_chains
        sharding = split if chained else replicated
        if not multi:
            return jax.device_put(leaf, sharding)
        host = np.asarray(leaf)
        local = host[share] if chained else host
        return jax.make_array_from_process_local_data(sharding, local, host.shape)

    return jax.tree.map(place, tree)


def gather(tree: Any) -> Any:
    """Every array leaf of ``tree`` as a NumPy array holding all chains, on every process.

    Leaves this process can read whole (single-process runs, replicated values) are
    copied to host; leaves spread over several processes are all-gathered with
    ``multihost_utils.process_allgather`` (a collective: every process must call it).
    """
    leaves, treedef = jax.tree.flatten(tree)
    remote = [i for i, leaf in enumerate(leaves)
              if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable]
    local = [i for i, leaf in enumerate(leaves)
             if isinstance(leaf, jax.Array) and i not in remote]
    out = list(leaves)
    # one device_get: the copies to host run concurrently (one at a time with np.asarray)
    for i, value in zip(local, jax.device_get([leaves[i] for i in local]), strict=True):
        out[i] = np.asarray(value)
    if remote:
        gathered = multihost_utils.process_allgather([leaves[i] for i in remote], tiled=True)
        for i, value in zip(remote, gathered):
            out[i] = np.asarray(value)
    return jax.tree.unflatten(treedef, out)


def local_mean(array: jax.Array, num_valid: int) -> float:
    """Mean of the first ``num_valid`` draws of a chain-first ``(chain, draw)`` array over
    the chains this process holds (no communication).

    For display only (the progress bar's acceptance rate): unlike :func:`gather` it is not
    a collective, so one process may call it while the others do not (a bar on process 0
    alone). On a single process it is the mean over all chains.
    """
    if array.is_fully_addressable:
        return float(np.mean(np.asarray(array)[:, :num_valid]))
    parts = [np.asarray(shard.data)[:, :num_valid].ravel()
             for shard in array.addressable_shards]
    return float(np.mean(np.concatenate(parts)))


def run_info() -> dict[str, int]:
    """Job layout recorded in a run's ``attrs``: ``num_processes`` and ``num_devices``."""
    return {"num_processes": jax.process_count(), "num_devices": jax.device_count()}
