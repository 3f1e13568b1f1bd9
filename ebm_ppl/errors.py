"""Public errors and warnings of ebm_ppl, in one place so that users can catch and filter them.

All are re-exported at the top level (``ebm_ppl.FitDivergenceError`` ...).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "CheckpointError",
    "CorruptCheckpointError",
    "FitDivergenceError",
    "ImproperTargetWarning",
    "IntractableNormaliserError",
    "SamplingWarning",
    "StepSizeWarning",
]


class FitDivergenceError(FloatingPointError):
    """The loss or its gradient stayed non-finite for ``max_bad_steps`` steps in a row.

    Attributes
    ----------
    step
        First step of the failing run of steps.
    result
        :class:`~ebm_ppl.FitResult` holding the last good state (updates of non-finite
        steps were skipped) and the history up to the failure.
    """

    def __init__(self, message: str, step: int, result: Any):
        super().__init__(message)
        self.step = step
        self.result = result


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupted, partial or does not match the template."""


class CorruptCheckpointError(CheckpointError):
    """A checkpoint's files are unreadable, truncated, missing or fail their SHA-256 check
    (a run killed while writing, a damaged disk): older checkpoints may still be good."""


class IntractableNormaliserError(ValueError):
    """An energy's parameters depend on latent sample sites, so its normaliser
    :math:`Z(\\theta)` does not cancel and ordinary MCMC would sample a wrong posterior
    (use :class:`ebm_ppl.numpyro.Exchange`)."""


class ImproperTargetWarning(UserWarning):
    """The target looks improper: the log density keeps increasing along a direction,
    or chains drift instead of settling (``exp(-E)`` may not be normalisable)."""


class StepSizeWarning(UserWarning):
    """A ULA step size above the stability limit ``2/λ_max`` estimated from the Hessian."""


class SamplingWarning(RuntimeWarning):
    """A finished run the library cannot vouch for: frozen or non-finite chains, too many
    divergences, R-hat above 1.05, or a warm-up too short for its adaptation."""
