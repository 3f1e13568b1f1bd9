r"""Warm-up adaptation of kernel hyper-parameters, one chain at a time (used under vmap).

Schemes (``Kernel.adaptation``):

* ``"window"`` — Stan's schedule (BlackJAX's ``build_schedule``): dual averaging of the step
  size (Nesterov; BlackJAX ``dual_averaging_adaptation``) in fast windows, plus a diagonal
  inverse mass matrix from Welford estimates (BlackJAX ``mass_matrix_adaptation``) in slow,
  doubling windows;
* ``"step_size"`` — dual averaging only (MALA: BlackJAX's MALA takes no mass matrix);
* ``"scale"`` — Robbins–Monro on the log scale of a random-walk proposal,
  :math:`\log s_{t+1} = \log s_t + t^{-0.6} (\alpha_t - \alpha^\star)`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from blackjax.adaptation.mass_matrix import mass_matrix_adaptation
from blackjax.adaptation.step_size import dual_averaging_adaptation
from jax.flatten_util import ravel_pytree

from ebm_ppl._types import Array, ArrayTree
from ebm_ppl.kernels.base import Kernel

__all__ = ["WarmupState", "warmup_init", "adapt_step", "finalise_warmup", "scale_of"]

#: Robbins–Monro gain exponent for random-walk scale adaptation: γ_t = t^{-0.6}
#: satisfies Σγ = ∞, Σγ² < ∞ (Andrieu & Thoms 2008).
_RM_EXPONENT = 0.6


class WarmupState(NamedTuple):
    """Per-chain adaptation state: dual averaging, mass matrix (Welford), log scale, count."""

    da_state: Any
    mm_state: Any
    log_scale: Array
    count: Array


def scale_of(parameters: dict) -> Array:
    """The random-walk scale inside an MH kernel's parameters."""
    return parameters["proposal"].params["scale"]


def with_scale(parameters: dict, scale: Array) -> dict:
    """MH kernel parameters with the proposal's scale replaced."""
    proposal = parameters["proposal"]
    new = dataclasses.replace(proposal, params={**proposal.params, "scale": scale})
    return {**parameters, "proposal": new}


def warmup_init(kernel: Kernel, parameters: dict, position: ArrayTree) -> WarmupState:
    """Per-chain warm-up state (called under vmap)."""
    da_init, _, _ = dual_averaging_adaptation(kernel.target_acceptance_rate)
    mm_init, _, _ = mass_matrix_adaptation(is_diagonal_matrix=True)
    flat, _ = ravel_pytree(position)
    step_size = parameters.get("step_size", jnp.asarray(1.0, flat.dtype))
    log_scale = jnp.log(scale_of(parameters)) if kernel.adaptation == "scale" else 0.0
    return WarmupState(
        da_state=da_init(step_size),
        mm_state=mm_init(flat.shape[0]),
        log_scale=jnp.asarray(log_scale, flat.dtype),
        count=jnp.asarray(0, jnp.int32),
    )


def adapt_step(
    kernel: Kernel, scheme: str, stage: Array, parameters: dict, warmup: WarmupState,
    position: ArrayTree, acceptance_rate: Array,
) -> tuple[dict, WarmupState]:
    """One adaptation update for one chain."""
    target = kernel.target_acceptance_rate
    count = warmup.count + 1
    if scheme == "scale":
        gain = count.astype(acceptance_rate.dtype) ** -_RM_EXPONENT
        log_scale = warmup.log_scale + gain * (acceptance_rate - target)
        return with_scale(parameters, jnp.exp(log_scale)), warmup._replace(
            log_scale=log_scale, count=count
        )
    _, da_update, da_final = dual_averaging_adaptation(target)
    da_state = da_update(warmup.da_state, acceptance_rate)
    if scheme == "step_size":
        step_size = jnp.exp(da_state.log_step_size)
        return {**parameters, "step_size": step_size}, warmup._replace(
            da_state=da_state, count=count
        )
    # "window": Stan's schedule, stage = (slow?, end of slow window?)
    da_init, _, _ = dual_averaging_adaptation(target)
    _, mm_update, mm_final = mass_matrix_adaptation(is_diagonal_matrix=True)
    is_slow, is_window_end = stage[0] == 1, stage[1] == 1
    flat, _ = ravel_pytree(position)
    mm_state = jax.lax.cond(
        is_slow, lambda m: mm_update(m, flat), lambda m: m, warmup.mm_state
    )

    def end_window(args):
        mm_state, da_state = args
        mm_state = mm_final(mm_state)
        return mm_state, da_init(da_final(da_state))

    mm_state, da_state = jax.lax.cond(
        is_window_end, end_window, lambda a: a, (mm_state, da_state)
    )
    parameters = {
        **parameters,
        "step_size": jnp.exp(da_state.log_step_size),
        "inverse_mass_matrix": mm_state.inverse_mass_matrix,
    }
    return parameters, warmup._replace(da_state=da_state, mm_state=mm_state, count=count)


def finalise_warmup(kernel: Kernel, scheme: str, parameters: dict, warmup: WarmupState) -> dict:
    if scheme in ("step_size", "window"):
        _, _, da_final = dual_averaging_adaptation(kernel.target_acceptance_rate)
        return {**parameters, "step_size": jax.vmap(da_final)(warmup.da_state)}
    return parameters
