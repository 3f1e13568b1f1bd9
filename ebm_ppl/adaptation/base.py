"""The warm-up protocol: :class:`Warmup` (count, finish, freeze) and :class:`NoWarmup`."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ebm_ppl._types import Array, ArrayLike, ArrayTree, LogDensityFn, PRNGKey
from ebm_ppl._validation import check_probability

__all__ = ["Kernel", "NoWarmup", "NoWarmupState", "Warmup", "block_mask", "counters"]

#: The kernel type (:class:`ebm_ppl.kernels.Kernel`), duck-typed here: the kernels import
#: this module for their default warm-ups, so it must not import them.
Kernel = Any


class NoWarmupState(NamedTuple):
    """State of :func:`none` and :func:`mclmc` (whose tuner runs outside the steps)."""

    count: Array
    num_warmup: Array


def block_mask(blocks: tuple, size: int) -> np.ndarray:
    """The ``(size, size)`` 0/1 mask of a block-structured matrix: the diagonal, and
    every pair of flat indices that lie in one of ``blocks`` (a tuple of index tuples)."""
    mask = np.eye(size)
    for block in blocks:
        idx = np.asarray(block, int)
        mask[np.ix_(idx, idx)] = 1.0
    return mask


def counters(num_warmup: ArrayLike) -> tuple[Array, Array]:
    return jnp.zeros((), jnp.int32), jnp.asarray(num_warmup, jnp.int32)


@dataclasses.dataclass(frozen=True)
class Warmup:
    """Base of the warm-ups: :meth:`update` counts, finishes and freezes; subclasses
    give ``name``, :meth:`init`, :meth:`_step` and (if they average) :meth:`final`.

    Attributes
    ----------
    target_acceptance_rate
        Acceptance rate the warm-up steers to (unused by :func:`none`).
    """

    name: ClassVar[str] = "none"
    #: Shortest warm-up that fits the scheme; ``sample`` warns below it.
    min_warmup: ClassVar[int] = 0
    #: Whether the warm-up runs as one call before sampling (:meth:`tune`) instead of
    #: step by step.
    tunes_once: ClassVar[bool] = False
    target_acceptance_rate: float = 0.8

    def __post_init__(self) -> None:
        check_probability("target_acceptance_rate", self.target_acceptance_rate)

    def init(self, kernel: Kernel, position: ArrayTree, num_warmup: ArrayLike) -> Any:
        """Warm-up state of one chain of ``kernel`` at ``position``."""
        return NoWarmupState(*counters(num_warmup))

    def observe(self, state: Any) -> ArrayTree:
        """What :meth:`update` is fed as ``position`` after a transition to the kernel
        state ``state``: the chain's position (:class:`TemperingWarmup` takes every
        replica's when it adapts their mass matrices)."""
        return state.position

    def update(
        self, kernel: Kernel, state: Any, position: ArrayTree, acceptance_rate: ArrayLike,
        stats: dict[str, Array] | None = None,
    ) -> tuple[Kernel, Any]:
        """One warm-up update of one chain after a transition of ``kernel``.

        The update of the last warm-up step also applies :meth:`final`; updates past
        ``num_warmup`` return ``kernel`` and ``state`` unchanged.

        Parameters
        ----------
        kernel
            The kernel that made the transition.
        state
            The chain's warm-up state.
        position
            Position after the transition (fed to a mass-matrix estimate).
        acceptance_rate
            Acceptance rate of the transition.
        stats
            The transition's ``sample_stats`` (:func:`ebm_ppl.kernels.info.to_stats`), for
            warm-ups that read more than the acceptance rate (:func:`tempering`).

        Returns
        -------
        (kernel, state)
            The kernel with tuned hyper-parameters and the new state.
        """
        kernel = kernel.with_defaults(position)
        new_kernel, new_state = self._step(kernel, state, position, jnp.asarray(acceptance_rate),
                                           {} if stats is None else stats)
        new_state = new_state._replace(count=state.count + 1)
        is_last = new_state.count == state.num_warmup
        new_kernel = jax.lax.cond(
            is_last, lambda k: self.final(k, new_state), lambda k: k, new_kernel
        )
        in_warmup = state.count < state.num_warmup

        def keep(new: Any, old: Any) -> Any:
            return jax.tree.map(
                lambda a, b: jnp.where(in_warmup, a, b).astype(jnp.result_type(b)), new, old)

        return keep(new_kernel, kernel), keep(new_state, state)

    def final(self, kernel: Kernel, state: Any) -> Kernel:
        """The kernel to sample with (the tuned hyper-parameters as they are)."""
        return kernel

    def _step(self, kernel: Kernel, state: Any, position: ArrayTree,
              acceptance_rate: Array, stats: dict[str, Array]) -> tuple[Kernel, Any]:
        return kernel, state

    def tune(self, kernels: Kernel, rng_key: PRNGKey, states: Any, pot: Any,
             num_warmup: int) -> tuple[Any, Kernel]:
        """Tune every chain at once before sampling (only where ``tunes_once``)."""
        raise NotImplementedError(f"the {self.name!r} warm-up runs step by step")

    def tune_one(self, kernel: Kernel, rng_key: PRNGKey, state: Any,
                 logdensity_fn: LogDensityFn, num_warmup: int) -> tuple[Any, Kernel]:
        """Tune one chain before sampling (only where ``tunes_once``)."""
        raise NotImplementedError(f"the {self.name!r} warm-up runs step by step")


@dataclasses.dataclass(frozen=True)
class NoWarmup(Warmup):
    """Nothing is adapted (:func:`none`)."""

    name: ClassVar[str] = "none"
