r"""Warm-up adaptation of kernel hyper-parameters: the one implementation, one chain at a time.

Used by :func:`ebm_ppl.sample` (under ``vmap``, each chain tunes its own kernel) and by
the NumPyro adapters of :mod:`ebm_ppl.numpyro`. The API is three pure functions on a
:class:`~ebm_ppl.kernels.Kernel` and an :class:`AdaptationState`:

.. code-block:: python

    state = adaptation.init(kernel, position, num_warmup)            # before warm-up
    kernel, state = adaptation.update(kernel, state, position, acceptance_rate)
    # ... once per warm-up transition, with the position and acceptance rate of the
    # transition just made by ``kernel``; the update of the last warm-up step (count
    # num_warmup - 1) also applies ``final``, and later calls leave both unchanged.
    kernel = adaptation.final(kernel, state)                          # averaged values

The tuned hyper-parameters live in the returned kernel (``kernel.replace`` /
``kernel.with_scale``), so what is adapted is what the next ``kernel.step`` uses.
``num_warmup`` is a traced number: the Stan window schedule is computed by
:func:`window_stage` inside the trace, so a new ``num_warmup`` compiles nothing.

Schemes (``kernel.adaptation``, or the ``scheme`` argument):

* ``"window"`` — Stan's schedule (:func:`window_stage`): dual averaging of the step size
  in every window, and a diagonal or dense inverse mass matrix from Welford estimates
  (BlackJAX ``mass_matrix_adaptation``, regularised towards :math:`10^{-3} I` unless
  ``kernel.regularize_mass_matrix`` is False; zero outside ``kernel.mass_blocks``
  when the kernel has a block structure) in slow, doubling windows; the step size
  restarts at the end of each slow window. The start is
  the kernel's own ``inverse_mass_matrix`` (user-given 1-D or 2-D, or the identity);
  it stays unchanged until the first slow window ends (with ``num_warmup < 20``, no
  window at all);
* ``"step_size"`` — dual averaging of the step size only (MALA; HMC/NUTS/Barker with
  ``adapt_mass_matrix=False``, whose inverse mass matrix is then left as given):

  .. math::

      \log h_{t+1} = \mu - \frac{\sqrt t}{\gamma (t + t_0)} \sum_{s \le t}
      (\delta - \alpha_s), \qquad
      \overline{\log h}_{t+1} = t^{-\kappa} \log h_{t+1} + (1 - t^{-\kappa})
      \overline{\log h}_t,

  :math:`\mu = \log 10 h_0`, :math:`\gamma = 0.05`, :math:`t_0 = 10`,
  :math:`\kappa = 0.75` (Hoffman & Gelman 2014, BlackJAX defaults); sampling uses
  :math:`\exp \overline{\log h}`;
* ``"scale"`` — Robbins–Monro on the log scale of a random-walk MH proposal,
  :math:`\log s_{t+1} = \log s_t + t^{-0.6} (\alpha_t - \delta)`;
* ``"none"`` — nothing is adapted.

References
----------
Hoffman & Gelman (2014), https://arxiv.org/abs/1111.4246 (dual averaging);
Stan Reference Manual, *HMC algorithm parameters* (window schedule);
Andrieu & Thoms (2008), *A tutorial on adaptive MCMC*, Statistics and Computing 18.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from blackjax.adaptation.mass_matrix import mass_matrix_adaptation, welford_algorithm
from blackjax.adaptation.step_size import dual_averaging_adaptation
from jax.flatten_util import ravel_pytree

from ebm_ppl._types import Array, ArrayLike, ArrayTree
from ebm_ppl.kernels.base import ADAPTATIONS, Kernel, block_mask

__all__ = [
    "AdaptationState",
    "MIN_WINDOW_WARMUP",
    "init",
    "update",
    "final",
    "window_stage",
    "warmup_schedule",
]

#: Robbins–Monro gain exponent for random-walk scale adaptation: γ_t = t^{-0.6}
#: satisfies Σγ = ∞, Σγ² < ∞ (Andrieu & Thoms 2008).
_RM_EXPONENT = 0.6
#: Stan's window sizes: initial fast buffer, first slow window, final fast buffer.
_INITIAL_BUFFER, _FIRST_WINDOW, _FINAL_BUFFER = 75, 25, 50
#: Below this many warm-up steps Stan's schedule has no slow window at all.
_MIN_WINDOWS = 20
#: Shortest warm-up that fits Stan's default windows (75 + 25 + 50); shorter ones are
#: squeezed (15 % / 75 % / 10 %) and :func:`ebm_ppl.sample` warns.
MIN_WINDOW_WARMUP = _INITIAL_BUFFER + _FIRST_WINDOW + _FINAL_BUFFER
#: Iterations of the window loop: window sizes double, so 32 cover any int32 length.
_MAX_WINDOWS = 32


class AdaptationState(NamedTuple):
    """Per-chain warm-up state.

    Attributes
    ----------
    dual_averaging
        BlackJAX dual-averaging state of the log step size (schemes ``window`` and
        ``step_size``; None otherwise).
    mass_matrix
        BlackJAX mass-matrix state (Welford estimate of the current window and the
        current inverse mass matrix; scheme ``window`` only, None otherwise).
    log_scale
        Log proposal scale (scheme ``scale``; 0 otherwise).
    count
        Warm-up updates done so far.
    num_warmup
        Length of the warm-up (traced: a new length compiles nothing).
    """

    dual_averaging: Any
    mass_matrix: Any
    log_scale: Array
    count: Array
    num_warmup: Array


def _scheme(kernel: Kernel, scheme: str | None) -> str:
    scheme = kernel.adaptation if scheme is None else scheme
    if scheme not in ADAPTATIONS:
        raise ValueError(f"scheme must be one of {ADAPTATIONS}, got {scheme!r}")
    return scheme


# ---------------------------------------------------------------------- schedule
def window_stage(step: ArrayLike, num_warmup: ArrayLike) -> tuple[Array, Array]:
    """Stage of warm-up step ``step`` in Stan's schedule, as traced booleans.

    Returns ``(is_slow, is_window_end)``: whether the step is in a slow window (the
    mass matrix is estimated) and whether it is the last step of one (the matrix is
    computed and the step size restarted). Same schedule as BlackJAX's
    ``build_schedule(num_warmup)``: a fast buffer of 75 steps, slow windows of 25, 50,
    100, ... steps (the last one stretched to the final buffer), a final fast buffer
    of 50; a warm-up shorter than 150 uses 15 % / 75 % / 10 %, and one shorter than 20
    steps has no slow window. Both arguments may be traced.
    """
    step = jnp.asarray(step, jnp.int32)
    n = jnp.asarray(num_warmup, jnp.int32)
    squeeze = n < MIN_WINDOW_WARMUP
    initial = jnp.where(squeeze, (15 * n) // 100, _INITIAL_BUFFER)
    final_size = jnp.where(squeeze, (10 * n) // 100, _FINAL_BUFFER)
    first = jnp.where(squeeze, n - initial - final_size, _FIRST_WINDOW)
    final_start = n - final_size

    def window(_, carry):
        start, size, hit = carry
        active = start < final_start
        grow = 3 * size <= final_start - start
        end = start + jnp.where(grow, size, final_start - start)
        hit = hit | (active & (step == end - 1))
        return jnp.where(active, end, start), jnp.where(active & grow, 2 * size, size), hit

    _, _, is_end = jax.lax.fori_loop(0, _MAX_WINDOWS, window, (initial, first, False))
    has_windows = n >= _MIN_WINDOWS
    is_slow = has_windows & (step >= initial) & (step < final_start)
    return is_slow, has_windows & is_end


def warmup_schedule(num_warmup: int) -> np.ndarray:
    """The whole schedule as an ``(num_warmup, 2)`` int array of ``(is_slow,
    is_window_end)`` rows (for inspection; the samplers call :func:`window_stage`)."""
    steps = jnp.arange(int(num_warmup))
    stages = jax.vmap(window_stage, (0, None))(steps, num_warmup)
    return np.stack([np.asarray(s, np.int32) for s in stages], axis=-1)


# ---------------------------------------------------------------------- init / update
def init(
    kernel: Kernel, position: ArrayTree, num_warmup: ArrayLike, scheme: str | None = None
) -> AdaptationState:
    """Warm-up state of one chain of ``kernel`` at ``position``.

    Parameters
    ----------
    kernel
        The kernel to tune (its current hyper-parameters are the starting point).
    position
        One chain's position (sets the size of the mass matrix).
    num_warmup
        Number of warm-up transitions (may be traced).
    scheme
        One of :data:`~ebm_ppl.kernels.ADAPTATIONS`; ``kernel.adaptation`` when None.
    """
    scheme = _scheme(kernel, scheme)
    kernel = kernel.with_defaults(position)
    flat, _ = ravel_pytree(position)
    dual_averaging = mass_matrix = None
    log_scale = jnp.zeros((), flat.dtype)
    if scheme in ("window", "step_size"):
        da_init, _, _ = dual_averaging_adaptation(kernel.target_acceptance_rate)
        step_size = kernel.parameters.get("step_size", jnp.ones((), flat.dtype))
        dual_averaging = da_init(step_size)
    if scheme == "window":
        imm = kernel.parameters["inverse_mass_matrix"]
        mm_init, _, _ = mass_matrix_adaptation(is_diagonal_matrix=jnp.ndim(imm) == 1)
        mass_matrix = mm_init(flat.shape[0], imm)
    if scheme == "scale":
        log_scale = jnp.log(jnp.asarray(kernel.scale, flat.dtype))
    return AdaptationState(dual_averaging, mass_matrix, log_scale,
                           jnp.zeros((), jnp.int32), jnp.asarray(num_warmup, jnp.int32))


def update(
    kernel: Kernel,
    state: AdaptationState,
    position: ArrayTree,
    acceptance_rate: ArrayLike,
    scheme: str | None = None,
) -> tuple[Kernel, AdaptationState]:
    """One warm-up update of one chain after a transition of ``kernel``.

    The update of the last warm-up step also applies :func:`final`; updates past
    ``num_warmup`` return ``kernel`` and ``state`` unchanged (so a driver may call it on
    every iteration under ``jnp.where``-free control flow).

    Parameters
    ----------
    kernel
        The kernel that made the transition.
    state
        The chain's :class:`AdaptationState`.
    position
        Position after the transition (fed to the mass-matrix estimate).
    acceptance_rate
        Acceptance rate of the transition.
    scheme
        As in :func:`init`.

    Returns
    -------
    (kernel, state)
        The kernel with tuned hyper-parameters and the new state.
    """
    scheme = _scheme(kernel, scheme)
    if scheme == "none":
        return kernel, state
    kernel = kernel.with_defaults(position)
    acceptance_rate = jnp.asarray(acceptance_rate)
    new_kernel, new_state = _UPDATES[scheme](kernel, state, position, acceptance_rate)
    new_state = new_state._replace(count=state.count + 1)
    is_last = new_state.count == state.num_warmup
    new_kernel = jax.lax.cond(
        is_last, lambda k: final(k, new_state, scheme), lambda k: k, new_kernel
    )
    in_warmup = state.count < state.num_warmup

    def keep(new: Any, old: Any) -> Any:
        return jax.tree.map(lambda a, b: jnp.where(in_warmup, a, b).astype(jnp.result_type(b)), new, old)

    return keep(new_kernel, kernel), keep(new_state, state)


def final(kernel: Kernel, state: AdaptationState, scheme: str | None = None) -> Kernel:
    """The kernel to sample with: step size at its dual-averaging average (schemes
    ``window`` and ``step_size``); other hyper-parameters as last adapted."""
    scheme = _scheme(kernel, scheme)
    if scheme not in ("window", "step_size"):
        return kernel
    _, _, da_final = dual_averaging_adaptation(kernel.target_acceptance_rate)
    return kernel.replace(step_size=da_final(state.dual_averaging))


def _update_scale(kernel, state, position, acceptance_rate):
    gain = (state.count + 1).astype(state.log_scale.dtype) ** -_RM_EXPONENT
    log_scale = state.log_scale + gain * (acceptance_rate - kernel.target_acceptance_rate)
    return kernel.with_scale(jnp.exp(log_scale)), state._replace(log_scale=log_scale)


def _update_step_size(kernel, state, position, acceptance_rate):
    _, da_update, _ = dual_averaging_adaptation(kernel.target_acceptance_rate)
    dual_averaging = da_update(state.dual_averaging, acceptance_rate)
    return (kernel.replace(step_size=jnp.exp(dual_averaging.log_step_size)),
            state._replace(dual_averaging=dual_averaging))


def _update_window(kernel, state, position, acceptance_rate):
    target = kernel.target_acceptance_rate
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
        if not kernel.regularize_mass_matrix:  # the plain sample covariance
            imm, _, _ = welford_algorithm(diagonal)[2](mass_matrix.wc_state)
        if kernel.mass_blocks:  # NumPyro's block structure: zero outside the blocks
            imm = imm * block_mask(kernel.mass_blocks, imm.shape[0]).astype(imm.dtype)
        new = new._replace(inverse_mass_matrix=imm.astype(new.inverse_mass_matrix.dtype))
        return new, da_init(da_final(dual_averaging))

    mass_matrix, dual_averaging = jax.lax.cond(
        is_window_end, end_window, lambda a: a, (mass_matrix, dual_averaging)
    )
    kernel = kernel.replace(
        step_size=jnp.exp(dual_averaging.log_step_size),
        inverse_mass_matrix=mass_matrix.inverse_mass_matrix,
    )
    return kernel, state._replace(dual_averaging=dual_averaging, mass_matrix=mass_matrix)


_UPDATES = {"scale": _update_scale, "step_size": _update_step_size, "window": _update_window}
