"""How compiled loops skip their padding steps on each platform (one place for
:mod:`ebm_ppl.sampling.driver` and :mod:`ebm_ppl.training.loop`)."""

from __future__ import annotations

from collections.abc import Iterable

import jax

__all__ = ["MAX_PADDING_FRACTION", "fit_padding_mode", "padding_mode"]

#: Largest share of a CPU ``fit``'s steps that its last chunk may compute and discard
#: (:func:`fit_padding_mode`).
MAX_PADDING_FRACTION = 0.05


def padding_mode(devices: Iterable[jax.Device] | None = None) -> str:
    """How a compiled chunk skips the steps past the end of a run on ``devices`` (the
    default backend's when None).

    ``"cond"`` (CPU): a ``lax.cond`` per step, so padding steps cost nothing.
    ``"select"`` (GPU, TPU): every step is computed and the carry is kept by
    ``jnp.where`` past the end. There a ``lax.cond`` inside the loop reads its predicate
    back to the host at every step, which costs more than the padding steps it skips
    (measured in ``benchmarks/loop_breakdown.py`` and ``benchmarks/README.md``). Only a
    last, partial chunk then computes steps it throws away. Both modes give the same results, up to floating-point rounding where XLA
    fuses the two loops differently (``tests/sampling/test_padding_modes.py``).
    """
    platforms = {d.platform for d in (jax.devices() if devices is None else devices)}
    return "cond" if platforms == {"cpu"} else "select"


def fit_padding_mode(devices: Iterable[jax.Device] | None, num_steps: int,
                     steps_per_chunk: int) -> str:
    """:func:`padding_mode` for a ``fit`` of ``num_steps`` steps in chunks of
    ``steps_per_chunk``.

    On CPU a ``lax.cond`` around an optimizer step costs time even when no step is
    skipped (XLA compiles the step as a separate branch): ``fit`` / hand-written scan loop
    was 1.01–1.10 under the cond and 0.99–1.06 without it across the objectives of
    ``benchmarks/fit_padding.py``, sliced score matching gaining most, and no objective
    was slower. So CPU runs use ``"select"`` too when the last chunk's padding is at most
    :data:`MAX_PADDING_FRACTION` of the run (any run whose length is a multiple of the
    chunk, e.g. the CLI's 2000 steps), and keep the cond for short runs, where the
    padding would dominate.
    """
    mode = padding_mode(devices)
    if mode == "cond" and (-num_steps) % steps_per_chunk <= MAX_PADDING_FRACTION * num_steps:
        return "select"
    return mode
