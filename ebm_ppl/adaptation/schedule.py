"""Stan's warm-up window schedule, computed inside the trace (a new ``num_warmup``
compiles nothing)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ebm_ppl._types import Array, ArrayLike

__all__ = ["MIN_WINDOW_WARMUP", "window_stage", "warmup_schedule"]

#: Stan's window sizes: initial fast buffer, first slow window, final fast buffer.
_INITIAL_BUFFER, _FIRST_WINDOW, _FINAL_BUFFER = 75, 25, 50
#: Below this many warm-up steps Stan's schedule has no slow window at all.
_MIN_WINDOWS = 20
#: Shortest warm-up that fits Stan's default windows (75 + 25 + 50); shorter ones are
#: squeezed (15 % / 75 % / 10 %) and :func:`ebm_ppl.sample` warns.
MIN_WINDOW_WARMUP = _INITIAL_BUFFER + _FIRST_WINDOW + _FINAL_BUFFER
#: Iterations of the window loop: window sizes double, so 32 cover any int32 length.
_MAX_WINDOWS = 32



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
