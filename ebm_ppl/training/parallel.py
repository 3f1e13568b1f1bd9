r"""Data-parallel training on the local devices, with :mod:`jax.sharding`.

The parameters, optimizer and objective states, data set and keys are *replicated* on
every device; inside the compiled step each minibatch is constrained to be *sharded*
along its example axis (``NamedSharding(mesh, P("data"))``). XLA's SPMD partitioner then
evaluates every example's loss on the device that holds it and all-reduces the
gradient means, so each device computes ``batch_size / num_devices`` examples and all
devices apply the same update. Random draws do not depend on the sharding (JAX's
partitionable threefry), so a run on several devices equals the one-device run up to
floating-point rounding (sums are reduced in another order).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from ebm_ppl.training.distributed import default_devices, replicate_across_processes

__all__ = ["batch_sharding", "replicate"]

#: Name of the mesh axis the batch is split along.
AXIS = "data"


def batch_sharding(devices: Sequence[Any] | None, batch_size: int) -> NamedSharding | None:
    """The sharding of a batch over ``devices``, or None for a one-device run.

    ``devices=None`` means all local devices when ``batch_size`` is a multiple of their
    number (else one device, with a warning).

    Raises
    ------
    TypeError
        If ``devices`` is not a sequence of ``jax.Device``.
    ValueError
        If ``devices`` is empty or ``batch_size`` is not a multiple of its length.
    """
    explicit = devices is not None
    devices = list(default_devices() if devices is None else devices)
    if not all(isinstance(d, jax.Device) for d in devices):
        raise TypeError(f"devices must be a sequence of jax.Device or None, got {devices!r}")
    if not devices:
        raise ValueError("devices must hold at least one jax.Device, got an empty sequence")
    if len(devices) == 1:
        return None
    if batch_size % len(devices):
        message = (f"batch_size must be a multiple of the number of devices "
                   f"({len(devices)}) to split batches across them, got {batch_size}")
        if explicit:
            raise ValueError(message)
        warnings.warn(message + "; training on one device", stacklevel=3)
        return None
    return NamedSharding(Mesh(np.asarray(devices), (AXIS,)), PartitionSpec(AXIS))


def replicate(tree: Any, sharding: NamedSharding | None) -> Any:
    """``tree`` copied to every device of ``sharding``'s mesh (unchanged for None)."""
    if sharding is None:
        return tree
    target = NamedSharding(sharding.mesh, PartitionSpec())
    if jax.process_count() > 1:
        return replicate_across_processes(tree, target)
    return jax.device_put(tree, target)
