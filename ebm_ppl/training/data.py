r"""The data side of :func:`ebm_ppl.fit`: checks, minibatches and held-out batches.

Two sources feed the one compiled training chunk (:func:`ebm_ppl.training.loop.run_chunk`):

* :class:`ArraySource`: an array of shape ``(n, *event_shape)`` living on device, and the
  example indices of each step of the chunk, drawn on the host by :class:`EpochOrder`.
  Each epoch is one permutation seeded by ``(shuffle_key, epoch)``; step ``t`` reads
  batch ``t mod (n // batch_size)`` of epoch ``t // (n // batch_size)`` (the last
  ``n mod batch_size`` examples of the permutation are left out that epoch). The batch is
  therefore a function of ``(shuffle_key, t)`` only, whatever the chunking. (The
  permutation is drawn by NumPy on the host, which is cheaper than on the device for
  small models; ``benchmarks/`` measures it.)
* :class:`StreamSource`: a chunk of batches taken from a Python iterable, stacked to
  ``(steps_per_chunk, batch_size, *event_shape)`` with a ``valid`` mask over the padding
  of the last chunk.

Both expose ``scan_inputs()`` (scanned over the chunk's steps) and ``next_batch(x)`` (the
batch of the step whose scan input is ``x``, and whether it is real), so the training
scan has a single body.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ebm_ppl._types import Array, PRNGKey

__all__ = [
    "ArraySource",
    "EpochOrder",
    "StreamSource",
    "check_data",
    "is_stream",
    "next_stream_chunk",
    "validation_batches",
]


def is_stream(data: Any) -> bool:
    """True when ``data`` is an iterable of batches rather than one array."""
    return isinstance(data, Iterator) or (
        isinstance(data, Iterable)
        and not isinstance(data, (list, tuple, np.ndarray, jax.Array))
        and not hasattr(data, "__array__")
    )


def check_data(data: Any, name: str = "data") -> np.ndarray | jax.Array:
    """Return ``data`` as a finite floating array with a leading example axis.

    Raises
    ------
    ValueError
        If it is not numeric, is a scalar, holds no example or has NaN/inf values.
    """
    if isinstance(data, jax.Array):
        arr = data
    else:
        try:
            arr = np.asarray(data)
        except Exception as err:  # noqa: BLE001 - any conversion failure is the same error
            raise ValueError(
                f"{name} must be an array of shape (n, ...), got {type(data).__name__}"
            ) from err
    if arr.ndim < 1:
        raise ValueError(f"{name} must have a leading example axis (shape (n, ...)), got a scalar")
    if arr.shape[0] < 1:
        raise ValueError(f"{name} must hold at least one example, got shape {arr.shape}")
    kind = np.dtype(arr.dtype).kind
    if kind not in "fiub":
        raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}")
    if kind != "f":
        arr = arr.astype(jnp.result_type(float))
    finite = np.isfinite(np.asarray(arr))
    if not finite.all():
        raise ValueError(f"{name} must be finite, got {int((~finite).sum())} NaN or infinite values")
    return arr


def fit_batch_size(batch_size: int, num_examples: int) -> int:
    """``batch_size`` lowered to ``num_examples`` (with a warning) when larger."""
    if batch_size > num_examples:
        warnings.warn(
            f"batch_size={batch_size} is larger than the data set ({num_examples} examples); "
            f"using batch_size={num_examples}",
            stacklevel=3,
        )
        return num_examples
    return batch_size


class EpochOrder:
    """Host-side example order of :class:`ArraySource`: one NumPy permutation per epoch,
    seeded by the words of ``shuffle_key`` and the epoch (so every process of a
    multi-process job draws the same order)."""

    def __init__(self, shuffle_key: PRNGKey, num_examples: int, batch_size: int) -> None:
        self._words = [int(w) for w in np.ravel(jax.device_get(
            jax.random.key_data(shuffle_key)))]
        self.num_examples, self.batch_size = num_examples, batch_size
        self.batches_per_epoch = num_examples // batch_size
        self._epoch, self._perm = -1, np.empty(0, np.int32)

    def permutation(self, epoch: int) -> np.ndarray:
        """The order of the examples in ``epoch`` (the last one drawn is kept)."""
        if epoch != self._epoch:
            rng = np.random.default_rng(np.random.SeedSequence([*self._words, epoch]))
            self._epoch, self._perm = epoch, rng.permutation(self.num_examples).astype(np.int32)
        return self._perm

    def indices(self, step: int, num_steps: int) -> np.ndarray:
        """``(num_steps, batch_size)`` example indices of steps ``step, step + 1, ...``."""
        out = np.empty((num_steps, self.batch_size), np.int32)
        epochs, batches = np.divmod(np.arange(step, step + num_steps), self.batches_per_epoch)
        used = self.batches_per_epoch * self.batch_size
        for epoch in np.unique(epochs):
            rows = epochs == epoch
            order = self.permutation(int(epoch))[:used].reshape(self.batches_per_epoch, -1)
            out[rows] = order[batches[rows]]
        return out


class ArraySource(NamedTuple):
    """A data set on device and the example indices of each step of one chunk
    (``indices[i]`` for the chunk's step ``i``, from :class:`EpochOrder`)."""

    data: Array
    indices: Array

    def scan_inputs(self) -> Array:
        return self.indices

    def next_batch(self, x: Array) -> tuple[Array, Array]:
        """``(batch, ok)`` of the step whose indices are ``x``."""
        return jnp.take(self.data, x, axis=0), jnp.asarray(True)


class StreamSource(NamedTuple):
    """A chunk of batches from an iterable: ``batches[i]`` is used where ``valid[i]``."""

    batches: Array
    valid: Array

    def scan_inputs(self) -> tuple[Array, Array]:
        return self.batches, self.valid

    def next_batch(self, x: tuple[Array, Array]) -> tuple[Array, Array]:
        """``(batch, ok)``: the step's batch and whether it is real (not padding)."""
        return x


def next_stream_chunk(
    batches: Iterator, pending: list, steps_per_chunk: int, wanted: int
) -> StreamSource | None:
    """Take up to ``wanted`` batches (``pending`` first) into a :class:`StreamSource` of
    length ``steps_per_chunk``, or None when the iterator is exhausted.

    Raises
    ------
    ValueError
        If a batch fails :func:`check_data` or differs in shape from the first.
    """
    items = list(pending)
    pending.clear()
    while len(items) < wanted:
        try:
            items.append(next(batches))
        except StopIteration:
            break
    if not items:
        return None
    checked = [np.asarray(check_data(item, "each batch of data")) for item in items]
    for i, arr in enumerate(checked):
        if arr.shape != checked[0].shape:
            raise ValueError(
                f"every batch of data must have shape {checked[0].shape}, got {arr.shape} "
                f"for batch {i}"
            )
    valid = np.zeros(steps_per_chunk, bool)
    valid[: len(checked)] = True
    checked += [checked[-1]] * (steps_per_chunk - len(checked))
    return StreamSource(jnp.asarray(np.stack(checked)), jnp.asarray(valid))


def validation_batches(data: Any, batch_size: int, event_shape: tuple[int, ...]) -> Array:
    """Held-out data as ``(num_batches, size, *event_shape)`` with ``size =
    min(batch_size, n)`` and ``num_batches = n // size`` (the last ``n mod size``
    examples are left out, so every held-out batch has the training batch's size).

    Raises
    ------
    ValueError
        If ``data`` fails :func:`check_data` or its examples differ in shape from the
        training data's.
    """
    arr = jnp.asarray(check_data(data, "validation_data"))
    if tuple(arr.shape[1:]) != tuple(event_shape):
        raise ValueError(
            f"validation_data must hold examples of shape {tuple(event_shape)} like the "
            f"training data, got shape {tuple(arr.shape[1:])}"
        )
    size = min(batch_size, arr.shape[0])
    num = arr.shape[0] // size
    return jnp.reshape(arr[: num * size], (num, size, *event_shape))
