"""How compiled loops skip their padding steps on each platform (one place for
:mod:`ebm_ppl.sampling.driver` and :mod:`ebm_ppl.training.loop`)."""

from __future__ import annotations

from collections.abc import Iterable

import jax

__all__ = ["padding_mode"]


def padding_mode(devices: Iterable[jax.Device] | None = None) -> str:
    """How a compiled chunk skips the steps past the end of a run on ``devices`` (the
    default backend's when None).

    ``"cond"`` (CPU): a ``lax.cond`` per step, so padding steps cost nothing.
    ``"select"`` (GPU, TPU): every step is computed and the carry is kept by
    ``jnp.where`` past the end. There a ``lax.cond`` inside the loop reads its predicate
    back to the host at every step: on an H100, 1000 chains × 200 ULA steps of a 2-D
    Gaussian took 6.8 ms with it and 5.1 ms without (the hand-written loop 2.7 ms), and
    a DSM ``fit`` step 0.129 ms against 0.040 ms for a hand-written scan
    (``benchmarks/README.md``). Only a last, partial chunk then computes steps it throws
    away. Both modes give the same results, up to floating-point rounding where XLA
    fuses the two loops differently (``tests/test_padding_modes.py``).
    """
    platforms = {d.platform for d in (jax.devices() if devices is None else devices)}
    return "cond" if platforms == {"cpu"} else "select"
