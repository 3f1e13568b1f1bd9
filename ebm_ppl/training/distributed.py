"""Data-parallel ``fit`` across the processes of a ``jax.distributed`` job.

In a multi-process job every process calls :func:`ebm_ppl.fit` with the same arguments;
the batch is split over a mesh of all the job's devices (``jax.devices()``), so each
process computes the loss and gradient of its own share of every batch and XLA
all-reduces the gradient means across processes (JAX's own runtime: gloo or MPI on CPU,
NCCL on GPU). Parameters, optimiser state and keys are replicated, so every process ends
with the same parameters, equal to a single-process run on the same number of devices
up to floating-point rounding.

A sharding that spans several processes cannot take an array that lives on one
process's device (``jax.device_put`` refuses it): :func:`replicate_across_processes`
builds the replicated global arrays from host values, which are the same on every
process because they come from the same arguments and seed.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.sharding import NamedSharding

__all__ = ["default_devices", "replicate_across_processes"]


def default_devices() -> list[jax.Device]:
    """The devices a batch is split over by default: the job's (all processes') in a
    multi-process job, else this process's local devices."""
    return list(jax.devices() if jax.process_count() > 1 else jax.local_devices())


def replicate_across_processes(tree: Any, sharding: NamedSharding) -> Any:
    """Every array leaf of ``tree`` as a global array replicated by ``sharding``.

    Typed PRNG keys travel as their key data and are re-wrapped with their own
    implementation; other leaves are kept.
    """

    def place(leaf: Any) -> Any:
        if not isinstance(leaf, jax.Array):
            return leaf
        if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            data = jax.device_put(np.asarray(jax.random.key_data(leaf)), sharding)
            return jax.random.wrap_key_data(data, impl=jax.random.key_impl(leaf))
        return jax.device_put(np.asarray(leaf), sharding)

    return jax.tree.map(place, tree)
