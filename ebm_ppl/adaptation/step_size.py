"""Step-size warm-ups: dual averaging alone, and Stan's window adaptation of the step size
and the inverse mass matrix."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
from blackjax.adaptation.mass_matrix import mass_matrix_adaptation, welford_algorithm
from blackjax.adaptation.step_size import dual_averaging_adaptation
from jax.flatten_util import ravel_pytree

from ebm_ppl._types import Array, ArrayLike, ArrayTree
from ebm_ppl.adaptation.base import Kernel, Warmup, block_mask, counters
from ebm_ppl.adaptation.schedule import MIN_WINDOW_WARMUP, window_stage

__all__ = ["DualAveragingState", "DualAveragingWarmup", "WindowState", "WindowWarmup"]


class WindowState(NamedTuple):
    """State of :func:`window`: BlackJAX's dual-averaging state of the log step size,
    its mass-matrix state (Welford estimate of the current window and the current
    inverse mass matrix), the updates done so far and the (traced) warm-up length."""

    dual_averaging: Any
    mass_matrix: Any
    count: Array
    num_warmup: Array


class DualAveragingState(NamedTuple):
    """State of :func:`dual_averaging`: BlackJAX's dual-averaging state, count, length."""

    dual_averaging: Any
    count: Array
    num_warmup: Array


@dataclasses.dataclass(frozen=True)
class DualAveragingWarmup(Warmup):
    """Dual averaging of the step size (:func:`dual_averaging`)."""

    name: ClassVar[str] = "step_size"

    def init(self, kernel: Kernel, position: ArrayTree, num_warmup: ArrayLike
             ) -> DualAveragingState:
        flat, _ = ravel_pytree(position)
        da_init, _, _ = dual_averaging_adaptation(self.target_acceptance_rate)
        step_size = kernel.parameters.get("step_size", jnp.ones((), flat.dtype))
        return DualAveragingState(da_init(step_size), *counters(num_warmup))

    def _step(self, kernel, state, position, acceptance_rate, stats):
        _, da_update, _ = dual_averaging_adaptation(self.target_acceptance_rate)
        dual_averaging = da_update(state.dual_averaging, acceptance_rate)
        return (kernel.replace(step_size=jnp.exp(dual_averaging.log_step_size)),
                state._replace(dual_averaging=dual_averaging))

    def final(self, kernel: Kernel, state: Any) -> Kernel:
        """The kernel with its step size at the dual-averaging average."""
        _, _, da_final = dual_averaging_adaptation(self.target_acceptance_rate)
        return kernel.replace(step_size=da_final(state.dual_averaging))


@dataclasses.dataclass(frozen=True)
class WindowWarmup(Warmup):
    """Stan's window adaptation (:func:`window`).

    Attributes
    ----------
    regularize
        Shrink each estimate towards :math:`10^{-3} I` with weight :math:`5/(n + 5)`
        (Stan's and NumPyro's rule) or use the plain sample covariance.
    mass_blocks
        Block structure of a dense inverse mass matrix (NumPyro's ``dense_mass`` as site
        groups): a tuple of groups of flat indices; entries outside the blocks and off
        the diagonal are kept at zero (:func:`block_mask`). Empty: no structure.
    adapt_step_size
        Whether the step size is tuned (False: the mass matrix only, step size as given).
    """

    name: ClassVar[str] = "window"
    min_warmup: ClassVar[int] = MIN_WINDOW_WARMUP
    regularize: bool = True
    mass_blocks: tuple = ()
    adapt_step_size: bool = True

    def init(self, kernel: Kernel, position: ArrayTree, num_warmup: ArrayLike) -> WindowState:
        kernel = kernel.with_defaults(position)
        flat, _ = ravel_pytree(position)
        da_init, _, _ = dual_averaging_adaptation(self.target_acceptance_rate)
        step_size = kernel.parameters.get("step_size", jnp.ones((), flat.dtype))
        imm = kernel.parameters["inverse_mass_matrix"]
        mm_init, _, _ = mass_matrix_adaptation(is_diagonal_matrix=jnp.ndim(imm) == 1)
        return WindowState(da_init(step_size), mm_init(flat.shape[0], imm),
                           *counters(num_warmup))

    def _step(self, kernel, state, position, acceptance_rate, stats):
        target = self.target_acceptance_rate
        da_init, da_update, da_final = dual_averaging_adaptation(target)
        diagonal = jnp.ndim(state.mass_matrix.inverse_mass_matrix) == 1
        _, mm_update, mm_final = mass_matrix_adaptation(is_diagonal_matrix=diagonal)
        is_slow, is_window_end = window_stage(state.count, state.num_warmup)
        flat, _ = ravel_pytree(position)
        dual_averaging = da_update(state.dual_averaging, acceptance_rate)
        mass_matrix = jax.lax.cond(
            is_slow, lambda m: mm_update(m, flat), lambda m: m, state.mass_matrix
        )

        def end_window(args):
            mass_matrix, dual_averaging = args
            new = mm_final(mass_matrix)
            imm = new.inverse_mass_matrix
            if not self.regularize:  # the plain sample covariance
                imm, _, _ = welford_algorithm(diagonal)[2](mass_matrix.wc_state)
            if self.mass_blocks:  # NumPyro's block structure: zero outside the blocks
                imm = imm * block_mask(self.mass_blocks, imm.shape[0]).astype(imm.dtype)
            new = new._replace(inverse_mass_matrix=imm.astype(new.inverse_mass_matrix.dtype))
            return new, da_init(da_final(dual_averaging))

        mass_matrix, dual_averaging = jax.lax.cond(
            is_window_end, end_window, lambda a: a, (mass_matrix, dual_averaging)
        )
        step_size = (jnp.exp(dual_averaging.log_step_size) if self.adapt_step_size
                     else kernel.parameters["step_size"])
        kernel = kernel.replace(
            step_size=step_size,
            inverse_mass_matrix=mass_matrix.inverse_mass_matrix,
        )
        return kernel, state._replace(dual_averaging=dual_averaging, mass_matrix=mass_matrix)

    def final(self, kernel: Kernel, state: Any) -> Kernel:
        """The kernel with its step size at the dual-averaging average."""
        if not self.adapt_step_size:
            return kernel
        _, _, da_final = dual_averaging_adaptation(self.target_acceptance_rate)
        return kernel.replace(step_size=da_final(state.dual_averaging))
