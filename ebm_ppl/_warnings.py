"""Warning categories of ebm_ppl (one place, so users can filter them)."""

__all__ = ["ImproperTargetWarning", "StepSizeWarning"]


class ImproperTargetWarning(UserWarning):
    """The target looks improper: the log density keeps increasing along a direction,
    or chains drift instead of settling (``exp(-E)`` may not be normalisable)."""


class StepSizeWarning(UserWarning):
    """A ULA step size above the stability limit ``2/λ_max`` estimated from the Hessian."""
